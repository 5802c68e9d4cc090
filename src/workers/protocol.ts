import type { WireProblem } from "../errors/problem.js";
import type { OutputInfo, ResizeSpec } from "../image/spec.js";

/** Messages over the IPC channel (V8 serialisation, so bytes travel as Uint8Array without base64). */
export type ToWorker =
  | { kind: "job"; jobId: string; spec: ResizeSpec; input: Uint8Array /** epoch ms */; deadline: number }
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
  | (Measured & { kind: "done"; ok: true; output: Uint8Array; info: OutputInfo })
  | (Measured & { kind: "done"; ok: false; problem: WireProblem });

export type DoneMessage = Extract<FromWorker, { kind: "done" }>;

/** A Buffer view over bytes that crossed the channel, without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
