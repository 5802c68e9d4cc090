import type { JobMessage, StagedRef } from "../queue/job-queue.js";
import type { JobOutcome } from "./job-outcome.js";

/**
 * How a worker reaches a job's bytes and returns its result: point to point
 * with the API node that staged them, never through the queue. Embedded: a
 * lookup in this process. A fleet adapter speaks authenticated HTTP.
 */
export interface JobDataPath {
  /**
   * The staged input, or undefined when the API node no longer holds it (its
   * client gave up). `deadline` (epoch ms, the job's) bounds retries.
   */
  fetchInput(ref: StagedRef, deadline?: number): Promise<Buffer | undefined>;
  /** Hands the outcome to whoever waits; false when nobody does any more. */
  postResult(job: JobMessage, outcome: JobOutcome): Promise<boolean>;
  /**
   * False when nobody waits for this job any more (its client has gone), so
   * it is not started; only where that is cheap to know (embedded). Absent:
   * unknown until `fetchInput` or `postResult` say so.
   */
  isWaiting?(job: JobMessage): boolean;
}
