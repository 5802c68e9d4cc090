import type { WireProblem } from "../errors/problem.js";
import type { OutputInfo, ResizeSpec } from "../image/spec.js";

/**
 * Frame headers on the worker's data socket (see framing.ts). Image bytes
 * travel as the frame body: the input with `job`, the output with `done`.
 */
export type ToWorker =
  | { kind: "job"; jobId: string; spec: ResizeSpec /** epoch ms */; deadline: number }
  /** Exit after the jobs already sent. */
  | { kind: "exit" };

interface Measured {
  jobId: string;
  processMs: number;
  cpuMs: number;
  /** Resident memory after the job, for recycling. */
  rssBytes: number;
}

export type FromWorker =
  | { kind: "ready"; pid: number }
  /** The worker began this job (the one before it has finished). */
  | { kind: "started"; jobId: string }
  /** The job's deadline passed while it waited behind another: dropped unprocessed. */
  | { kind: "expired"; jobId: string }
  | (Measured & { kind: "done"; ok: true; info: OutputInfo })
  | (Measured & { kind: "done"; ok: false; problem: WireProblem });

export type DoneMessage = Extract<FromWorker, { kind: "done" }>;

/** The file descriptor of the data socket in the worker (0-2 are stdio, 4 is Node's IPC channel). */
export const DATA_FD = 3;
