import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { migrate } from "../db/migrate.js";
import type { KeyValue } from "../kv/key-value.js";
import { MemoryKeyValue } from "../kv/memory-kv.js";
import type { JobQueue } from "../queue/job-queue.js";
import { MemoryJobQueue } from "../queue/memory-queue.js";
import type { JobDataPath } from "../staging/data-path.js";
import { LocalDataPath } from "../staging/local-data-path.js";
import { PendingResults } from "../staging/pending-results.js";
import { StagingTable } from "../staging/staging-table.js";
import { MemoryUsageLog } from "../usage/memory-usage-log.js";
import type { UsageLog } from "../usage/usage-log.js";

/** An identity record is a few hundred bytes; this bounds one far above that. */
export const MAX_IDENTITY_VALUE_BYTES = 16 * 1024;
/** A node's registration or a lease is a few hundred bytes. */
export const MAX_SMALL_VALUE_BYTES = 4096;
/** Sealed batches waiting for the embedded aggregator; beyond it they wait in the spool instead. */
const USAGE_LOG_CAPACITY = 256;
/** Registrations and leases: far more than any fleet has nodes. */
const MAX_NODES = 10_000;
/** Open console sessions (a few hundred bytes each): far more than a team of administrators opens. */
export const MAX_SESSIONS = 10_000;
export const MAX_SESSION_VALUE_BYTES = 1024;

export interface Adapters {
  /** This node's id in discovery, staged refs and usage batches. */
  nodeId: string;
  /** Whether these are the fleet adapters (NATS, PostgreSQL, HTTP between nodes). */
  fleet: boolean;
  queue: JobQueue;
  staging: StagingTable;
  pending: PendingResults;
  dataPath: JobDataPath;
  db: Database;
  /** The bucket the identity data plane watches. */
  identityKv: KeyValue;
  /** Service discovery: every node's registration. */
  nodesKv: KeyValue;
  /** Leases of the control singletons. */
  leasesKv: KeyValue;
  /** Feature flags, watched by every node. */
  flagsKv: KeyValue;
  /** Web console sessions; max age = the session lifetime, so an abandoned one is removed by the bucket. */
  sessionsKv: KeyValue;
  /** Carries sealed usage batches from spools to the aggregator. */
  usageLog: UsageLog;
  /** The server's version and a warning when it is too old for production (fleet only). */
  brokerWarning: string | null;
  /** nats-server's version as it announced itself (fleet only), for the support report. */
  brokerVersion: string | null;
  close(): Promise<void>;
}

/**
 * The one seam where adapters are chosen from config: with fleet.nats.servers
 * the fleet adapters (imported only then), else the embedded ones. PostgreSQL
 * is used when `database.url` is set, PGlite otherwise.
 */
export async function createAdapters(config: Readonly<Config>, logger: Logger): Promise<Adapters> {
  if (config.fleet.nats.servers.length > 0) {
    const { createFleetAdapters } = await import("./fleet-adapters.js");
    return createFleetAdapters(config, logger);
  }
  return createEmbeddedAdapters(config);
}

async function createEmbeddedAdapters(config: Readonly<Config>): Promise<Adapters> {
  const staging = new StagingTable(config.staging.maxBytes);
  const pending = new PendingResults();
  const queue = new MemoryJobQueue({
    capacity: config.queue.capacity,
    maxAttempts: config.queue.maxAttempts,
  });
  const db = await openDatabase(config);
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

/** A node id that is unique in the fleet and still tells a human which machine it is. */
export function defaultNodeId(): string {
  return `${hostname().split(".")[0]}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Opens the configured database and brings its schema up to date. */
export async function openDatabase(config: Readonly<Config>): Promise<Database> {
  const { url, poolMax, connectTimeoutMs, statementTimeoutMs } = config.database;
  let db: Database;
  if (url) {
    const { PostgresDatabase } = await import("../db/postgres-database.js");
    db = await PostgresDatabase.open({ url, poolMax, connectTimeoutMs, statementTimeoutMs });
  } else {
    const { PgliteDatabase } = await import("../db/pglite-database.js");
    db = await PgliteDatabase.open(join(config.dataDir, "pglite"));
  }
  try {
    await migrate(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}
