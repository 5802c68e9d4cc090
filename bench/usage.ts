/**
 * imgfleet's usage pipeline as its /metrics shows it: what the meter has
 * journaled and not sealed, what is sealed and not committed, what was lost.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { waitQuiet } from "./cpu.js";
import type { RunningServer } from "./servers.js";
import type { UsageAfterRun, UsageSnapshot } from "./types.js";

/** Longest wait for the pipeline to drain after a run: flushIntervalMs (2 s) and a confirm round are the norm. */
const DRAIN_LIMIT_MS = 20_000;
const POLL_MS = 200;

const SERIES: Record<Exclude<keyof UsageSnapshot, "aggregationLagMeanS">, string> = {
  spoolBytes: "imgfleet_usage_spool_bytes",
  spoolCapacityBytes: "imgfleet_usage_spool_capacity_bytes",
  recordsBuffered: "imgfleet_usage_records_buffered",
  oldestUncommittedAgeS: "imgfleet_usage_oldest_uncommitted_batch_age_seconds",
  batchesSealed: "imgfleet_usage_batches_sealed_total",
  batchesShipped: "imgfleet_usage_batches_shipped_total",
  batchesReshipped: "imgfleet_usage_batches_reshipped_total",
  segmentsDeleted: "imgfleet_usage_spool_segments_deleted_total",
  shipErrors: "imgfleet_usage_ship_errors_total",
  batchesAggregated: "imgfleet_usage_batches_aggregated_total",
  duplicateBatches: "imgfleet_usage_duplicate_batches_total",
  aggregateErrors: "imgfleet_usage_aggregate_errors_total",
  recordsDropped: "imgfleet_usage_records_dropped_total",
};

/** `name{labels} value` lines of the exposition, each name's series summed (a counter with no sample yet is 0). */
function sums(text: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(imgfleet_usage_[a-z_]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    totals.set(match[1], (totals.get(match[1]) ?? 0) + Number(match[2]));
  }
  return totals;
}

/** One scrape; null when the server exposes no usage series (a build from before metering, a fleet's worker node). */
export async function scrapeUsage(
  server: Pick<RunningServer, "name" | "url">,
): Promise<UsageSnapshot | null> {
  const res = await fetch(`${server.url}/metrics`);
  const text = await res.text();
  if (res.status !== 200)
    throw new Error(`${server.name} /metrics: HTTP ${res.status}: ${text.slice(0, 300)}`);
  const totals = sums(text);
  if (!totals.has(SERIES.spoolCapacityBytes)) return null;
  const of = (name: string) => totals.get(name) ?? 0;
  const snapshot = Object.fromEntries(Object.entries(SERIES).map(([key, name]) => [key, of(name)]));
  const lagCount = of("imgfleet_usage_aggregation_lag_seconds_count");
  const lagMean = lagCount > 0 ? of("imgfleet_usage_aggregation_lag_seconds_sum") / lagCount : Number.NaN;
  return {
    ...(snapshot as Omit<UsageSnapshot, "aggregationLagMeanS">),
    aggregationLagMeanS: Math.round(lagMean * 1000) / 1000,
  };
}

/** Nothing journaled but unsealed, nothing sealed but uncommitted (an unmetered server always is). */
export const drained = (u: UsageSnapshot) => u.recordsBuffered === 0 && u.oldestUncommittedAgeS === 0;

/**
 * Several nodes' pipelines as one (the fleet's API and control nodes):
 * counters, gauges and capacities summed; the oldest uncommitted batch and the
 * aggregation lag are the worst node's.
 */
export function sumUsage(snapshots: UsageSnapshot[]): UsageSnapshot | null {
  const [first, ...rest] = snapshots;
  if (!first) return null;
  const total = { ...first };
  for (const s of rest)
    for (const key of Object.keys(SERIES) as (keyof typeof SERIES)[]) total[key] += s[key];
  const lags = snapshots.map((s) => s.aggregationLagMeanS).filter((v) => !Number.isNaN(v));
  return {
    ...total,
    oldestUncommittedAgeS: Math.max(...snapshots.map((s) => s.oldestUncommittedAgeS)),
    aggregationLagMeanS: lags.length > 0 ? Math.max(...lags) : Number.NaN,
  };
}

/** Every node's pipeline, summed; null when none exposes usage series. */
async function scrapeAll(nodes: Pick<RunningServer, "name" | "url">[]): Promise<UsageSnapshot | null> {
  const snapshots = await Promise.all(nodes.map(scrapeUsage));
  return sumUsage(snapshots.filter((s): s is UsageSnapshot => s !== null));
}

/**
 * Right after a measured run: the pipeline as the run left it, then waits
 * until it has drained (the open batch sealed after usage.flushIntervalMs,
 * shipped, committed by the aggregator) and the server is quiet again, so
 * that this run's metering work does not fall on the next measurement, which
 * may be another server's. The run's own warm-up left a tail the same way, so
 * each run carries about one tail of metering work: the steady state. With
 * several nodes (the fleet), all of them, summed; `quiet` waits for the
 * whole server.
 */
export async function usageAfterRunOf(
  nodes: Pick<RunningServer, "name" | "url">[],
  quiet: () => Promise<unknown>,
): Promise<UsageAfterRun | undefined> {
  const ended = performance.now();
  const atEnd = await scrapeAll(nodes);
  if (!atEnd) return undefined;
  let now = atEnd;
  while (!drained(now) && performance.now() - ended < DRAIN_LIMIT_MS) {
    await sleep(POLL_MS);
    now = (await scrapeAll(nodes)) ?? now;
  }
  const drainMs = drained(now) ? Math.round(performance.now() - ended) : null;
  await quiet();
  const settled = (await scrapeAll(nodes)) ?? now;
  return { atEnd, drained: settled, drainMs };
}

/** One imgfleet's pipeline after a run (see usageAfterRunOf). */
export function usageAfterRun(server: RunningServer): Promise<UsageAfterRun | undefined> {
  return usageAfterRunOf([server], () => waitQuiet(server.pid));
}

function kb(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${Math.round((bytes / 1024 ** 2) * 10) / 10} MB`;
}

/** One line for the log of a measurement. */
export function describeUsage(u: UsageAfterRun): string {
  const { atEnd: e, drained: d } = u;
  if (d.batchesSealed === 0 && e.recordsBuffered === 0) return "usage: nothing metered";
  const drain =
    u.drainMs === null ? `NOT drained within ${DRAIN_LIMIT_MS / 1000} s` : `drained in ${u.drainMs} ms`;
  return [
    `usage at end: spool ${kb(e.spoolBytes)}, ${e.recordsBuffered} records unsealed, oldest uncommitted ${e.oldestUncommittedAgeS} s;`,
    ` ${drain} (spool ${kb(d.spoolBytes)}); sealed ${d.batchesSealed}, aggregated ${d.batchesAggregated},`,
    ` dropped ${d.recordsDropped}, duplicates ${d.duplicateBatches}, ship errors ${d.shipErrors}`,
  ].join("");
}

/** The pipeline's health in a few lines, for the report. */
export function usageHealth(name: string, when: string, u: UsageSnapshot): string {
  const lag = Number.isNaN(u.aggregationLagMeanS) ? "none aggregated" : `mean ${u.aggregationLagMeanS} s`;
  return [
    `${name}, ${when}:`,
    `  spool ${kb(u.spoolBytes)} of ${kb(u.spoolCapacityBytes)}, ${u.recordsBuffered} records unsealed, oldest uncommitted batch ${u.oldestUncommittedAgeS} s`,
    `  batches sealed ${u.batchesSealed}, shipped ${u.batchesShipped} (reshipped ${u.batchesReshipped}), aggregated ${u.batchesAggregated}, duplicates ignored ${u.duplicateBatches}; seal-to-commit lag ${lag}`,
    `  records dropped ${u.recordsDropped}, ship errors ${u.shipErrors}, aggregate errors ${u.aggregateErrors}, spool segments deleted ${u.segmentsDeleted}`,
  ].join("\n");
}
