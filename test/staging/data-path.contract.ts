import { describe, expect, it } from "vitest";
import type { JobDataPath } from "../../src/staging/data-path.js";
import type { JobOutcome } from "../../src/staging/job-outcome.js";
import { message } from "../queue/job-queue.contract.js";

/** What the API side of a data path offers a test: stage bytes, and wait for a job's result. */
export interface DataPathHarness {
  path: JobDataPath;
  stage(key: string, bytes: Buffer): void;
  awaitResult(jobId: string): Promise<JobOutcome | undefined>;
}

const outcome: JobOutcome = {
  ok: false,
  problem: { code: "corrupt-image", detail: "test" },
  timings: { queueMs: 1, fetchMs: 0, processMs: 2, cpuMs: 2 },
};

/** The JobDataPath contract, run against every adapter (local now; HTTP between nodes later). */
export function describeJobDataPath(name: string, make: () => Promise<DataPathHarness>) {
  describe(`JobDataPath contract: ${name}`, () => {
    it("fetches the staged bytes of a job", async () => {
      const h = await make();
      const job = message();
      const bytes = Buffer.from("staged image bytes");
      h.stage(job.input.key, bytes);
      expect(await h.path.fetchInput(job.input)).toEqual(bytes);
    });

    it("answers undefined for bytes no longer held", async () => {
      const h = await make();
      expect(await h.path.fetchInput(message().input)).toBeUndefined();
    });

    it("delivers a result to the request waiting for it, once", async () => {
      const h = await make();
      const job = message();
      const waiting = h.awaitResult(job.id);
      expect(await h.path.postResult(job, outcome)).toBe(true);
      expect(await waiting).toEqual(outcome);
      expect(await h.path.postResult(job, outcome)).toBe(false);
    });

    it("reports a result nobody waits for", async () => {
      const h = await make();
      expect(await h.path.postResult(message(), outcome)).toBe(false);
    });
  });
}
