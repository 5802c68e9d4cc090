import type { JobMessage, StagedRef } from "../queue/job-queue.js";
import type { JobDataPath } from "./data-path.js";
import type { JobOutcome } from "./job-outcome.js";

/**
 * A fleet worker's data path: jobs staged by an API role in this same
 * process are served from memory; every other job crosses HTTP to the node
 * that staged it.
 */
export class FleetDataPath implements JobDataPath {
  constructor(
    private readonly selfId: string,
    private readonly local: JobDataPath,
    private readonly remote: JobDataPath,
  ) {}

  fetchInput(ref: StagedRef, deadline?: number): Promise<Buffer | undefined> {
    return (ref.node === this.selfId ? this.local : this.remote).fetchInput(ref, deadline);
  }

  postResult(job: JobMessage, outcome: JobOutcome): Promise<boolean> {
    return (job.input.node === this.selfId ? this.local : this.remote).postResult(job, outcome);
  }
}
