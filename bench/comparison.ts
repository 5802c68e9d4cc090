/**
 * What a feature of imgfleet costs: the same workload against a baseline
 * server (the feature off) and a variant (it on), alternating (baseline,
 * variant, baseline, variant, ...) so that drift of the machine (thermal,
 * other tenants' load) falls on both alike. Only one server is under load at
 * a time (and, for a feature that works while idle, only one runs: the
 * other is stopped); each measurement ends with its server quiet (see measure).
 */
import type { BenchConfig, ComparisonPhase } from "./config.js";
import { noisePct } from "./cpu.js";
import { describe, measure } from "./measure.js";
import { quietest } from "./quiet.js";
import { descendants } from "./rss.js";
import { type RunningServer, type ServerInfo, serverInfo } from "./servers.js";
import { median } from "./stats.js";
import type { Comparison, Measurement, MedianCpu, MedianLatency, Round, Workload } from "./types.js";

export interface ComparisonServers {
  /** The feature off. */
  baseline: RunningServer;
  /** The feature on. */
  variant: RunningServer;
}

/** One feature's comparison: what is measured, how often, and what only it reports. */
export interface Feature<X> {
  phase: ComparisonPhase;
  workload: Workload;
  /** Alternations per concurrency. */
  rounds: number;
  /** Short names of the two sides, for log lines and table headers: "no-auth" and "auth". */
  labels: { baseline: string; variant: string };
  /** Figures only this feature has, from one concurrency's kept rounds. */
  extra(rounds: Round[]): X;
  /** A fault of the feature in these rounds (e.g. records dropped): the comparison never passes. */
  fault?(rounds: Round[]): string | null;
  /**
   * Keep the server not being measured stopped (SIGSTOP, its whole tree)
   * meanwhile: for a feature that works while idle (the sampler scrapes and
   * writes every second), whose cost would otherwise fall on the other
   * side's measurement.
   */
  pauseIdle?: boolean;
}

const say = (text: string) => process.stdout.write(`${text}\n`);

/** Runs `step` with `idle`'s process tree stopped (SIGSTOP), continued afterwards; with no `idle`, just runs it. */
async function whilePaused<T>(idle: RunningServer | null, step: () => Promise<T>): Promise<T> {
  if (!idle) return step();
  const tree = [idle.pid, ...descendants(idle.pid)];
  const signal = (name: NodeJS.Signals, pids: number[]) => {
    for (const pid of pids) {
      try {
        process.kill(pid, name);
      } catch {
        // gone: a recycled worker
      }
    }
  };
  signal("SIGSTOP", tree);
  try {
    return await step();
  } finally {
    signal("SIGCONT", [...tree].reverse());
  }
}

async function measureRound(
  config: BenchConfig,
  servers: ComparisonServers,
  workload: Workload,
  concurrency: number,
  pauseIdle: boolean,
) {
  const paused = (s: RunningServer) => (pauseIdle ? s : null);
  const baseline = await whilePaused(paused(servers.variant), () =>
    measure(config, servers.baseline, workload, concurrency),
  );
  say(`  ${describe(baseline)}`);
  const variant = await whilePaused(paused(servers.baseline), () =>
    measure(config, servers.variant, workload, concurrency),
  );
  say(`  ${describe(variant)}`);
  return { baseline, variant, ratio: variant.load.okRps / baseline.load.okRps };
}

const otherCpu = (r: Pick<Round, "baseline" | "variant">) =>
  Math.max(noisePct(r.baseline.cpu), noisePct(r.variant.cpu));

/** 2xx per second over all rounds together: longer or busier rounds weigh in proportion. */
function okRps(measurements: Measurement[]): number {
  const ok = measurements.reduce((sum, m) => sum + m.load.ok2xx, 0);
  const seconds = measurements.reduce((sum, m) => sum + m.load.durationS, 0);
  return seconds > 0 ? Math.round((ok / seconds) * 10) / 10 : Number.NaN;
}

const round2 = (v: number) => Math.round(v * 100) / 100;

/** Medians of per-round percentiles; rounded, since an even count averages two 0.1 ms values. */
export function medianOf(values: { p50: number; p99: number }[]): MedianLatency {
  const of = (pick: (v: { p50: number; p99: number }) => number) => round2(median(values.map(pick)));
  return { p50: of((v) => v.p50), p99: of((v) => v.p99) };
}

function medianCpu(measurements: Measurement[]): MedianCpu {
  return {
    server: round2(median(measurements.map((m) => m.cpuMsPerOk.server))),
    serverMain: round2(median(measurements.map((m) => m.cpuMsPerOk.serverMain))),
  };
}

function summarizeRounds<X>(feature: Feature<X>, concurrency: number, rounds: Round[]): Comparison<X> {
  const baseline = rounds.map((r) => r.baseline);
  const variant = rounds.map((r) => r.variant);
  const baselineOkRps = okRps(baseline);
  const variantOkRps = okRps(variant);
  const noisy = rounds.filter((r) => r.noisy).map((r) => r.noisy);
  const fault = feature.fault?.(rounds) ?? null;
  const flagged = [
    ...[...baseline, ...variant]
      .filter((m) => m.load.flagged)
      .map((m) => `${m.server} run had ${m.load.flagged}`),
    ...(fault ? [fault] : []),
  ];
  return {
    phase: feature.phase,
    workload: feature.workload.id,
    concurrency,
    rounds,
    baselineOkRps,
    variantOkRps,
    ratio: variantOkRps / baselineOkRps,
    baselineLatencyMs: medianOf(baseline.map((m) => m.load.latencyMs)),
    variantLatencyMs: medianOf(variant.map((m) => m.load.latencyMs)),
    baselineCpuMsPerOk: medianCpu(baseline),
    variantCpuMsPerOk: medianCpu(variant),
    extra: feature.extra(rounds),
    noisy: noisy.length > 0 ? `${noisy.length} of ${rounds.length} rounds: ${noisy.join("; ")}` : null,
    flagged: flagged.length > 0 ? flagged.join("; ") : null,
  };
}

/** `feature.rounds` alternations at each concurrency, each measured again while noisy like the matrix's pairs. */
export async function runComparison<X>(
  config: BenchConfig,
  servers: ComparisonServers,
  feature: Feature<X>,
): Promise<Comparison<X>[]> {
  const { workload, labels } = feature;
  const comparisons: Comparison<X>[] = [];
  for (const concurrency of config.concurrencies) {
    const rounds: Round[] = [];
    for (let i = 1; i <= feature.rounds; i++) {
      say(`\n${feature.phase} ${workload.id} c${concurrency} round ${i}/${feature.rounds}`);
      const measureOnce = () => measureRound(config, servers, workload, concurrency, !!feature.pauseIdle);
      const { best, attempts, noisy } = await quietest(config, measureOnce, otherCpu);
      say(`  ${labels.variant}/${labels.baseline} ${best.ratio.toFixed(3)}`);
      rounds.push({ ...best, attempts, noisy });
    }
    comparisons.push(summarizeRounds(feature, concurrency, rounds));
  }
  return comparisons;
}

/** A comparison phase as the results keep it. */
export interface ComparisonResult<X> {
  phase: ComparisonPhase;
  workload: string;
  /** Alternations per concurrency. */
  rounds: number;
  labels: { baseline: string; variant: string };
  baseline: ServerInfo;
  variant: ServerInfo;
  /** One per measured concurrency, every round's measurements included. */
  perConcurrency: Comparison<X>[];
}

/** Runs the comparison and keeps it with both servers' configuration. */
export async function comparisonResult<X>(
  config: BenchConfig,
  servers: ComparisonServers,
  feature: Feature<X>,
): Promise<ComparisonResult<X>> {
  const perConcurrency = await runComparison(config, servers, feature);
  return {
    phase: feature.phase,
    workload: feature.workload.id,
    rounds: feature.rounds,
    labels: feature.labels,
    baseline: serverInfo(servers.baseline),
    variant: serverInfo(servers.variant),
    perConcurrency,
  };
}
