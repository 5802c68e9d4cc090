/**
 * What the metric history's sampler costs: imgfleet sampling its own
 * /metrics every second (ops.sampleIntervalMs=1000, 15 times the shipped
 * rate, so the figure bounds the cost from above) against imgfleet with
 * ops.sampling=false; both auth.mode=none and metering, as shipped. The
 * sampled server's admin API shows how many samples it took during its runs.
 */

import { cpus } from "node:os";
import { adminKeyWatch, withTimeout } from "./auth-server.js";
import { type ComparisonResult, comparisonResult, type Feature } from "./comparison.js";
import { type BenchConfig, COMPARISON_WORKLOADS, corpusFile } from "./config.js";
import { waitQuiet, watchCpu } from "./cpu.js";
import { checkWorkload } from "./http.js";
import {
  BENCH_SAMPLE_INTERVAL_MS,
  DEFAULT_SAMPLE_INTERVAL_MS,
  type RunningServer,
  startImgfleet,
} from "./servers.js";
import type { Comparison, ImgfleetName, SamplingExtra, Workload } from "./types.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

const BANNER_TIMEOUT_MS = 10_000;
/** The series the sampler writes a point of for every round that could compute a rate. */
const SERIES = "request_rate";

interface Point {
  at: number;
  value: number;
}

/** An imgfleet and its bootstrap admin key (printed once on its first start, on stderr). */
async function startWithAdminKey(name: ImgfleetName): Promise<{ server: RunningServer; adminKey: string }> {
  const watch = adminKeyWatch();
  const server = await startImgfleet({ name, onStderrLine: watch.onLine });
  const why = `${name}: no IMGFLEET_ADMIN_KEY line on stderr within ${BANNER_TIMEOUT_MS} ms of listening`;
  return { server, adminKey: await withTimeout(watch.key, BANNER_TIMEOUT_MS, why) };
}

/** The fleet-wide request_rate points between `since` and now (GET /admin/v1/metrics/request_rate). */
async function samples(server: RunningServer, adminKey: string, since: number): Promise<Point[] | null> {
  const query = new URLSearchParams({
    since: new Date(since).toISOString(),
    until: new Date(Date.now() + 1000).toISOString(),
  });
  try {
    const res = await fetch(`${server.url}/admin/v1/metrics/${SERIES}?${query}`, {
      headers: { authorization: `Bearer ${adminKey}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) {
      say(`  ${server.name}: GET /admin/v1/metrics/${SERIES}: HTTP ${res.status}: ${text.slice(0, 200)}`);
      return null;
    }
    const body = JSON.parse(text) as { points?: { at: string; value: number }[] };
    return (body.points ?? []).map((p) => ({ at: Date.parse(p.at), value: p.value }));
  } catch (error) {
    say(`  ${server.name}: reading its metric history failed: ${String(error)}`);
    return null;
  }
}

function samplingFeature(workload: Workload, rounds: number): Feature<SamplingExtra> {
  return {
    phase: "sampling",
    workload,
    rounds,
    labels: { baseline: "unsampled", variant: "sampled" },
    // The sampled server samples while idle too: stopped while the other is measured, or its
    // sampler's cost would fall on the baseline (about as much as on itself).
    pauseIdle: true,
    // Filled in once every round has run: the history is read after the phase.
    extra: (kept) => ({
      samplesDuringRuns: null,
      runSeconds: kept.reduce((sum, r) => sum + r.variant.load.durationS, 0),
      sampledRateMean: null,
      sampleGapMeanMs: null,
      baselineSamples: null,
    }),
  };
}

/** The sampled server's points inside its kept runs at one concurrency; faults flag the comparison. */
function withSamples(
  c: Comparison<SamplingExtra>,
  variant: Point[] | null,
  baseline: Point[] | null,
): Comparison<SamplingExtra> {
  const runs = c.rounds.map((r) => r.variant.run);
  const perRun = runs.map((w) => variant?.filter((p) => p.at >= w.startedAt && p.at <= w.endedAt) ?? []);
  const inRuns = variant ? perRun.flat() : null;
  const mean = inRuns?.length ? inRuns.reduce((sum, p) => sum + p.value, 0) / inRuns.length : null;
  const gaps = perRun.flatMap((points) => points.slice(1).map((p, i) => p.at - (points[i] as Point).at));
  const gapMean = gaps.length > 0 ? Math.round(gaps.reduce((a, b) => a + b, 0) / gaps.length) : null;
  const extra: SamplingExtra = {
    ...c.extra,
    samplesDuringRuns: inRuns?.length ?? null,
    sampledRateMean: mean === null ? null : Math.round(mean * 10) / 10,
    sampleGapMeanMs: gapMean,
    baselineSamples: baseline?.length ?? null,
  };
  const faults = [
    ...(c.flagged ? [c.flagged] : []),
    ...(inRuns?.length === 0 ? ["imgfleet-sampled took no sample during its runs: nothing was sampled"] : []),
    ...(baseline?.length ? [`imgfleet-unsampled took ${baseline.length} samples`] : []),
  ];
  return { ...c, extra, flagged: faults.length > 0 ? faults.join("; ") : null };
}

/** Seconds both servers are watched idle, side by side, before the rounds. */
const IDLE_SECONDS = 10;

/**
 * What each server takes idle over the same seconds (its process tree's
 * share of the machine): the difference is the sampler's own CPU, untouched
 * by the throughput noise of a shared machine.
 */
export interface SamplerIdleCost {
  seconds: number;
  unsampledPct: number;
  sampledPct: number;
  /** (sampled - unsampled) CPU per sampling round, in ms of one core. */
  cpuMsPerSample: number;
}

async function idleCost(unsampled: RunningServer, sampled: RunningServer): Promise<SamplerIdleCost> {
  await Promise.all([waitQuiet(unsampled.pid), waitQuiet(sampled.pid)]);
  const watches = [watchCpu(unsampled.pid), watchCpu(sampled.pid)];
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const [u, s] = watches.map((w) => w.stop().serverPct) as [number, number];
  const coreMsPerSecond = (pct: number) => (pct / 100) * cpus().length * 1000;
  const perSample = (coreMsPerSecond(s) - coreMsPerSecond(u)) * (BENCH_SAMPLE_INTERVAL_MS / 1000);
  return {
    seconds: IDLE_SECONDS,
    unsampledPct: u,
    sampledPct: s,
    cpuMsPerSample: Math.round(perSample * 10) / 10,
  };
}

export type SamplingResult = ComparisonResult<SamplingExtra> & {
  /** Both idle, side by side, before the rounds. */
  idle: SamplerIdleCost;
  /** The variant's interval, and the shipped default it is compared with. */
  sampleIntervalMs: number;
  shippedSampleIntervalMs: number;
  /** Points of the fleet-wide request_rate series over the whole phase (null: not readable). */
  samplesOverPhase: { sampled: number | null; unsampled: number | null; phaseSeconds: number };
};

/** Two fresh imgfleets, started only now, alternated; both left running (stopAll stops them). */
export async function samplingPhase(config: BenchConfig): Promise<SamplingResult> {
  const workload = COMPARISON_WORKLOADS.sampling;
  const file = corpusFile(config, workload);
  say(`\nsampling phase: ${workload.id}, ${config.samplingRounds} rounds of (unsampled, sampled)`);
  const [unsampled, sampled] = await Promise.all([
    startWithAdminKey("imgfleet-unsampled"),
    startWithAdminKey("imgfleet-sampled"),
  ]);
  say(`imgfleet-unsampled pid ${unsampled.server.pid} at ${unsampled.server.url} (ops.sampling=false)`);
  say(
    `imgfleet-sampled   pid ${sampled.server.pid} at ${sampled.server.url} (ops.sampling=true, every ${BENCH_SAMPLE_INTERVAL_MS} ms)`,
  );
  await checkWorkload(unsampled.server, workload, file);
  await checkWorkload(sampled.server, workload, file);
  const since = Date.now();
  const idle = await idleCost(unsampled.server, sampled.server);
  say(
    `idle for ${idle.seconds} s: unsampled ${idle.unsampledPct}% of the machine, sampled ${idle.sampledPct}%: about ${idle.cpuMsPerSample} ms of CPU per sampling round`,
  );
  const servers = { baseline: unsampled.server, variant: sampled.server };
  const result = await comparisonResult(config, servers, samplingFeature(workload, config.samplingRounds));
  const [variantPoints, baselinePoints] = await Promise.all([
    samples(sampled.server, sampled.adminKey, since),
    samples(unsampled.server, unsampled.adminKey, since),
  ]);
  return {
    ...result,
    perConcurrency: result.perConcurrency.map((c) => withSamples(c, variantPoints, baselinePoints)),
    idle,
    sampleIntervalMs: BENCH_SAMPLE_INTERVAL_MS,
    shippedSampleIntervalMs: DEFAULT_SAMPLE_INTERVAL_MS,
    samplesOverPhase: {
      sampled: variantPoints?.length ?? null,
      unsampled: baselinePoints?.length ?? null,
      phaseSeconds: Math.round((Date.now() - since) / 1000),
    },
  };
}
