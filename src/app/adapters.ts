import { join } from "node:path";
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
const MAX_IDENTITY_VALUE_BYTES = 16 * 1024;
/** Sealed batches waiting for the embedded aggregator; beyond it they wait in the spool instead. */
const USAGE_LOG_CAPACITY = 256;

export interface Adapters {
  nodeId: string;
  queue: JobQueue;
  staging: StagingTable;
  pending: PendingResults;
  dataPath: JobDataPath;
  db: Database;
  /** The bucket the identity data plane watches. */
  identityKv: KeyValue;
  /** Carries sealed usage batches from spools to the aggregator. */
  usageLog: UsageLog;
  close(): Promise<void>;
}

/**
 * The one seam where adapters are chosen from config. Embedded mode wires
 * in-process adapters and PGlite; PostgreSQL is used when `database.url` is
 * set. Adapters are imported lazily, so a node loads only what it uses.
 */
export async function createAdapters(config: Readonly<Config>): Promise<Adapters> {
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
  const usageLog = new MemoryUsageLog({ capacity: USAGE_LOG_CAPACITY });
  return {
    nodeId: "local",
    queue,
    staging,
    pending,
    dataPath: new LocalDataPath(staging, pending),
    db,
    identityKv,
    usageLog,
    async close() {
      await queue.close();
      await usageLog.close();
      await identityKv.close();
      await db.close();
    },
  };
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
