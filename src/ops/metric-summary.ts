import type { HistoryStore } from "./history-store.js";
import { type Baseline, FLEET_NODE, SERIES, SERIES_NAMES, type SeriesName } from "./series.js";
import { formatBand, formatValue } from "./units.js";

/**
 * A "latest" value older than this many sample intervals, and at least
 * FRESH_MIN_MS, is stale: the node is silent, not healthy.
 */
const FRESH_INTERVALS = 3;
const FRESH_MIN_MS = 30_000;
/** A node is an outlier beyond this many standard deviations of the other nodes' mean. */
const OUTLIER_K = 2;
/**
 * The spread the others' stddev is floored at, as a share of their mean:
 * two nodes at 80 and 84 ms have a stddev of 0 among "the others", and a
 * 5% difference is not news.
 */
const OUTLIER_MIN_SPREAD_SHARE = 0.1;

export interface NodeSummary {
  node: string;
  value: number;
  at: string;
  baseline: Baseline | null;
  outlier: boolean;
}

/** One series now, against its baseline and across nodes (GET /admin/v1/metrics). */
export interface SeriesSummary {
  name: SeriesName;
  unit: string;
  title: string;
  fleet: { value: number | null; at: string | null; baseline: Baseline | null; sentence: string };
  nodes: NodeSummary[];
}

/** GET /admin/v1/metrics. */
export interface MetricsOverview {
  sampleIntervalMs: number;
  items: SeriesSummary[];
}

/** GET /admin/v1/metrics/:series: the points (oldest first) and the baseline band at `until`. */
export interface SeriesHistory {
  name: SeriesName;
  unit: string;
  title: string;
  label: string;
  /** Null: the fleet-wide series. */
  node: string | null;
  since: string;
  until: string;
  baseline: Baseline | null;
  /** mean − stddev … mean + stddev. */
  band: { low: number; high: number } | null;
  points: { at: string; value: number; resolution: "raw" | "hour"; min?: number; max?: number }[];
}

/** Every series, each read with two queries (latest per node, baselines per node). */
export async function summariseAll(history: HistoryStore, at: number): Promise<SeriesSummary[]> {
  const out: SeriesSummary[] = [];
  for (const name of SERIES_NAMES) out.push(await summarise(history, name, at));
  return out;
}

export async function summarise(history: HistoryStore, name: SeriesName, at: number): Promise<SeriesSummary> {
  const maxAgeMs = Math.max(FRESH_MIN_MS, history.settings.sampleIntervalMs * FRESH_INTERVALS);
  const [latest, baselines] = await Promise.all([
    history.latest(name, maxAgeMs),
    history.baselines(name, { at }),
  ]);
  const fleetPoint = latest.get(FLEET_NODE);
  const readings = [...latest.values()]
    .filter((p) => p.node !== FLEET_NODE)
    .map((p) => ({ node: p.node, value: p.value, baseline: baselines.get(p.node) ?? null }));
  const flagged = outliers(readings);
  const nodes = readings
    .map((r, i) => ({
      ...r,
      at: new Date(latest.get(r.node)?.at ?? at).toISOString(),
      outlier: flagged.has(i),
    }))
    .sort((a, b) => a.node.localeCompare(b.node));
  const baseline = baselines.get(FLEET_NODE) ?? null;
  const value = fleetPoint?.value ?? null;
  return {
    name,
    unit: SERIES[name].unit,
    title: SERIES[name].title,
    fleet: {
      value,
      at: fleetPoint ? new Date(fleetPoint.at).toISOString() : null,
      baseline,
      sentence: sentence(
        name,
        value,
        baseline,
        nodes.filter((n) => n.outlier),
      ),
    },
    nodes,
  };
}

/**
 * "p99 latency is 340 ms; usually 80 ± 20 ms; api-2 is the outlier at 900 ms".
 * Without a recent value or a baseline, says so instead of guessing.
 */
export function sentence(
  name: SeriesName,
  value: number | null,
  baseline: Baseline | null,
  outlierNodes: readonly { node: string; value: number }[] = [],
): string {
  const { label, unit } = SERIES[name];
  if (value === null) return `${label}: no recent sample`;
  const parts = [`${label} is ${formatValue(unit, value)}`];
  parts.push(baseline ? `usually ${formatBand(unit, baseline.mean, baseline.stddev)}` : "no baseline yet");
  const [first, ...more] = outlierNodes;
  if (first && more.length === 0)
    parts.push(`${first.node} is the outlier at ${formatValue(unit, first.value)}`);
  else if (first) parts.push(`${outlierNodes.map((n) => n.node).join(", ")} are outliers`);
  return parts.join("; ");
}

/**
 * Which readings (by index) are outliers: beyond 2 standard deviations of
 * the mean of the *other* nodes (at least 2 nodes). The spread is floored at
 * 10% of the larger of that mean and the node's value, and at the node's own
 * baseline stddev, so 80 vs 84 ms is not news but errors on one node while
 * the others have none are. When that flags more than half the nodes (two
 * nodes that simply differ flag each other), only those also outside their
 * own usual band (mean ± 2 stddev) remain; if that still leaves more than
 * half, nobody: there is no majority to stand out from.
 */
export function outliers(readings: readonly { value: number; baseline: Baseline | null }[]): Set<number> {
  if (readings.length < 2) return new Set();
  const candidates = readings.flatMap((r, i) => {
    const others = readings.filter((_, j) => j !== i).map((o) => o.value);
    const mean = others.reduce((a, b) => a + b, 0) / others.length;
    const sd = Math.sqrt(others.reduce((a, b) => a + (b - mean) ** 2, 0) / others.length);
    const floor = OUTLIER_MIN_SPREAD_SHARE * Math.max(Math.abs(mean), Math.abs(r.value));
    const spread = Math.max(sd, floor, r.baseline?.stddev ?? 0);
    return spread > 0 && Math.abs(r.value - mean) > OUTLIER_K * spread ? [i] : [];
  });
  const half = readings.length / 2;
  if (candidates.length <= half) return new Set(candidates);
  const unusual = candidates.filter((i) => {
    const r = readings[i];
    return r?.baseline ? Math.abs(r.value - r.baseline.mean) > OUTLIER_K * r.baseline.stddev : false;
  });
  return unusual.length <= half ? new Set(unusual) : new Set();
}
