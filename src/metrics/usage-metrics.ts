import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Lag is seconds when healthy (flush interval + one confirm round) and hours when the database was down. */
const LAG_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400];

export function createUsageMetrics(registry: Registry) {
  const r = { registers: [registry] };
  return {
    recordsBuffered: new Gauge({
      ...r,
      name: "imgfleet_usage_records_buffered",
      help: "Meter records in the open batch (journaled to the spool, not yet sealed)",
    }),
    recordsDropped: new Counter({
      ...r,
      name: "imgfleet_usage_records_dropped_total",
      help: "Meter records not kept (spool full with usage.spool.onFull=serve, or a spool write error): unbilled work",
      labelNames: ["reason"] as const,
    }),
    spoolBytes: new Gauge({
      ...r,
      name: "imgfleet_usage_spool_bytes",
      help: "Size of the usage spool's segment files",
    }),
    spoolCapacity: new Gauge({
      ...r,
      name: "imgfleet_usage_spool_capacity_bytes",
      help: "usage.spool.maxBytes: beyond it new requests are refused (onFull=reject)",
    }),
    oldestUnshippedAge: new Gauge({
      ...r,
      name: "imgfleet_usage_oldest_uncommitted_batch_age_seconds",
      help: "Age of the oldest sealed batch the database has not yet committed (0 when none)",
    }),
    batchesSealed: new Counter({ ...r, name: "imgfleet_usage_batches_sealed_total", help: "Batches sealed" }),
    batchesShipped: new Counter({
      ...r,
      name: "imgfleet_usage_batches_shipped_total",
      help: "Batches handed to the usage log, re-ships included",
    }),
    batchesReshipped: new Counter({
      ...r,
      name: "imgfleet_usage_batches_reshipped_total",
      help: "Batches shipped again because the database had not committed them in time",
    }),
    segmentsDeleted: new Counter({
      ...r,
      name: "imgfleet_usage_spool_segments_deleted_total",
      help: "Spool segments deleted once all their batches were committed",
    }),
    shipErrors: new Counter({
      ...r,
      name: "imgfleet_usage_ship_errors_total",
      help: "Failed shipping or commit checks (usage log full, database down); retried with backoff",
    }),
    batchesAggregated: new Counter({
      ...r,
      name: "imgfleet_usage_batches_aggregated_total",
      help: "Batches the aggregator added to the rollups",
    }),
    duplicatesIgnored: new Counter({
      ...r,
      name: "imgfleet_usage_duplicate_batches_total",
      help: "Batches delivered again after they had been counted: ignored",
    }),
    aggregationLag: new Histogram({
      ...r,
      name: "imgfleet_usage_aggregation_lag_seconds",
      help: "From a batch's seal to its commit in the rollups",
      buckets: LAG_BUCKETS,
    }),
    aggregateErrors: new Counter({
      ...r,
      name: "imgfleet_usage_aggregate_errors_total",
      help: "Batches the aggregator failed to commit or archive (database or disk); delivered again",
    }),
  };
}

export type UsageMetrics = ReturnType<typeof createUsageMetrics>;
