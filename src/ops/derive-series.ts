import type { Bucket, Exposition } from "./prometheus-text.js";
import { SERIES, type SeriesName } from "./series.js";

/**
 * Where each series comes from in a node's /metrics. The default process
 * metrics carry prom-client's own `process_` prefix after ours, hence
 * `imgfleet_process_process_…`.
 */
const M = {
  httpDuration: "imgfleet_http_request_duration_seconds",
  rejections: "imgfleet_rejections_total",
  cpuSeconds: "imgfleet_process_process_cpu_seconds_total",
  startTime: "imgfleet_process_process_start_time_seconds",
  residentMemory: "imgfleet_process_process_resident_memory_bytes",
  eventLoopP99: "imgfleet_process_nodejs_eventloop_lag_p99_seconds",
  queueDepth: "imgfleet_queue_depth",
  queueOldestAge: "imgfleet_queue_oldest_age_seconds",
  workers: "imgfleet_workers",
  spoolBytes: "imgfleet_usage_spool_bytes",
  spoolOldestAge: "imgfleet_usage_oldest_uncommitted_batch_age_seconds",
  aggregationLag: "imgfleet_usage_aggregation_lag_seconds",
  propagation: "imgfleet_identity_propagation_seconds",
  diskFree: "imgfleet_disk_free_bytes",
} as const;

/** The route whose requests the rate, error rate and latency series describe. */
const RESIZE = { route: "/v1/resize" } as const;

/** One node's /metrics as read at `at` (epoch ms, the sampler's clock). */
export interface Scrape {
  node: string;
  at: number;
  exposition: Exposition;
}

/**
 * What a node did between two scrapes, in a form that adds up across nodes:
 * rates, raw counts for ratios, and histogram bucket deltas for percentiles.
 */
export interface Activity {
  requestRate: number;
  rejectionRate: number;
  cpuCores: number;
  requests: number;
  errors: number;
  latency: Bucket[];
  aggregationLag: Bucket[];
  propagation: Bucket[];
}

type GaugeSeries =
  | "queue_depth"
  | "queue_oldest_age"
  | "spool_bytes"
  | "spool_oldest_age"
  | "memory"
  | "event_loop_delay"
  | "disk_free";

/** The inputs of every series for one node at one scrape. */
export interface NodeWindow {
  node: string;
  at: number;
  /** Null on a node's first scrape, and after it restarted (its counters went back to zero). */
  activity: Activity | null;
  gauges: Partial<Record<GaugeSeries, number>>;
  /** Null on nodes without worker processes. */
  workers: { busy: number; running: number } | null;
}

export type SeriesValues = Partial<Record<SeriesName, number>>;

/** The window ending at `current`, given the node's previous scrape (if any). */
export function windowOf(current: Scrape, previous: Scrape | undefined): NodeWindow {
  const e = current.exposition;
  const busy = e.value(M.workers, { state: "busy" });
  const idle = e.value(M.workers, { state: "idle" });
  const eventLoop = e.value(M.eventLoopP99);
  return {
    node: current.node,
    at: current.at,
    activity: previous ? activityBetween(previous, current) : null,
    gauges: {
      queue_depth: e.value(M.queueDepth),
      queue_oldest_age: e.value(M.queueOldestAge),
      spool_bytes: e.value(M.spoolBytes),
      spool_oldest_age: e.value(M.spoolOldestAge),
      memory: e.value(M.residentMemory),
      event_loop_delay: eventLoop === undefined ? undefined : eventLoop * 1000,
      disk_free: e.value(M.diskFree),
    },
    workers: busy === undefined || idle === undefined ? null : { busy, running: busy + idle },
  };
}

function activityBetween(before: Scrape, after: Scrape): Activity | null {
  const seconds = (after.at - before.at) / 1000;
  const a = after.exposition;
  const b = before.exposition;
  if (seconds <= 0 || a.value(M.startTime) !== b.value(M.startTime)) return null;
  const counts = (e: Exposition) => {
    const all = e.samples(`${M.httpDuration}_count`, RESIZE);
    return {
      requests: all.reduce((n, s) => n + s.value, 0),
      errors: all.filter((s) => s.labels.status?.startsWith("5")).reduce((n, s) => n + s.value, 0),
    };
  };
  const [now, then] = [counts(a), counts(b)];
  const deltas = {
    requests: now.requests - then.requests,
    errors: now.errors - then.errors,
    rejections: (a.sum(M.rejections) ?? 0) - (b.sum(M.rejections) ?? 0),
    cpu: (a.value(M.cpuSeconds) ?? 0) - (b.value(M.cpuSeconds) ?? 0),
  };
  const latency = bucketDelta(a.buckets(M.httpDuration, RESIZE), b.buckets(M.httpDuration, RESIZE));
  const aggregationLag = bucketDelta(a.buckets(M.aggregationLag), b.buckets(M.aggregationLag));
  const propagation = bucketDelta(a.buckets(M.propagation), b.buckets(M.propagation));
  // A counter that went down means a reset we did not see in the start time: start over.
  if (Object.values(deltas).some((d) => d < 0) || !latency || !aggregationLag || !propagation) return null;
  return {
    requestRate: deltas.requests / seconds,
    rejectionRate: deltas.rejections / seconds,
    cpuCores: deltas.cpu / seconds,
    requests: deltas.requests,
    errors: deltas.errors,
    latency,
    aggregationLag,
    propagation,
  };
}

/** Observations per bucket between two scrapes; null when a bucket went down (a reset). */
function bucketDelta(after: Bucket[], before: Bucket[]): Bucket[] | null {
  const earlier = new Map(before.map((b) => [b.le, b.count]));
  const out = after.map((b) => ({ le: b.le, count: b.count - (earlier.get(b.le) ?? 0) }));
  return out.some((b) => b.count < 0) ? null : out;
}

/**
 * The `q` quantile of cumulative buckets, interpolating linearly within the
 * bucket it falls in (as PromQL's histogram_quantile does; the first
 * bucket's lower bound is 0). Falling in `+Inf` gives the highest finite
 * bound. Undefined with no observations.
 */
export function quantile(q: number, buckets: readonly Bucket[]): number | undefined {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Number.POSITIVE_INFINITY) return lower;
      if (b.count === below) return b.le;
      return lower + ((b.le - lower) * (rank - below)) / (b.count - below);
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

/** Every series computable from one node's window; missing ones could not be (no traffic, first scrape). */
export function nodeValues(w: NodeWindow): SeriesValues {
  return clean({ ...activityValues(w.activity), ...w.gauges, ...utilisation(w.workers ? [w.workers] : []) });
}

/**
 * The fleet-wide values of one round: rates and CPU summed, the error rate
 * and utilisation from summed counts, percentiles from merged buckets (not
 * an average of percentiles), gauges by their series' `aggregate`.
 */
export function fleetValues(windows: readonly NodeWindow[]): SeriesValues {
  const active = windows.flatMap((w) => (w.activity ? [w.activity] : []));
  const merged: Activity | null =
    active.length === 0
      ? null
      : {
          requestRate: sumOf(active.map((a) => a.requestRate)),
          rejectionRate: sumOf(active.map((a) => a.rejectionRate)),
          cpuCores: sumOf(active.map((a) => a.cpuCores)),
          requests: sumOf(active.map((a) => a.requests)),
          errors: sumOf(active.map((a) => a.errors)),
          latency: mergeBuckets(active.map((a) => a.latency)),
          aggregationLag: mergeBuckets(active.map((a) => a.aggregationLag)),
          propagation: mergeBuckets(active.map((a) => a.propagation)),
        };
  const gauges: SeriesValues = {};
  for (const name of Object.keys(windows[0]?.gauges ?? {}) as GaugeSeries[]) {
    const values = windows.map((w) => w.gauges[name]).filter(isFiniteNumber);
    if (values.length > 0) gauges[name] = aggregate(SERIES[name].aggregate, values);
  }
  const workers = windows.flatMap((w) => (w.workers ? [w.workers] : []));
  return clean({ ...activityValues(merged), ...gauges, ...utilisation(workers) });
}

function activityValues(a: Activity | null): SeriesValues {
  if (!a) return {};
  const ms = (q: number) => {
    const s = quantile(q, a.latency);
    return s === undefined ? undefined : s * 1000;
  };
  return {
    request_rate: a.requestRate,
    error_rate: a.requests > 0 ? a.errors / a.requests : 0,
    latency_p50: ms(0.5),
    latency_p99: ms(0.99),
    rejection_rate: a.rejectionRate,
    cpu: a.cpuCores,
    aggregation_lag: quantile(0.99, a.aggregationLag),
    identity_propagation: quantile(0.99, a.propagation),
  };
}

function utilisation(workers: readonly { busy: number; running: number }[]): SeriesValues {
  const running = sumOf(workers.map((w) => w.running));
  return running > 0 ? { worker_utilisation: sumOf(workers.map((w) => w.busy)) / running } : {};
}

/** Sums bucket counts by upper bound. */
export function mergeBuckets(lists: readonly Bucket[][]): Bucket[] {
  const byBound = new Map<number, number>();
  for (const list of lists) for (const b of list) byBound.set(b.le, (byBound.get(b.le) ?? 0) + b.count);
  return [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

export function aggregate(how: "sum" | "mean" | "max" | "min", values: readonly number[]): number {
  switch (how) {
    case "sum":
      return sumOf(values);
    case "mean":
      return sumOf(values) / values.length;
    case "max":
      return Math.max(...values);
    case "min":
      return Math.min(...values);
  }
}

function sumOf(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function isFiniteNumber(v: number | undefined): v is number {
  return v !== undefined && Number.isFinite(v);
}

/** Drops what could not be computed (undefined, NaN, ±Inf): a gap, never a made-up zero. */
function clean(values: Record<string, number | undefined>): SeriesValues {
  const out: SeriesValues = {};
  for (const [k, v] of Object.entries(values)) if (isFiniteNumber(v)) out[k as SeriesName] = v;
  return out;
}
