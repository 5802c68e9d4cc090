import { hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { migrate } from "../db/migrate.js";
import type { Database, JobDataPath, JobQueue, KeyValue, UsageLog } from "../ports/index.js";
import type { PendingResults } from "../staging/pending-results.js";
import type { StagingTable } from "../staging/staging-table.js";

/*
 * What every set of adapters is and shares, embedded or fleet: the Adapters
 * record the composition root wires parts from, the bounds both sets apply,
 * and the database both open. Its own module so that adapters.ts can load
 * fleet-adapters.ts lazily without the two importing each other.
 */

/** An identity record is a few hundred bytes; this bounds one far above that. */
export const MAX_IDENTITY_VALUE_BYTES = 16 * 1024;
/** A node's registration or a lease is a few hundred bytes. */
export const MAX_SMALL_VALUE_BYTES = 4096;
/** Registrations and leases: far more than any fleet has nodes. */
export const MAX_NODES = 10_000;
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
