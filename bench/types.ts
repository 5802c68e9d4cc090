/** Shared shapes of the benchmark harness. */

/**
 * `imgfleet`: auth.mode=none, metering on (the matrix, and the auth phase's baseline);
 * `imgfleet-auth`: with API keys (the auth phase's variant); `imgfleet-unmetered` and
 * `imgfleet-metered`: usage.enabled false and true (the metering phase);
 * `imgfleet-unsampled` and `imgfleet-sampled`: ops.sampling false and true at a 1 s
 * interval (the sampling phase). `fleet`: the local fleet behind HAProxy (the fleet phase).
 */
export type ServerName = "ceiling" | ImgfleetName | "fleet";
export type ImgfleetName =
  | "imgfleet"
  | "imgfleet-auth"
  | "imgfleet-unmetered"
  | "imgfleet-metered"
  | "imgfleet-unsampled"
  | "imgfleet-sampled";

/**
 * The processes a measurement counts as one server: a single tree (a server
 * and its workers), or several (the fleet: NATS, PostgreSQL, HAProxy, nodes).
 */
export interface ProcessSet {
  /** Each counted with all its descendants; the label names it in breakdowns (api-1, nats-2). */
  roots: { label: string; pid: number }[];
  /** Processes whose own CPU is the "main" share: imgfleet's API process; the fleet's API nodes. */
  main: number[];
}

export interface Workload {
  id: string;
  /** Path relative to the corpus directory. */
  file: string;
  /** Query string sent to both servers. */
  query: string;
  /** Output size the sanity check expects. */
  expect: { width: number; height: number };
}

/** What one autocannon run tells us, reduced to what the report needs. */
export interface LoadSummary {
  connections: number;
  durationS: number;
  /** 2xx responses per second over the run: failed requests do not count as throughput. */
  okRps: number;
  /** autocannon's own requests.average (all responses, per-second samples). */
  rpsAverage: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  responses: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Set when any request failed: the run is reported but never passes a target. */
  flagged: string | null;
}

export interface RssPeak {
  peakMb: number;
  /** Processes counted at the peak sample (server plus descendants). */
  processesAtPeak: number;
  /** RSS of each of them at the peak sample, the server first. */
  perProcessMb: number[];
  /** Several roots (the fleet): each root's tree at the peak sample, by label. */
  perRootMb?: Record<string, number>;
  /**
   * Several roots: the proportional set size of all their processes as the
   * run ended (shared pages split between their users; summed RSS counts
   * PostgreSQL's shared buffers once per backend).
   */
  pssAtEndMb?: number;
  samples: number;
}

/** Shares of the machine's CPU capacity (all cores) during one measurement, in percent. */
export interface CpuShare {
  busyPct: number;
  /** The loaded server's process tree. */
  serverPct: number;
  /** The server's main process alone (imgfleet: the API; the rest is its workers). */
  serverMainPct: number;
  /** Everything the harness started, the server and the load generator included. */
  benchPct: number;
  /** Processes outside the benchmark: above a few percent the run is noisy. */
  otherPct: number;
  /** Stolen by the hypervisor for other guests (a VM's noisy neighbours): noise too. */
  stealPct: number;
  /** Several roots (the fleet): each root's tree, by label. */
  perRootPct?: Record<string, number>;
  /** and each root process alone (a worker node without its worker processes). */
  perRootOwnPct?: Record<string, number>;
}

/** imgfleet's own per-request breakdown (its request log, the same steps as Server-Timing), percentiles in ms. */
export interface ServerTimings {
  total: Percentiles;
  /** Authentication and tenant limits, before the body is read (0.1 ms resolution). */
  auth: Percentiles;
  probe: Percentiles;
  queue: Percentiles;
  process: Percentiles;
  /** CPU time of the worker during the job. */
  cpu: Percentiles;
  /** total - process - probe - queue: HTTP, IPC, scheduling. */
  other: Percentiles;
  /** Sum of process times: divided by the run's duration, the average number of busy workers. */
  processSumMs: number;
}

export interface Measurement {
  server: ServerName;
  workload: string;
  concurrency: number;
  load: LoadSummary;
  rss: RssPeak;
  cpu: CpuShare;
  /** CPU ms per successful response: the server's whole tree, and its main process alone. */
  cpuMsPerOk: { server: number; serverMain: number };
  /** imgfleet servers only. */
  serverTimings?: ServerTimings;
  /** imgfleet servers only: its usage pipeline (from /metrics) when the run ended, and once drained. */
  usage?: UsageAfterRun;
  /** Wall-clock span of the measured run (epoch ms), warm-up excluded. */
  run: { startedAt: number; endedAt: number };
}

/** The `imgfleet_usage_*` series of one /metrics scrape (labelled series summed). */
export interface UsageSnapshot {
  spoolBytes: number;
  spoolCapacityBytes: number;
  /** Records in the open batch: journaled, not sealed yet. */
  recordsBuffered: number;
  /** Age of the oldest sealed batch the database has not committed; 0 when none. */
  oldestUncommittedAgeS: number;
  batchesSealed: number;
  batchesShipped: number;
  batchesReshipped: number;
  segmentsDeleted: number;
  shipErrors: number;
  batchesAggregated: number;
  duplicateBatches: number;
  aggregateErrors: number;
  /** Records not kept: unbilled work. */
  recordsDropped: number;
  /** Mean seal-to-commit time of the batches aggregated so far (NaN before the first). */
  aggregationLagMeanS: number;
}

/**
 * The usage pipeline after one measured run: as the run ended, and after the
 * harness waited for the open batch to be sealed and every sealed batch
 * committed, so that none of it falls on the next measurement.
 */
export interface UsageAfterRun {
  atEnd: UsageSnapshot;
  drained: UsageSnapshot;
  /** From the run's end until drained; null when it had not drained within the harness's limit. */
  drainMs: number | null;
}

export interface Pair {
  workload: string;
  concurrency: number;
  ceiling: Measurement;
  imgfleet: Measurement;
  /** Measurements of this pair, including attempts discarded as noisy. */
  attempts: number;
  /** Set when even the kept attempt ran beside too much foreign CPU. */
  noisy: string | null;
}

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
}

export interface BoundaryCost {
  requests: number;
  clientMs: Percentiles;
  total: Percentiles;
  process: Percentiles;
  queue: Percentiles;
  probe: Percentiles;
  overhead: Percentiles;
  inProcessMs: Percentiles;
}

export interface SharpRate {
  concurrency: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  latencyMs: Percentiles;
  sharpConcurrency: number;
}

export interface TargetCheck {
  name: string;
  status: "PASS" | "MISS" | "SKIP";
  detail: string;
}

/** One alternation of a comparison: the baseline server, then the variant, back to back. */
export interface Round {
  baseline: Measurement;
  variant: Measurement;
  /** variant / baseline, 2xx per second. */
  ratio: number;
  attempts: number;
  noisy: string | null;
}

/** p50 and p99 in ms, each the median over the rounds (autocannon gives percentiles, not samples). */
export interface MedianLatency {
  p50: number;
  p99: number;
}

/** CPU ms per successful response, medians over the rounds: the server's whole tree, and its main (API) process. */
export interface MedianCpu {
  server: number;
  serverMain: number;
}

/**
 * A variant of imgfleet (a feature on) against a baseline (it off), one
 * workload at one concurrency, over all rounds. `X`: figures only this
 * feature has (the auth step; the usage pipeline).
 */
export interface Comparison<X = unknown> {
  phase: string;
  workload: string;
  concurrency: number;
  rounds: Round[];
  /** 2xx responses over seconds, summed over the rounds. */
  baselineOkRps: number;
  variantOkRps: number;
  /** variantOkRps / baselineOkRps: the figure the target is about. */
  ratio: number;
  baselineLatencyMs: MedianLatency;
  variantLatencyMs: MedianLatency;
  baselineCpuMsPerOk: MedianCpu;
  variantCpuMsPerOk: MedianCpu;
  extra: X;
  /** Set when any kept round ran beside too much foreign CPU. */
  noisy: string | null;
  /** Set when any kept round had failed requests, or the feature found a fault (records dropped). */
  flagged: string | null;
}

/** The auth phase's own figures. */
export interface AuthExtra {
  /** The `auth` step of Server-Timing (request log) of the authenticated server: key check and tenant limits. */
  authStepMs: MedianLatency;
}

/** The metering phase's own figures: the metered server's usage pipeline over one concurrency's kept rounds. */
export interface MeteringExtra {
  /** Largest spool as a run ended. */
  spoolBytesAtEndMax: number | null;
  /** Largest count of journaled, unsealed records as a run ended. */
  recordsUnsealedAtEndMax: number | null;
  /** Slowest drain after a run (null when a run did not drain within the harness's limit). */
  drainMsMax: number | null;
  undrainedRounds: number;
  /** Cumulative counters of the metered server after the last round, drained. */
  batchesSealed: number | null;
  recordsDropped: number | null;
  duplicateBatches: number | null;
  shipErrors: number | null;
  /** Batches the unmetered server sealed: 0, or usage.enabled=false was not honoured. */
  baselineBatchesSealed: number | null;
}

/** The sampling phase's own figures, from the sampled server's metric history (admin API). */
export interface SamplingExtra {
  /**
   * Points of the fleet-wide `request_rate` series (one per sampling round
   * that could compute a rate) the sampled server wrote during its kept runs
   * at this concurrency; null when the history could not be read.
   */
  samplesDuringRuns: number | null;
  /** Seconds of those runs together. */
  runSeconds: number;
  /** Mean of those points (requests per second): the traffic the sampler saw. */
  sampledRateMean: number | null;
  /** Mean time between consecutive points inside one run: the sampler's real pace under load. */
  sampleGapMeanMs: number | null;
  /** Points the unsampled server wrote over the whole phase: 0, or ops.sampling=false was not honoured. */
  baselineSamples: number | null;
}
