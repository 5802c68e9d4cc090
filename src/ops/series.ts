/**
 * The key series the control role keeps history of, one value per node per
 * sample. Names are stable: the console, the CLI, alert rules and the
 * Grafana dashboard refer to them.
 */
export const SERIES = {
  request_rate: {
    unit: "req/s",
    title: "Resize requests per second",
    label: "request rate",
    aggregate: "sum",
  },
  error_rate: {
    unit: "ratio",
    title: "Share of resize requests answered 5xx",
    label: "error rate",
    aggregate: "mean",
  },
  latency_p50: { unit: "ms", title: "Resize latency, median", label: "p50 latency", aggregate: "max" },
  latency_p99: {
    unit: "ms",
    title: "Resize latency, 99th percentile",
    label: "p99 latency",
    aggregate: "max",
  },
  queue_depth: { unit: "jobs", title: "Jobs waiting for a worker", label: "queue depth", aggregate: "max" },
  queue_oldest_age: {
    unit: "s",
    title: "Age of the oldest waiting job",
    label: "oldest queued job",
    aggregate: "max",
  },
  worker_utilisation: {
    unit: "ratio",
    title: "Share of worker processes busy",
    label: "worker utilisation",
    aggregate: "mean",
  },
  rejection_rate: {
    unit: "req/s",
    title: "Requests refused per second (all reasons)",
    label: "rejection rate",
    aggregate: "sum",
  },
  spool_bytes: { unit: "bytes", title: "Usage spool backlog", label: "usage spool", aggregate: "sum" },
  spool_oldest_age: {
    unit: "s",
    title: "Age of the oldest usage batch not yet committed",
    label: "oldest uncommitted usage batch",
    aggregate: "max",
  },
  aggregation_lag: {
    unit: "s",
    title: "Usage aggregation lag, 99th percentile",
    label: "usage aggregation lag",
    aggregate: "max",
  },
  identity_propagation: {
    unit: "s",
    title: "Identity change propagation, 99th percentile",
    label: "identity propagation",
    aggregate: "max",
  },
  cpu: { unit: "cores", title: "CPU used by the node's main process", label: "CPU", aggregate: "sum" },
  memory: {
    unit: "bytes",
    title: "Resident memory of the node's main process",
    label: "memory",
    aggregate: "sum",
  },
  event_loop_delay: {
    unit: "ms",
    title: "Event-loop delay, 99th percentile",
    label: "event-loop delay",
    aggregate: "max",
  },
  disk_free: {
    unit: "bytes",
    title: "Free space on the data directory's disk",
    label: "free disk",
    aggregate: "min",
  },
} as const satisfies Record<string, SeriesInfo>;

/**
 * How one series is described. `label` starts the console's sentences ("p99
 * latency is 340 ms; …"). `aggregate` forms the fleet-wide value from the
 * nodes' values where the sampler cannot do better: ratios (error rate,
 * utilisation) and percentiles are recomputed from the summed counters and
 * merged histogram buckets instead, so `mean`/`max` there only describe the
 * fallback. The queue is shared in a fleet (every node reports the same
 * stream), hence `max` for its depth and age; free disk is the fullest node's.
 */
export interface SeriesInfo {
  unit: "req/s" | "ratio" | "ms" | "s" | "jobs" | "bytes" | "cores";
  title: string;
  label: string;
  aggregate: "sum" | "mean" | "max" | "min";
}

/**
 * The node name under which the fleet-wide value of each series is stored
 * beside the per-node ones. Node ids are `[-\w.]`, so it cannot collide.
 */
export const FLEET_NODE = "*";

export type SeriesName = keyof typeof SERIES;

export const SERIES_NAMES = Object.keys(SERIES) as SeriesName[];

export function isSeriesName(value: string): value is SeriesName {
  return Object.hasOwn(SERIES, value);
}

/** One sampled value. */
export interface MetricPoint {
  series: SeriesName;
  node: string;
  /** Epoch milliseconds. */
  at: number;
  value: number;
}

/** Mean ± standard deviation of a series over the baseline window; null when there is too little history. */
export interface Baseline {
  mean: number;
  stddev: number;
  samples: number;
  /** `hour-of-day`: from the same hour on earlier days; `window`: from every hour of the window. */
  basis: "hour-of-day" | "window";
}
