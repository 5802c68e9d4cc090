import type { ComparisonResult } from "./comparison.js";
import { COMPARISON_WORKLOADS, type ComparisonPhase } from "./config.js";
import type { FleetResult } from "./fleet-phase.js";
import type { Pair, TargetCheck } from "./types.js";

const RSS_LIMIT_MB = 400;
const P99_FACTOR = 1.5;
const THROUGHPUT_TARGETS = [
  { workload: "W1", concurrency: 4, min: 0.95 },
  { workload: "W1", concurrency: 16, min: 0.9 },
  { workload: "W3", concurrency: 4, min: 0.9 },
];
/**
 * Variant / baseline throughput of each comparison: API keys (hash, lookup,
 * tenant limiter) and usage metering (a journaled record per request, batches
 * shipped and aggregated in the background) must each cost at most 3%; the
 * metric history's sampler at most 2%, even at 15 times its shipped rate.
 */
export const COMPARISON_RATIO_MIN: Readonly<Record<ComparisonPhase, number>> = {
  auth: 0.97,
  metering: 0.97,
  sampling: 0.98,
};

/** What each comparison's target is about, for its name. */
const COMPARED: Readonly<Record<ComparisonPhase, string>> = {
  auth: "throughput with auth / without",
  metering: "throughput metered / unmetered",
  sampling: "throughput sampled (1 s) / unsampled",
};

/**
 * The fleet through HAProxy against the ceiling, on this 2-core machine where
 * NATS, PostgreSQL and HAProxy share the cores with the nodes; and the job
 * queue's own enqueue-to-delivery latency (3 replicas) at FLEET_QUEUE_RATE.
 */
export const FLEET_RATIO_MIN = 0.6;
export const QUEUE_P50_MAX_MS = 1;
export const QUEUE_P99_MAX_MS = 5;

export const throughputRatio = (p: Pair) => p.imgfleet.load.okRps / p.ceiling.load.okRps;
export const p99Ratio = (p: Pair) => p.imgfleet.load.latencyMs.p99 / p.ceiling.load.latencyMs.p99;

/** A run with failed requests never passes: its numbers do not describe the service working. */
function failures(pair: Pair): string | null {
  const bad = [pair.ceiling, pair.imgfleet].filter((m) => m.load.flagged);
  return bad.length ? bad.map((m) => `${m.server} run had ${m.load.flagged}`).join("; ") : null;
}

function check(name: string, pair: Pair, pass: boolean, measured: string): TargetCheck {
  const failed = failures(pair);
  const detail = pair.noisy ? `${measured} (NOISY: ${pair.noisy})` : measured;
  if (failed) return { name, status: "MISS", detail: `${detail}; ${failed}` };
  return { name, status: pass ? "PASS" : "MISS", detail };
}

function throughputChecks(pairs: Pair[]): TargetCheck[] {
  return THROUGHPUT_TARGETS.map(({ workload, concurrency, min }) => {
    const name = `${workload} c${concurrency} throughput ratio >= ${min.toFixed(2)}`;
    const pair = pairs.find((p) => p.workload === workload && p.concurrency === concurrency);
    if (!pair) return { name, status: "SKIP", detail: "not measured in this run" };
    const ratio = throughputRatio(pair);
    return check(name, pair, ratio >= min, `ratio ${ratio.toFixed(3)}`);
  });
}

function latencyChecks(pairs: Pair[]): TargetCheck[] {
  return pairs.map((pair) => {
    const ratio = p99Ratio(pair);
    const { ceiling, imgfleet } = pair;
    return check(
      `${pair.workload} c${pair.concurrency} imgfleet p99 <= ${P99_FACTOR}x ceiling p99`,
      pair,
      ratio <= P99_FACTOR,
      `${imgfleet.load.latencyMs.p99} ms vs ${ceiling.load.latencyMs.p99} ms (${ratio.toFixed(2)}x)`,
    );
  });
}

function rssChecks(pairs: Pair[]): TargetCheck[] {
  const c16 = pairs.filter((p) => p.concurrency === 16);
  const name = (w: string) => `${w} c16 imgfleet peak RSS <= ${RSS_LIMIT_MB} MB`;
  if (c16.length === 0) return [{ name: name("any"), status: "SKIP", detail: "no 16-connection run" }];
  return c16.map((pair) => {
    const { rss } = pair.imgfleet;
    const detail = `${rss.peakMb} MB over ${rss.processesAtPeak} processes`;
    return check(name(pair.workload), pair, rss.peakMb <= RSS_LIMIT_MB, detail);
  });
}

/** Every concurrency of a comparison phase: variant / baseline, 2xx per second over all rounds. */
function comparisonChecks(
  phase: ComparisonPhase,
  result: ComparisonResult<unknown> | undefined,
): TargetCheck[] {
  const min = COMPARISON_RATIO_MIN[phase];
  const name = (c: string) => `${c} ${COMPARED[phase]} >= ${min.toFixed(2)}`;
  if (!result?.perConcurrency.length)
    return [{ name: name(COMPARISON_WORKLOADS[phase].id), status: "SKIP", detail: `${phase} phase not run` }];
  return result.perConcurrency.map((c) => {
    const rounds = c.rounds.map((r) => r.ratio.toFixed(3)).join(", ");
    const measured = `ratio ${c.ratio.toFixed(3)} (rounds ${rounds})`;
    const detail = c.noisy ? `${measured} (NOISY: ${c.noisy})` : measured;
    const what = name(`${c.workload} c${c.concurrency}`);
    if (c.flagged) return { name: what, status: "MISS", detail: `${detail}; ${c.flagged}` };
    return { name: what, status: c.ratio >= min ? "PASS" : "MISS", detail };
  });
}

/** Every fleet pair: fleet / ceiling; then the queue's p50 and p99 on the 3-replica stream. */
function fleetChecks(fleet: FleetResult | undefined): TargetCheck[] {
  const ratioName = `fleet throughput / ceiling >= ${FLEET_RATIO_MIN.toFixed(2)}`;
  const p50Name = `queue enqueue-to-delivery p50 < ${QUEUE_P50_MAX_MS} ms (3 replicas)`;
  const p99Name = `queue enqueue-to-delivery p99 < ${QUEUE_P99_MAX_MS} ms (3 replicas)`;
  if (!fleet)
    return [ratioName, p50Name, p99Name].map((name) => ({
      name,
      status: "SKIP",
      detail: "fleet phase not run (--fleet)",
    }));
  const ratios = fleet.pairs.map((pair) => {
    const ratio = throughputRatio(pair);
    const name = `${pair.workload} c${pair.concurrency} ${ratioName}`;
    const measured = `ratio ${ratio.toFixed(3)} (${pair.imgfleet.load.okRps} vs ${pair.ceiling.load.okRps} ops/s)`;
    return check(name, pair, ratio >= FLEET_RATIO_MIN, measured);
  });
  const run = fleet.queueLatency.queue.find((q) => q.replicas === 3);
  if (!run)
    return [
      ...ratios,
      ...[p50Name, p99Name].map((name) => ({ name, status: "SKIP" as const, detail: "not measured" })),
    ];
  const lost = run.sent - run.delivered;
  const fault =
    lost > 0 || run.failedEnqueues > 0
      ? `; ${lost} not delivered, ${run.failedEnqueues} enqueues failed`
      : "";
  const note = `${run.noisy ? ` (NOISY: ${run.noisy})` : ""}${fault}`;
  const rate = `at ${run.achievedRate}/s, n=${run.deliveryMs.n}`;
  const queueCheck = (name: string, value: number, max: number): TargetCheck => ({
    name,
    status: value < max && !fault ? "PASS" : "MISS",
    detail: `${value} ms ${rate}${note}`,
  });
  return [
    ...ratios,
    queueCheck(p50Name, run.deliveryMs.p50, QUEUE_P50_MAX_MS),
    queueCheck(p99Name, run.deliveryMs.p99, QUEUE_P99_MAX_MS),
  ];
}

export type ComparisonResults = Partial<Record<ComparisonPhase, ComparisonResult<unknown>>>;

export function checkTargets(
  pairs: Pair[],
  comparisons: ComparisonResults,
  fleet?: FleetResult,
): TargetCheck[] {
  return [
    ...throughputChecks(pairs),
    ...latencyChecks(pairs),
    ...rssChecks(pairs),
    ...comparisonChecks("auth", comparisons.auth),
    ...comparisonChecks("metering", comparisons.metering),
    ...comparisonChecks("sampling", comparisons.sampling),
    ...fleetChecks(fleet),
  ];
}
