import type { Database } from "../db/database.js";
import { type Baseline, FLEET_NODE, type MetricPoint, SERIES_NAMES, type SeriesName } from "./series.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The `ops` settings the history needs (config.ops satisfies it). */
export interface HistorySettings {
  sampleIntervalMs: number;
  rawRetentionHours: number;
  historyDays: number;
  baselineDays: number;
  maxNodes: number;
}

/** A baseline needs this many hourly buckets; fewer, and mean ± stddev would be noise. */
export const MIN_BASELINE_HOURS = 6;
/** `hour-of-day` needs the same hour on at least this many earlier days; else the whole window is used. */
export const MIN_HOUR_OF_DAY_DAYS = 3;

/** One point read back: a raw sample, or the mean of an hour once raw samples are gone. */
export interface HistoryPoint {
  node: string;
  at: number;
  value: number;
  /** `raw`: a sample; `hour`: the hour starting at `at` (mean, with its min and max). */
  resolution: "raw" | "hour";
  min?: number;
  max?: number;
}

export interface HistorySize {
  points: number;
  rollups: number;
}

/**
 * Metric history in the database: raw samples (`metric_points`) for
 * `rawRetentionHours`, and hourly rollups (`metric_rollups`: samples, sum,
 * sum of squares, min, max) for `historyDays`, which baselines read.
 *
 * **Size bound.** `compact` (hourly, from the sampler) keeps, per series,
 * the `maxNodes` most recently seen nodes plus the fleet-wide series, and
 * cuts raw samples at the hour before `now − rawRetentionHours` and rollups
 * before `now − historyDays`. Between two compactions each (series, node)
 * holds at most `(rawRetentionHours + 2) × samplesPerHour` raw rows and
 * `24 × historyDays + 2` rollups, so the tables hold at most
 *
 *     series × (maxNodes + 1) × ((rawRetentionHours + 2) × 3_600_000 / sampleIntervalMs + 24 × historyDays + 2)
 *
 * rows: with the defaults (16 series, 15 s, 24 h, 180 days) 10,562 rows per
 * node and series — 169,000 rows (roughly 25 MB with indexes) per node, about
 * 34 million at the 200-node cap. `bound()` computes it.
 *
 * The fleet-wide value of each series is stored as node `*` (FLEET_NODE);
 * reads without a node read it.
 */
export class HistoryStore {
  constructor(
    private readonly db: Database,
    readonly settings: HistorySettings,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The most rows the two tables can hold (see the class comment). */
  bound(series = SERIES_NAMES.length): number {
    const s = this.settings;
    const rawPerNode = Math.ceil(((s.rawRetentionHours + 2) * HOUR_MS) / s.sampleIntervalMs);
    return series * (s.maxNodes + 1) * (rawPerNode + 24 * s.historyDays + 2);
  }

  /**
   * Stores one round of samples and adds them to their hourly rollups, in one
   * statement (so atomically). A point already stored (same series, node and
   * time) is ignored and not counted twice.
   */
  async write(points: readonly MetricPoint[]): Promise<void> {
    if (points.length === 0) return;
    await this.db.query(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS p(series, node, at_ms, value)
       ), inserted AS (
         INSERT INTO metric_points (series, node, at, value)
         SELECT series, node, to_timestamp(at_ms / 1000.0), value FROM input
         ON CONFLICT (series, node, at) DO NOTHING
         RETURNING series, node, at, value
       )
       INSERT INTO metric_rollups AS r (series, node, hour, samples, sum, sum_squares, min, max)
       SELECT series, node, to_timestamp(floor(extract(epoch FROM at) / 3600) * 3600),
              count(*), sum(value), sum(value * value), min(value), max(value)
       FROM inserted GROUP BY 1, 2, 3
       ON CONFLICT (series, node, hour) DO UPDATE SET
         samples = r.samples + excluded.samples,
         sum = r.sum + excluded.sum,
         sum_squares = r.sum_squares + excluded.sum_squares,
         min = least(r.min, excluded.min),
         max = greatest(r.max, excluded.max)`,
      [
        points.map((p) => p.series),
        points.map((p) => p.node),
        points.map((p) => p.at),
        points.map((p) => p.value),
      ],
    );
  }

  /**
   * A series between `since` and `until` (default now) for one node (default:
   * the fleet-wide series), oldest first: raw samples where they are kept,
   * hourly means before that.
   */
  async points(
    series: SeriesName,
    range: { node?: string; since: number; until?: number },
  ): Promise<HistoryPoint[]> {
    const node = range.node ?? FLEET_NODE;
    const until = range.until ?? this.clock();
    const rawFrom = this.rawCutoff(this.clock());
    const hourly =
      range.since < rawFrom
        ? await this.db.query<{ hour: Date; samples: number; sum: number; min: number; max: number }>(
            `SELECT hour, samples, sum, min, max FROM metric_rollups
             WHERE series = $1 AND node = $2 AND hour >= $3 AND hour < $4 AND hour <= $5 ORDER BY hour`,
            [series, node, new Date(hourStart(range.since)), new Date(rawFrom), new Date(until)],
          )
        : [];
    const raw = await this.db.query<{ at: Date; value: number }>(
      `SELECT at, value FROM metric_points
       WHERE series = $1 AND node = $2 AND at >= $3 AND at <= $4 ORDER BY at`,
      [series, node, new Date(Math.max(range.since, rawFrom)), new Date(until)],
    );
    return [
      ...hourly.map(
        (r): HistoryPoint => ({
          node,
          at: r.hour.getTime(),
          value: r.sum / r.samples,
          resolution: "hour",
          min: r.min,
          max: r.max,
        }),
      ),
      ...raw.map((r): HistoryPoint => ({ node, at: r.at.getTime(), value: r.value, resolution: "raw" })),
    ];
  }

  /**
   * The newest sample of each node no older than `maxAgeMs`, keyed by node;
   * the fleet-wide value is under FLEET_NODE (skip it to iterate nodes).
   */
  async latest(series: SeriesName, maxAgeMs: number): Promise<Map<string, MetricPoint>> {
    const rows = await this.db.query<{ node: string; at: Date; value: number }>(
      `SELECT DISTINCT ON (node) node, at, value FROM metric_points
       WHERE series = $1 AND at >= $2 ORDER BY node, at DESC`,
      [series, new Date(this.clock() - maxAgeMs)],
    );
    return new Map(rows.map((r) => [r.node, { series, node: r.node, at: r.at.getTime(), value: r.value }]));
  }

  /** The baseline of one node's series (default: the fleet-wide one) at `at` (default now). */
  async baseline(series: SeriesName, options: { node?: string; at?: number } = {}): Promise<Baseline | null> {
    const node = options.node ?? FLEET_NODE;
    return (await this.baselines(series, { at: options.at, node })).get(node) ?? null;
  }

  /**
   * Baselines of every node of a series at once (one query), keyed by node,
   * the fleet-wide one under FLEET_NODE: mean ± stddev of the samples in the
   * `baselineDays` before `at`, the current hour excluded. From the same hour
   * of day (UTC) when at least 3 earlier days have it (traffic follows the
   * clock), else from every hour of the window; none with fewer than 6 hours.
   */
  async baselines(
    series: SeriesName,
    options: { at?: number; node?: string } = {},
  ): Promise<Map<string, Baseline>> {
    const at = options.at ?? this.clock();
    const until = hourStart(at);
    const rows = await this.db.query<Aggregates>(
      `SELECT node, count(*) AS hours, sum(samples)::float8 AS n, sum(sum) AS s, sum(sum_squares) AS ss,
              count(*) FILTER (WHERE same) AS same_hours,
              (sum(samples) FILTER (WHERE same))::float8 AS hn,
              sum(sum) FILTER (WHERE same) AS hs,
              sum(sum_squares) FILTER (WHERE same) AS hss
       FROM (SELECT *, extract(hour FROM hour AT TIME ZONE 'UTC') = $4 AS same FROM metric_rollups
             WHERE series = $1 AND hour >= $2 AND hour < $3 AND ($5::text IS NULL OR node = $5)) AS w
       GROUP BY node`,
      [
        series,
        new Date(until - this.settings.baselineDays * DAY_MS),
        new Date(until),
        new Date(at).getUTCHours(),
        options.node ?? null,
      ],
    );
    const out = new Map<string, Baseline>();
    for (const r of rows) {
      const b = baselineOf(r);
      if (b) out.set(r.node, b);
    }
    return out;
  }

  /**
   * Deletes what is past retention, and the series of all but the `maxNodes`
   * most recently seen nodes (a fleet whose node ids churn cannot grow the
   * tables). Returns how many rows went.
   */
  async compact(now = this.clock()): Promise<HistorySize> {
    // One statement: atomic, and the ranking (newest hour per node, from the rollups, which every
    // stored point has) is computed once. The conditions are disjoint so no row is deleted twice.
    const [row] = await this.db.query<HistorySize>(
      `WITH ranked AS (
         SELECT series, node FROM (
           SELECT series, node, row_number() OVER (PARTITION BY series ORDER BY max(hour) DESC, node) AS rank
           FROM metric_rollups WHERE node <> $4 GROUP BY series, node) AS r
         WHERE rank > $3
       ), old_points AS (
         DELETE FROM metric_points WHERE at < $1 RETURNING 1
       ), old_rollups AS (
         DELETE FROM metric_rollups WHERE hour < $2 RETURNING 1
       ), extra_points AS (
         DELETE FROM metric_points p USING ranked x
         WHERE p.series = x.series AND p.node = x.node AND p.at >= $1 RETURNING 1
       ), extra_rollups AS (
         DELETE FROM metric_rollups r USING ranked x
         WHERE r.series = x.series AND r.node = x.node AND r.hour >= $2 RETURNING 1
       )
       SELECT (SELECT count(*) FROM old_points) + (SELECT count(*) FROM extra_points) AS points,
              (SELECT count(*) FROM old_rollups) + (SELECT count(*) FROM extra_rollups) AS rollups`,
      [
        new Date(this.rawCutoff(now)),
        new Date(now - this.settings.historyDays * DAY_MS),
        this.settings.maxNodes,
        FLEET_NODE,
      ],
    );
    return row ?? { points: 0, rollups: 0 };
  }

  /** Rows in each table now. */
  async size(): Promise<HistorySize> {
    const [row] = await this.db.query<HistorySize>(
      "SELECT (SELECT count(*) FROM metric_points) AS points, (SELECT count(*) FROM metric_rollups) AS rollups",
    );
    return row ?? { points: 0, rollups: 0 };
  }

  /** Raw samples are kept from the start of the hour `rawRetentionHours` ago; hourly means before it. */
  rawCutoff(now: number): number {
    return hourStart(now - this.settings.rawRetentionHours * HOUR_MS);
  }
}

interface Aggregates {
  node: string;
  hours: number;
  n: number;
  s: number;
  ss: number;
  same_hours: number;
  hn: number | null;
  hs: number | null;
  hss: number | null;
}

function baselineOf(r: Aggregates): Baseline | null {
  if (r.hours < MIN_BASELINE_HOURS) return null;
  if (r.same_hours >= MIN_HOUR_OF_DAY_DAYS && r.hn !== null && r.hs !== null && r.hss !== null) {
    return { ...meanAndStddev(r.hn, r.hs, r.hss), basis: "hour-of-day" };
  }
  return { ...meanAndStddev(r.n, r.s, r.ss), basis: "window" };
}

/**
 * Population mean and standard deviation from a count, a sum and a sum of
 * squares. Cancellation can make the variance slightly negative for a flat
 * series; it is clamped to zero.
 */
export function meanAndStddev(n: number, sum: number, sumSquares: number) {
  const mean = sum / n;
  const variance = Math.max(0, sumSquares / n - mean * mean);
  return { mean, stddev: Math.sqrt(variance), samples: n };
}

export function hourStart(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}
