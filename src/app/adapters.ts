import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { MemoryKeyValue } from "../kv/memory-kv.js";
import { MemoryJobQueue } from "../queue/memory-queue.js";
import { LocalDataPath } from "../staging/local-data-path.js";
import { PendingResults } from "../staging/pending-results.js";
import { StagingTable } from "../staging/staging-table.js";
import { MemoryUsageLog } from "../usage/memory-usage-log.js";
import type { WireRejections } from "../wire/wire.js";
import {
  type Adapters,
  MAX_IDENTITY_VALUE_BYTES,
  MAX_NODES,
  MAX_SESSION_VALUE_BYTES,
  MAX_SESSIONS,
  MAX_SMALL_VALUE_BYTES,
  openDatabase,
} from "./adapter-set.js";

export type { Adapters } from "./adapter-set.js";

/** Sealed batches waiting for the embedded aggregator; beyond it they wait in the spool instead. */
const USAGE_LOG_CAPACITY = 256;

/**
 * The one seam where adapters are chosen from config: with fleet.nats.servers
 * the fleet adapters (imported only then), else the embedded ones. PostgreSQL
 * is used when `database.url` is set, PGlite otherwise.
 */
export async function createAdapters(
  config: Readonly<Config>,
  logger: Logger,
  wire?: WireRejections,
): Promise<Adapters> {
  if (config.fleet.nats.servers.length > 0) {
    const { createFleetAdapters } = await import("./fleet-adapters.js");
    return createFleetAdapters(config, logger, wire);
  }
  return createEmbeddedAdapters(config);
}

async function createEmbeddedAdapters(config: Readonly<Config>): Promise<Adapters> {
  // First: the one step that can fail, before anything that holds a timer exists.
  const db = await openDatabase(config);
  const staging = StagingTable.fromConfig(config);
  const pending = new PendingResults();
  const queue = new MemoryJobQueue({
    capacity: config.queue.capacity,
    maxAttempts: config.queue.maxAttempts,
  });
  const identityKv = new MemoryKeyValue({
    maxEntries: config.auth.maxRecords,
    maxValueBytes: MAX_IDENTITY_VALUE_BYTES,
  });
  const small = (maxAgeMs: number) =>
    new MemoryKeyValue({ maxEntries: MAX_NODES, maxValueBytes: MAX_SMALL_VALUE_BYTES, maxAgeMs });
  const nodesKv = small(config.fleet.discoveryTtlMs);
  const leasesKv = small(config.fleet.leaseTtlMs);
  // A flag with per-tenant overrides can be far larger than a registration.
  const flagsKv = new MemoryKeyValue({ maxEntries: 1000, maxValueBytes: 256 * 1024 });
  const sessionsKv = new MemoryKeyValue({
    maxEntries: MAX_SESSIONS,
    maxValueBytes: MAX_SESSION_VALUE_BYTES,
    maxAgeMs: config.console.sessionLifetimeMs,
  });
  const usageLog = new MemoryUsageLog({ capacity: USAGE_LOG_CAPACITY });
  return {
    nodeId: config.fleet.nodeId ?? "local",
    fleet: false,
    queue,
    staging,
    pending,
    dataPath: new LocalDataPath(staging, pending),
    db,
    identityKv,
    nodesKv,
    leasesKv,
    flagsKv,
    sessionsKv,
    usageLog,
    brokerWarning: null,
    brokerVersion: null,
    async close() {
      await queue.close();
      await usageLog.close();
      for (const kv of [identityKv, nodesKv, leasesKv, flagsKv, sessionsKv]) await kv.close();
      await db.close();
    },
  };
}
