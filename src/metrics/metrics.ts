import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { createIdentityMetrics } from "./identity-metrics.js";
import { createUsageMetrics } from "./usage-metrics.js";

/** Latency buckets in seconds: fine below 100 ms where interactive resizes live, coarse up to the deadline. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30];
const BYTE_BUCKETS = [1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 5e6, 1e7, 2.5e7];

/**
 * Every instrument of a node, on its own registry so that several nodes in
 * one process (tests) never share series.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "imgfleet_process_" });
  const r = { registers: [registry] };
  return {
    registry,
    httpDuration: new Histogram({
      ...r,
      name: "imgfleet_http_request_duration_seconds",
      help: "HTTP request latency by route and status",
      labelNames: ["route", "method", "status"] as const,
      buckets: LATENCY_BUCKETS,
    }),
    leaseHeld: new Gauge({
      ...r,
      name: "imgfleet_lease_held",
      help: "1 while this node holds a control singleton's lease (outbox-publisher, usage-aggregator, metrics-sampler), 0 while it stands by",
      labelNames: ["lease"] as const,
    }),
    inFlight: new Gauge({
      ...r,
      name: "imgfleet_http_in_flight_requests",
      help: "Requests being served now: from their first hook until their answer is written or their connection closes (a client that left included) and their work has settled",
    }),
    rejections: new Counter({
      ...r,
      name: "imgfleet_rejections_total",
      help: "Requests refused, by problem type (overloaded, too-large, bad-option, ...)",
      labelNames: ["reason"] as const,
    }),
    uploadRefusals: new Counter({
      ...r,
      name: "imgfleet_upload_refusals_total",
      help: "Requests refused or cut off for how they arrive, by limit: headers (not in time), rate (body below uploads.minBytesPerSecond), deadline (body past uploads.timeoutMs), tenant-share, staging",
      labelNames: ["limit"] as const,
    }),
    wireRejected: new Counter({
      ...r,
      name: "imgfleet_wire_rejected_total",
      help: "Messages read from the network and refused (unreadable, unknown version, invalid), by source (job, usage-batch, identity, discovery, lease, session, data-path-outcome, worker)",
      labelNames: ["source", "reason"] as const,
    }),
    inputBytes: new Counter({ ...r, name: "imgfleet_input_bytes_total", help: "Image bytes received" }),
    outputBytes: new Counter({ ...r, name: "imgfleet_output_bytes_total", help: "Image bytes sent" }),
    inputSize: new Histogram({
      ...r,
      name: "imgfleet_input_size_bytes",
      help: "Size of accepted input images",
      buckets: BYTE_BUCKETS,
    }),
    queueDepth: new Gauge({ ...r, name: "imgfleet_queue_depth", help: "Jobs waiting for a worker" }),
    queueCapacity: new Gauge({
      ...r,
      name: "imgfleet_queue_capacity",
      help: "Jobs the queue holds before 503",
    }),
    queueOldestAge: new Gauge({
      ...r,
      name: "imgfleet_queue_oldest_age_seconds",
      help: "Age of the oldest waiting job",
    }),
    queueWait: new Histogram({
      ...r,
      name: "imgfleet_queue_wait_seconds",
      help: "Time from enqueue to a worker taking the job",
      buckets: LATENCY_BUCKETS,
    }),
    processing: new Histogram({
      ...r,
      name: "imgfleet_processing_seconds",
      help: "Wall time of a resize inside a worker",
      labelNames: ["format"] as const,
      buckets: LATENCY_BUCKETS,
    }),
    jobsExpired: new Counter({
      ...r,
      name: "imgfleet_jobs_expired_total",
      help: "Jobs dropped before processing because their deadline had passed",
    }),
    jobsRedelivered: new Counter({
      ...r,
      name: "imgfleet_jobs_redelivered_total",
      help: "Jobs delivered again after their worker died",
    }),
    lateResults: new Counter({
      ...r,
      name: "imgfleet_late_results_total",
      help: "Results finished after their request had already been answered",
    }),
    stagingBytes: new Gauge({
      ...r,
      name: "imgfleet_staging_bytes",
      help: "Upload bytes held for queued jobs",
    }),
    stagingCapacity: new Gauge({ ...r, name: "imgfleet_staging_capacity_bytes", help: "Staging bound" }),
    workers: new Gauge({
      ...r,
      name: "imgfleet_workers",
      help: "Worker processes by state",
      labelNames: ["state"] as const,
    }),
    workerRestarts: new Counter({
      ...r,
      name: "imgfleet_worker_restarts_total",
      help: "Worker processes replaced, by reason (crash, timeout, memory)",
      labelNames: ["reason"] as const,
    }),
    workerRss: new Gauge({
      ...r,
      name: "imgfleet_worker_rss_bytes",
      help: "Resident memory of each worker after its last job",
      labelNames: ["worker"] as const,
    }),
    diskFree: new Gauge({
      ...r,
      name: "imgfleet_disk_free_bytes",
      help: "Space available to imgfleet on the data directory's filesystem",
    }),
    diskSize: new Gauge({
      ...r,
      name: "imgfleet_disk_size_bytes",
      help: "Size of the data directory's filesystem",
    }),
    identity: createIdentityMetrics(registry),
    usage: createUsageMetrics(registry),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
