import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Socket } from "node:net";
import { createInterface } from "node:readline";
import type { ResizeSpec } from "../image/spec.js";
import { checkWire, LOG_ONLY_WIRE, type WireRejections } from "../wire/wire.js";
import { type Frame, readFrames, writeFrame } from "./framing.js";
import { processCpuMs } from "./process-cpu.js";
import {
  DATA_FD,
  DEADLINE_MARGIN_MS,
  type DoneMessage,
  type FromWorker,
  FromWorkerWire,
  type ToWorker,
} from "./protocol.js";
import { forkWorker } from "./spawn.js";

/** What a job cost up to a kill, measured from outside the worker. */
export interface Spent {
  processMs: number;
  cpuMs: number;
}

export type RunResult =
  | { kind: "done"; reply: DoneMessage; output: Buffer }
  /**
   * The worker died. `started` is false for a job still waiting behind the
   * one running: it cannot have caused the death, and its cost is zero.
   */
  | { kind: "crashed"; exit: string; started: boolean; spent: Spent }
  /** Dropped unprocessed: its deadline passed, or it was cancelled, before its turn. */
  | { kind: "expired" }
  /** Killed at the per-image time limit, or at the request's deadline (nobody would wait for it longer). */
  | { kind: "timeout"; limit: "processing" | "deadline"; spent: Spent };

/** How often the CPU of a running job is sampled, so a worker that dies suddenly still has its cost known. */
const CPU_SAMPLE_MS = 250;

/** A time budget for one start: loading sharp takes ~100-300 ms; ten seconds means something is wrong. */
const START_TIMEOUT_MS = 10_000;

/** One worker child process, running one job at a time. */
export class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #data: Socket;
  readonly #listeners = new Set<(frame: Frame<FromWorker>) => void>();
  readonly #exitListeners = new Set<(exit: string) => void>();
  #exited: Promise<string>;
  #alive = true;
  #replacementClaimed = false;
  /** Jobs this worker has started. */
  jobs = 0;

  private constructor(
    child: ChildProcess,
    onStderr: (line: string) => void,
    private readonly wire: WireRejections,
  ) {
    this.#child = child;
    this.#data = child.stdio[DATA_FD] as Socket;
    // A dead worker's socket may error on write; its exit settles the jobs it held.
    this.#data.on("error", () => this.kill());
    readFrames(this.#data, ({ header, body }) => {
      const read = checkWire(FromWorkerWire, header, {
        source: "worker",
        from: `worker process ${child.pid}`,
      });
      if (!read.ok) {
        // It decodes hostile images: a worker that says something out of protocol is not trusted again.
        this.wire.reject(read.rejection);
        return this.kill();
      }
      for (const listener of this.#listeners) listener({ header: read.value, body });
    });
    this.#exited = once(child, "exit").then(([code, signal]) => {
      this.#alive = false;
      const exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
      for (const listener of this.#exitListeners) listener(exit);
      return exit;
    });
    if (child.stderr)
      createInterface({ input: child.stderr }).on("line", (line) => onStderr(line.slice(0, 500)));
  }

  static async start(
    jemalloc: string | undefined,
    onStderr: (line: string) => void,
    wire: WireRejections = LOG_ONLY_WIRE,
  ): Promise<WorkerProcess> {
    const worker = new WorkerProcess(forkWorker(jemalloc), onStderr, wire);
    let onReady: ((frame: Frame<FromWorker>) => void) | undefined;
    const ready = new Promise<void>((resolve) => {
      onReady = ({ header }) => header.kind === "ready" && resolve();
      worker.#listeners.add(onReady);
    });
    const outcome = await Promise.race([
      ready.then(() => "ready"),
      worker.#exited,
      new Promise<string>((r) => setTimeout(r, START_TIMEOUT_MS, "timeout").unref()),
    ]);
    if (onReady) worker.#listeners.delete(onReady);
    if (outcome !== "ready") {
      worker.kill();
      throw new Error(`worker process did not start: ${outcome}`);
    }
    return worker;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /**
   * Sends one job and resolves with its outcome. The job may wait in the
   * worker behind the one it is running; the time limit counts from when the
   * worker starts it, and a worker over the limit is killed. The job's CPU is
   * sampled from /proc while it runs, so a timeout or a crash still says
   * what it cost.
   */
  async run(
    job: { id: string; spec: ResizeSpec; deadline: number },
    input: Buffer,
    onStarted: () => void,
  ): Promise<RunResult> {
    if (!this.#alive) return { kind: "crashed", exit: "had already exited", started: false, spent: NOTHING };
    const meter = new JobMeter(this.pid);
    let listener: ((frame: Frame<FromWorker>) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const settled = new Promise<RunResult>((resolve) => {
      listener = ({ header: m, body }) => {
        if (!("jobId" in m) || m.jobId !== job.id) return;
        if (m.kind === "started") {
          this.jobs++;
          meter.start();
          const { ms, limit } = timeLimit(job);
          timer = setTimeout(() => resolve({ kind: "timeout", limit, spent: meter.spent() }), ms);
          onStarted();
        } else if (m.kind === "expired") resolve({ kind: "expired" });
        else if (m.kind === "done") resolve({ kind: "done", reply: m, output: body });
      };
      this.#listeners.add(listener);
    });
    // Not `this.#exited.then(...)`: racing a promise that lives as long as the worker
    // would keep every job's result (and its image bytes) reachable until the worker exits.
    let onExit: ((exit: string) => void) | undefined;
    const crashed = new Promise<RunResult>((resolve) => {
      onExit = (exit) => resolve({ kind: "crashed", exit, started: meter.started, spent: meter.spent() });
      this.#exitListeners.add(onExit);
    });
    this.#send({ kind: "job", jobId: job.id, spec: job.spec, deadline: job.deadline }, input);
    try {
      const result = await Promise.race([settled, crashed]);
      if (result.kind === "timeout") this.kill();
      return result;
    } finally {
      meter.stop();
      clearTimeout(timer);
      if (listener) this.#listeners.delete(listener);
      if (onExit) this.#exitListeners.delete(onExit);
    }
  }

  /** The job, if it has not started yet, is dropped by the worker when its turn comes (it answers `expired`). */
  cancel(jobId: string): void {
    this.#send({ kind: "cancel", jobId });
  }

  #send(message: ToWorker, body?: Buffer): void {
    if (this.#data.writable) writeFrame(this.#data, message, body);
  }

  /** True the first time only: whoever claims it reports this worker's replacement. */
  claimReplacement(): boolean {
    if (this.#replacementClaimed) return false;
    this.#replacementClaimed = true;
    return true;
  }

  /** Asks the worker to exit after the jobs already sent, and waits for it. */
  async retire(): Promise<void> {
    if (this.#alive) this.#send({ kind: "exit" });
    this.#alive = false;
    const timer = setTimeout(() => this.kill(), START_TIMEOUT_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Kills at once; `alive` turns false now, not when the exit event arrives, so nobody hands it another job. */
  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
    this.#alive = false;
  }
}

const NOTHING: Spent = { processMs: 0, cpuMs: 0 };

/** How long a job just started may run: its per-image limit, or less when its request's deadline comes first. */
function timeLimit(job: { spec: ResizeSpec; deadline: number }): {
  ms: number;
  limit: "processing" | "deadline";
} {
  const processing = job.spec.limits.timeoutMs;
  const untilDeadline = Math.max(0, job.deadline - DEADLINE_MARGIN_MS - Date.now());
  return untilDeadline < processing
    ? { ms: untilDeadline, limit: "deadline" }
    : { ms: processing, limit: "processing" };
}

/** One job's wall time and CPU from its start, the CPU read from /proc (sampled, and once more at the end). */
class JobMeter {
  #startedAt = 0;
  #cpuAtStart: number | undefined;
  #lastCpu: number | undefined;
  #sampler: NodeJS.Timeout | undefined;
  started = false;

  constructor(private readonly pid: number) {}

  start(): void {
    this.started = true;
    this.#startedAt = performance.now();
    this.#cpuAtStart = processCpuMs(this.pid);
    this.#lastCpu = this.#cpuAtStart;
    this.#sampler = setInterval(() => this.#sample(), CPU_SAMPLE_MS);
    this.#sampler.unref();
  }

  /** Up to now; for a process already gone, up to the last sample (a lower bound, short by < 250 ms). */
  spent(): Spent {
    if (!this.started) return NOTHING;
    this.#sample();
    const cpuMs = this.#cpuAtStart === undefined ? 0 : (this.#lastCpu ?? this.#cpuAtStart) - this.#cpuAtStart;
    return { processMs: performance.now() - this.#startedAt, cpuMs: Math.max(0, cpuMs) };
  }

  stop(): void {
    clearInterval(this.#sampler);
  }

  #sample(): void {
    this.#lastCpu = processCpuMs(this.pid) ?? this.#lastCpu;
  }
}
