/**
 * What usage metering costs: imgfleet metering every request (usage.enabled,
 * the default: journaled to the spool, sealed, shipped, aggregated in the
 * background) against imgfleet with usage.enabled=false; both auth.mode=none,
 * so requests are metered to the tenant `anonymous`.
 */
import { type ComparisonResult, comparisonResult, type Feature } from "./comparison.js";
import { type BenchConfig, COMPARISON_WORKLOADS, corpusFile } from "./config.js";
import { checkWorkload } from "./http.js";
import { startImgfleet } from "./servers.js";
import type { MeteringExtra, Round, UsageAfterRun, UsageSnapshot, Workload } from "./types.js";
import { scrapeUsage } from "./usage.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

const maxOf = (values: number[]) => (values.length > 0 ? Math.max(...values) : null);

function meteringExtra(rounds: Round[]): MeteringExtra {
  const usage = rounds.flatMap((r) => (r.variant.usage ? [r.variant.usage] : []));
  const last = usage.at(-1)?.drained;
  const drains = usage.map((u) => u.drainMs);
  const undrained = drains.filter((ms) => ms === null).length;
  return {
    spoolBytesAtEndMax: maxOf(usage.map((u) => u.atEnd.spoolBytes)),
    recordsUnsealedAtEndMax: maxOf(usage.map((u) => u.atEnd.recordsBuffered)),
    drainMsMax: undrained > 0 ? null : maxOf(drains.filter((ms): ms is number => ms !== null)),
    undrainedRounds: undrained,
    batchesSealed: last?.batchesSealed ?? null,
    recordsDropped: last?.recordsDropped ?? null,
    duplicateBatches: last?.duplicateBatches ?? null,
    shipErrors: last?.shipErrors ?? null,
    baselineBatchesSealed: rounds.at(-1)?.baseline.usage?.drained.batchesSealed ?? null,
  };
}

/** What makes the comparison meaningless or the metering faulty: it never passes then. */
function meteringFault(rounds: Round[]): string | null {
  const e = meteringExtra(rounds);
  const faults: string[] = [];
  if (rounds.some((r) => !r.variant.usage))
    faults.push("imgfleet-metered exposes no imgfleet_usage_* metrics");
  if (e.batchesSealed === 0) faults.push("imgfleet-metered sealed no batch: nothing was metered");
  if (e.recordsDropped) faults.push(`imgfleet-metered dropped ${e.recordsDropped} meter records`);
  if (e.baselineBatchesSealed) faults.push(`imgfleet-unmetered sealed ${e.baselineBatchesSealed} batches`);
  return faults.length > 0 ? faults.join("; ") : null;
}

function meteringFeature(workload: Workload, rounds: number): Feature<MeteringExtra> {
  return {
    phase: "metering",
    workload,
    rounds,
    labels: { baseline: "unmetered", variant: "metered" },
    extra: meteringExtra,
    fault: meteringFault,
  };
}

export type MeteringResult = ComparisonResult<MeteringExtra> & {
  usageAtEnd: {
    /** The metered server's pipeline as its last kept run ended, and once drained. */
    lastRun: UsageAfterRun | null;
    /** Both servers' pipelines after the phase, every run (discarded noisy attempts too) drained. */
    metered: UsageSnapshot | null;
    unmetered: UsageSnapshot | null;
  };
};

/** Two fresh imgfleets, started only now, alternated; both left running (stopAll stops them). */
export async function meteringPhase(config: BenchConfig): Promise<MeteringResult> {
  const workload = COMPARISON_WORKLOADS.metering;
  const file = corpusFile(config, workload);
  say(`\nmetering phase: ${workload.id}, ${config.meteringRounds} rounds of (unmetered, metered)`);
  const [unmetered, metered] = await Promise.all([
    startImgfleet({ name: "imgfleet-unmetered" }),
    startImgfleet({ name: "imgfleet-metered" }),
  ]);
  say(`imgfleet-unmetered pid ${unmetered.pid} at ${unmetered.url} (auth.mode=none, usage.enabled=false)`);
  say(`imgfleet-metered   pid ${metered.pid} at ${metered.url} (auth.mode=none, usage.enabled=true)`);
  await checkWorkload(unmetered, workload, file);
  await checkWorkload(metered, workload, file);
  const servers = { baseline: unmetered, variant: metered };
  const result = await comparisonResult(config, servers, meteringFeature(workload, config.meteringRounds));
  const lastRun = result.perConcurrency.at(-1)?.rounds.at(-1)?.variant.usage ?? null;
  const [meteredAtEnd, unmeteredAtEnd] = await Promise.all([scrapeUsage(metered), scrapeUsage(unmetered)]);
  return { ...result, usageAtEnd: { lastRun, metered: meteredAtEnd, unmetered: unmeteredAtEnd } };
}
