import { z } from "zod";
import type { WireProblem } from "../errors/problem.js";
import type { OutputInfo, ResizeSpec } from "../image/spec.js";
import { ResizeSpecWire } from "../queue/job-wire.js";
import { countWire, OutputInfoWire, WireProblemWire } from "../wire/shapes.js";

/**
 * Frame headers on the worker's data socket (see framing.ts). Image bytes
 * travel as the frame body: the input with `job`, the output with `done`.
 */
export type ToWorker =
  | { kind: "job"; jobId: string; spec: ResizeSpec /** epoch ms */; deadline: number }
  /** Drop this job if it has not started (its client has gone): answer `expired` when its turn comes. */
  | { kind: "cancel"; jobId: string }
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

/**
 * A job runs until this long before its deadline, so that its outcome (and
 * the CPU it cost, which is billed) reaches the waiting request before the
 * request gives up; a job with less time left is not started.
 */
export const DEADLINE_MARGIN_MS = 250;

/** The file descriptor of the data socket in the worker (0-2 are stdio, 4 is Node's IPC channel). */
export const DATA_FD = 3;

/*
 * Both ends are the same build, so the frames carry no version; they are
 * still checked where they are read, strictly. A worker decodes hostile
 * images: the supervisor takes nothing it says on trust, and a frame that
 * does not fit costs that worker its life (its job counts as a crash).
 */
const jobId = z.string().min(1);
const measured = { jobId, processMs: countWire, cpuMs: countWire, rssBytes: countWire };

export const FromWorkerWire = z.union([
  z.strictObject({ kind: z.literal("ready"), pid: z.number().int().positive() }),
  z.strictObject({ kind: z.literal("started"), jobId }),
  z.strictObject({ kind: z.literal("expired"), jobId }),
  z.strictObject({ kind: z.literal("done"), ok: z.literal(true), info: OutputInfoWire, ...measured }),
  z.strictObject({ kind: z.literal("done"), ok: z.literal(false), problem: WireProblemWire, ...measured }),
]);
const _fromFits: z.ZodType<FromWorker, z.input<typeof FromWorkerWire>> = FromWorkerWire;
void _fromFits;

export const ToWorkerWire = z.union([
  z.strictObject({ kind: z.literal("job"), jobId, spec: ResizeSpecWire, deadline: z.number().int() }),
  z.strictObject({ kind: z.literal("cancel"), jobId }),
  z.strictObject({ kind: z.literal("exit") }),
]);
const _toFits: z.ZodType<ToWorker, z.input<typeof ToWorkerWire>> = ToWorkerWire;
void _toFits;
