/**
 * A worker process: resizes one image at a time for its supervisor, in the
 * order jobs arrive. The supervisor may send the next job while one runs, so
 * its bytes are here when the current one ends. No state survives a job.
 */
import { Socket } from "node:net";
import sharp from "sharp";
import { classifySharpError, resizeImage } from "../image/pipeline.js";
import { checkWire } from "../wire/wire.js";
import { readFrames, writeFrame } from "./framing.js";
import { DATA_FD, DEADLINE_MARGIN_MS, type FromWorker, type ToWorker, ToWorkerWire } from "./protocol.js";

// Every input is different: libvips' operation cache would only hold memory.
sharp.cache(false);
// Parallelism comes from one process per core; more libvips threads per job
// would only contend for the same cores and hold more memory.
sharp.concurrency(1);

const data = new Socket({ fd: DATA_FD, readable: true, writable: true });

function send(message: FromWorker, body?: Uint8Array): void {
  writeFrame(data, message, body);
}

/**
 * Jobs the supervisor withdrew before their turn (their client has gone, or
 * the job ahead is long). A cancel that crossed its job's start stays here
 * unused; the bound keeps such leftovers from adding up (forgetting one only
 * lets a job run that nobody needs).
 */
const cancelled = new Set<string>();
const MAX_CANCELLED = 1024;

async function runJob(job: Extract<ToWorker, { kind: "job" }>, input: Buffer): Promise<void> {
  if (cancelled.delete(job.jobId) || Date.now() >= job.deadline - DEADLINE_MARGIN_MS)
    return send({ kind: "expired", jobId: job.jobId });
  send({ kind: "started", jobId: job.jobId });
  const started = performance.now();
  const cpu = process.cpuUsage();
  const measured = () => {
    const used = process.cpuUsage(cpu);
    return {
      jobId: job.jobId,
      processMs: performance.now() - started,
      cpuMs: (used.user + used.system) / 1000,
      rssBytes: process.memoryUsage.rss(),
    };
  };
  try {
    const { data: output, info } = await resizeImage(input, job.spec);
    send({ kind: "done", ok: true, info, ...measured() }, output);
  } catch (error) {
    send({ kind: "done", ok: false, problem: classifySharpError(error), ...measured() });
  }
}

/** Jobs run strictly one after another; `exit` waits for those already sent. */
let queue: Promise<void> = Promise.resolve();
readFrames(data, ({ header: text, body }) => {
  const read = checkWire(ToWorkerWire, text, { source: "worker", from: "the supervisor" });
  if (!read.ok) {
    // The supervisor is the same build: a frame that does not fit is a bug, and this worker cannot go on.
    console.error(`imgfleet worker ${process.pid}: refused a frame (${read.rejection.detail}); exiting`);
    process.exit(70);
  }
  const header = read.value;
  // At once, not in turn: it is about a job waiting in the queue below.
  if (header.kind === "cancel") {
    if (cancelled.size >= MAX_CANCELLED) cancelled.clear();
    return void cancelled.add(header.jobId);
  }
  queue = queue.then(() => (header.kind === "exit" ? process.exit(0) : runJob(header, body)));
});
// The supervisor is gone: nobody will read our results.
process.on("disconnect", () => process.exit(0));
data.on("end", () => process.exit(0));
send({ kind: "ready", pid: process.pid });
