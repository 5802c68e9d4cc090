import type { WireProblem } from "../errors/problem.js";
import type { OutputInfo } from "../image/spec.js";

/** Time spent on one job on the worker side, in milliseconds. */
export interface WorkerTimings {
  /** Delivery minus enqueue: time waiting for a free worker. */
  queueMs: number;
  /** Fetching the staged input (a local lookup in embedded mode). */
  fetchMs: number;
  /** Wall time inside the worker process. */
  processMs: number;
  /** CPU time of the worker process during the job, all libvips threads included. */
  cpuMs: number;
}

export type JobOutcome =
  | { ok: true; data: Buffer; info: OutputInfo; timings: WorkerTimings }
  | { ok: false; problem: WireProblem; timings: WorkerTimings };
