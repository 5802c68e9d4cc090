import { statfsSync } from "node:fs";
import type { Logger } from "pino";
import type { Readiness } from "../api/routes/health.js";
import type { Part } from "../config/roles.js";
import type { Config, Role } from "../config/schema.js";
import type { Singletons } from "../fleet/singletons.js";
import type { Identity } from "../identity/identity.js";
import type { Metrics } from "../metrics/metrics.js";
import type { UsageMeter } from "../usage/meter.js";
import { describeFailure, freeBytes, LOW_SPACE_BYTES, type StorageFailure } from "../util/storage.js";
import type { WorkerPool } from "../workers/worker-pool.js";
import type { Adapters } from "./adapters.js";

/** Staging above this share of its bound makes /readyz say "saturated" before requests start failing. */
const SATURATION_SHARE = 0.9;

export interface ReadinessInputs {
  adapters: Adapters;
  pool: WorkerPool | null;
  config: Readonly<Config>;
  roles: ReadonlySet<Role>;
  parts: ReadonlySet<Part>;
  state: { draining: boolean; started: boolean };
  identity: Identity;
  singletons: Singletons;
  /** The usage meter (null without metering): its spool may be unwritable. */
  meter: UsageMeter | null;
}

/** Whether this node can take work now, per part it runs, with the reasons when not (for the load balancer). */
export function readinessOf(s: ReadinessInputs): Readiness {
  const queue = s.adapters.queue.stats();
  const reasons: string[] = [];
  if (!s.state.started) reasons.push("starting");
  if (s.state.draining) reasons.push("draining");
  if (s.pool && s.pool.workers().length === 0) reasons.push("no worker process is running");
  if (s.parts.has("api-keys") && !s.identity.cache.loaded) reasons.push("API keys not loaded yet");
  if (s.parts.has("public-api")) {
    if (queue.depth >= queue.capacity) reasons.push("job queue full");
    if (s.adapters.staging.bytes >= s.adapters.staging.maxBytes * SATURATION_SHARE)
      reasons.push("upload staging nearly full");
  }
  reasons.push(...storageReasons(s));
  return {
    ready: reasons.length === 0,
    reasons,
    node: s.adapters.nodeId,
    roles: [...s.roles],
    parts: [...s.parts],
    leases: s.singletons.held(),
    queue: { depth: queue.depth, capacity: queue.capacity, oldestAgeMs: queue.oldestAgeMs },
    workers: s.pool
      ? { running: s.pool.workers().length, busy: s.pool.busyCount, configured: s.config.workers.count }
      : null,
  };
}

/**
 * A store under the data directory that cannot be written (the usage spool, the embedded database),
 * or the data directory's filesystem nearly full before anything failed: said with the path and what to do.
 */
function storageReasons(s: ReadinessInputs): string[] {
  const failures = [s.meter?.storageFailure ?? null, s.adapters.db.storageFailure?.() ?? null].filter(
    (f): f is StorageFailure => f !== null,
  );
  if (failures.length > 0) return failures.map(describeFailure);
  const free = freeBytes(s.config.dataDir);
  if (free === null || free >= LOW_SPACE_BYTES) return [];
  return [
    `disk nearly full: ${free} bytes free under ${s.config.dataDir}; free space on that filesystem before writes fail`,
  ];
}

/**
 * Logs each change of readiness once — not ready with its reasons, ready again — rather than a line
 * per probe: a load balancer asks every few seconds. Figures in the reasons (bytes free) are not a change.
 */
export function logReadinessChanges(read: () => Readiness, logger: Logger): () => Readiness {
  let last = "";
  return () => {
    const readiness = read();
    const key = readiness.ready ? "" : readiness.reasons.join("; ").replace(/\d+/g, "#");
    if (key !== last) {
      if (readiness.ready) logger.info("ready again: taking work");
      else logger.warn({ reasons: readiness.reasons }, `not ready: ${readiness.reasons.join("; ")}`);
      last = key;
    }
    return readiness;
  };
}

export function refreshLiveGauges(metrics: Metrics, adapters: Adapters, dataDir?: string): void {
  const q = adapters.queue.stats();
  metrics.queueDepth.set(q.depth);
  metrics.queueCapacity.set(q.capacity);
  metrics.queueOldestAge.set(q.oldestAgeMs / 1000);
  metrics.stagingBytes.set(adapters.staging.bytes);
  metrics.stagingCapacity.set(adapters.staging.maxBytes);
  if (dataDir !== undefined) refreshDiskGauges(metrics, dataDir);
}

/** Free and total bytes of the data directory's filesystem (one statfs call, microseconds). */
function refreshDiskGauges(metrics: Metrics, dataDir: string): void {
  try {
    const fs = statfsSync(dataDir);
    metrics.diskFree.set(fs.bavail * fs.bsize);
    metrics.diskSize.set(fs.blocks * fs.bsize);
  } catch {
    // The directory vanished under us: leave the last values; the data-dir lock and writes report it.
  }
}
