/**
 * The key series the control role keeps history of, one value per node per
 * sample. Names are stable: the console, the CLI, alert rules and the
 * Grafana dashboard refer to them.
 */
export const SERIES = {
  request_rate: { unit: "req/s", title: "Resize requests per second" },
  error_rate: { unit: "ratio", title: "Share of resize requests answered 5xx" },
  latency_p50: { unit: "ms", title: "Resize latency, median" },
  latency_p99: { unit: "ms", title: "Resize latency, 99th percentile" },
  queue_depth: { unit: "jobs", title: "Jobs waiting for a worker" },
  queue_oldest_age: { unit: "s", title: "Age of the oldest waiting job" },
  worker_utilisation: { unit: "ratio", title: "Share of worker processes busy" },
  rejection_rate: { unit: "req/s", title: "Requests refused per second (all reasons)" },
  spool_bytes: { unit: "bytes", title: "Usage spool backlog" },
  spool_oldest_age: { unit: "s", title: "Age of the oldest usage batch not yet committed" },
  aggregation_lag: { unit: "s", title: "Usage aggregation lag, 99th percentile" },
  identity_propagation: { unit: "s", title: "Identity change propagation, 99th percentile" },
  cpu: { unit: "cores", title: "CPU used by the node's main process" },
  memory: { unit: "bytes", title: "Resident memory of the node's main process" },
  event_loop_delay: { unit: "ms", title: "Event-loop delay, 99th percentile" },
  disk_free: { unit: "bytes", title: "Free space on the data directory's disk" },
} as const;

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
