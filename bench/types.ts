/** Shared shapes of the benchmark harness. */

/** `imgfleet` runs with auth.mode=none; `imgfleet-auth` with API keys (the auth phase). */
export type ServerName = "ceiling" | "imgfleet" | "imgfleet-auth";

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

/** One alternation of the auth phase: imgfleet without auth, then with, back to back. */
export interface AuthRound {
  withoutAuth: Measurement;
  withAuth: Measurement;
  /** with / without, 2xx per second. */
  ratio: number;
  attempts: number;
  noisy: string | null;
}

/** p50 and p99 in ms, each the median over the rounds (autocannon gives percentiles, not samples). */
export interface MedianLatency {
  p50: number;
  p99: number;
}

/** imgfleet with API keys against imgfleet without, one concurrency, over all rounds. */
export interface AuthComparison {
  workload: string;
  concurrency: number;
  rounds: AuthRound[];
  /** 2xx responses over seconds, summed over the rounds. */
  withoutAuthOkRps: number;
  withAuthOkRps: number;
  /** withAuthOkRps / withoutAuthOkRps: the figure the target is about. */
  ratio: number;
  withoutAuthLatencyMs: MedianLatency;
  withAuthLatencyMs: MedianLatency;
  /** The `auth` step of Server-Timing (request log) of the authenticated server. */
  authStepMs: MedianLatency;
  /** Set when any kept round ran beside too much foreign CPU. */
  noisy: string | null;
  /** Set when any kept round had failed requests. */
  flagged: string | null;
}
