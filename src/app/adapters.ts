import type { Config } from "../config/schema.js";
import type { JobQueue } from "../queue/job-queue.js";
import { MemoryJobQueue } from "../queue/memory-queue.js";
import type { JobDataPath } from "../staging/data-path.js";
import { LocalDataPath } from "../staging/local-data-path.js";
import { PendingResults } from "../staging/pending-results.js";
import { StagingTable } from "../staging/staging-table.js";

export interface Adapters {
  nodeId: string;
  queue: JobQueue;
  staging: StagingTable;
  pending: PendingResults;
  dataPath: JobDataPath;
}

/**
 * The one seam where adapters are chosen from config. Embedded mode wires
 * in-process adapters; fleet adapters (NATS, PostgreSQL) will be imported
 * here lazily, so an embedded start cannot touch them by accident.
 */
export async function createAdapters(config: Readonly<Config>): Promise<Adapters> {
  const staging = new StagingTable(config.staging.maxBytes);
  const pending = new PendingResults();
  return {
    nodeId: "local",
    queue: new MemoryJobQueue({ capacity: config.queue.capacity, maxAttempts: config.queue.maxAttempts }),
    staging,
    pending,
    dataPath: new LocalDataPath(staging, pending),
  };
}
