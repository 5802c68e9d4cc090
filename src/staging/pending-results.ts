import type { JobOutcome } from "./job-outcome.js";

type Settle = (outcome: JobOutcome | undefined) => void;

/** Requests waiting for their job's outcome, by job id. */
export class PendingResults {
  readonly #waiting = new Map<string, Settle>();

  /** Resolves with the outcome, or undefined when the signal aborts first (deadline, client gone). */
  wait(jobId: string, signal: AbortSignal): Promise<JobOutcome | undefined> {
    return new Promise((resolve) => {
      const onAbort = () => {
        this.#waiting.delete(jobId);
        resolve(undefined);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.set(jobId, (outcome) => {
        signal.removeEventListener("abort", onAbort);
        this.#waiting.delete(jobId);
        resolve(outcome);
      });
    });
  }

  settle(jobId: string, outcome: JobOutcome): boolean {
    const settle = this.#waiting.get(jobId);
    if (!settle) return false;
    settle(outcome);
    return true;
  }

  /** Someone still waits for this job's outcome (its client has not gone, its deadline not passed). */
  has(jobId: string): boolean {
    return this.#waiting.has(jobId);
  }

  get size(): number {
    return this.#waiting.size;
  }
}
