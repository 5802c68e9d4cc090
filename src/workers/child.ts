/**
 * A worker process: resizes one image at a time for its supervisor. It holds
 * no state between jobs, so killing it loses nothing but the job in hand.
 */
import sharp from "sharp";
import { classifySharpError, resizeImage } from "../image/pipeline.js";
import { asBuffer, type FromWorker, type ToWorker } from "./protocol.js";

// Every input is different: libvips' operation cache would only hold memory.
sharp.cache(false);

function send(message: FromWorker): void {
  process.send?.(message);
}

async function runJob(job: Extract<ToWorker, { kind: "job" }>): Promise<void> {
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
    const { data, info } = await resizeImage(asBuffer(job.input), job.spec);
    send({ kind: "done", ok: true, output: data, info, ...measured() });
  } catch (error) {
    send({ kind: "done", ok: false, problem: classifySharpError(error), ...measured() });
  }
}

process.on("message", (message: ToWorker) => {
  if (message.kind === "exit") process.exit(0);
  else void runJob(message);
});
// The supervisor is gone: nobody will read our results.
process.on("disconnect", () => process.exit(0));
send({ kind: "ready", pid: process.pid });
