import type { JobMessage, StagedRef } from "../queue/job-queue.js";
import type { JobDataPath } from "./data-path.js";
import type { JobOutcome } from "./job-outcome.js";
import type { PendingResults } from "./pending-results.js";
import type { StagingTable } from "./staging-table.js";

/** Embedded data path: the API and the worker pool share this process. */
export class LocalDataPath implements JobDataPath {
  constructor(
    private readonly staging: StagingTable,
    private readonly pending: PendingResults,
  ) {}

  async fetchInput(ref: StagedRef): Promise<Buffer | undefined> {
    return this.staging.get(ref.key);
  }

  async postResult(job: JobMessage, outcome: JobOutcome): Promise<boolean> {
    return this.pending.settle(job.id, outcome);
  }

  isWaiting(job: JobMessage): boolean {
    return this.pending.has(job.id);
  }
}
