import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { WireProblem } from "../errors/problem.js";
import type { Metrics } from "../metrics/metrics.js";
import type { DeadLetterReason } from "../queue/dead-letters.js";
import type { Delivery, JobMessage, JobQueue } from "../queue/job-queue.js";
import type { JobDataPath } from "../staging/data-path.js";
import type { JobOutcome, WorkerTimings } from "../staging/job-outcome.js";
import { delay, nowMs } from "../util/time.js";
import type { WireRejections } from "../wire/wire.js";
import { type RunResult, type Spent, WorkerProcess } from "./worker-process.js";

export interface WorkerPoolOptions {
  count: number;
  maxRssBytes: number;
  jemalloc: string | undefined;
  queue: JobQueue;
  dataPath: JobDataPath;
  metrics: Metrics;
  logger: Logger;
  /** Where a worker's frame that fails its schema is reported (the worker is then killed). */
  wire?: WireRejections;
  /** Records a job given up for good (every delivery crashed, or its bytes could not cross nodes). */
  deadLetter?: (entry: {
    job: JobMessage;
    reason: DeadLetterReason;
    detail: string;
    attempts: number;
  }) => Promise<void>;
}

export interface WorkerPoolEvents {
  "job-start": [{ pid: number; jobId: string; tenant: string | null }];
  restart: [{ pid: number; reason: RestartReason }];
}

export type RestartReason = "crash" | "timeout" | "memory";

type WaitedTimings = Pick<WorkerTimings, "queueMs" | "fetchMs">;

/** Pause before respawning after a failed start, so a broken install does not spin a core. */
const RESPAWN_BACKOFF_MS = 1000;

/**
 * Jobs handed to one worker at a time: the one it runs and the next, whose
 * bytes are already there when the first ends, so the core never idles
 * waiting for a hand-off. The worker still runs one image at a time.
 */
const LANES_PER_WORKER = 2;

/** How often a job in hand signals progress; well under the fleet queue's 6 s ack wait. */
const WORKING_SIGNAL_MS = 2000;

/** How often a job waiting in a worker behind another is checked for a client that has gone. */
const STILL_WANTED_CHECK_MS = 100;

/**
 * A job running longer than this is a long one (a small resize takes tens of
 * ms): nothing more is queued behind it in its worker, and a job already
 * waiting there is withdrawn and put back in the queue, to be taken by the
 * first worker that is free (where the queue puts it back at its head: in a
 * fleet's stream it would go to the tail, so there it stays). Otherwise the second lane, there to hide a
 * hand-off of a few ms, would keep a cheap job behind seconds of another
 * tenant's work.
 */
const HOLD_BEHIND_MS = 500;

/**
 * Supervises worker processes. Each lane pulls a job only when it is free
 * (pull is the backpressure), drops expired jobs unprocessed, and replaces a
 * worker that crashed, hung or grew past its memory bound.
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  readonly #options: WorkerPoolOptions;
  readonly #slots: (WorkerProcess | undefined)[];
  readonly #starting = new Map<number, Promise<WorkerProcess | undefined>>();
  /** Jobs running (started, not finished) per slot. */
  readonly #running = new Map<number, number>();
  /** When the job running on each slot started (performance.now()), for HOLD_BEHIND_MS. */
  readonly #runningSince = new Map<number, number>();
  readonly #stop = new AbortController();
  #loops: Promise<void>[] = [];

  constructor(options: WorkerPoolOptions) {
    super();
    this.#options = options;
    this.#slots = new Array(options.count).fill(undefined);
  }

  /** Starts every worker and waits until all are ready. */
  async start(): Promise<void> {
    await Promise.all(this.#slots.map((_, i) => this.#ensureWorker(i)));
    this.#loops = this.#slots.flatMap((_, i) =>
      Array.from({ length: LANES_PER_WORKER }, () => this.#loop(i)),
    );
    this.#updateGauges();
  }

  /** Stops pulling, lets jobs in hand finish, then ends every worker. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#loops);
    await Promise.all(this.#slots.map((w) => w?.retire()));
  }

  workers(): { pid: number; busy: boolean; jobs: number }[] {
    return this.#slots.flatMap((w, i) => (w ? [{ pid: w.pid, busy: this.#isBusy(i), jobs: w.jobs }] : []));
  }

  /** Workers running an image now. */
  /** The jemalloc library the workers preload, if any (the start-up log says which). */
  get jemalloc(): string | undefined {
    return this.#options.jemalloc;
  }

  get busyCount(): number {
    return this.#slots.filter((_, i) => this.#isBusy(i)).length;
  }

  #isBusy(slot: number): boolean {
    return (this.#running.get(slot) ?? 0) > 0;
  }

  async #loop(slot: number): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (!(await this.#ensureWorker(slot))) continue;
      await this.#whileLongJob(slot, signal);
      const delivery = await this.#options.queue.pull(signal);
      if (!delivery) break;
      // The worker may have died while this lane waited for a job.
      const worker = await this.#ensureWorker(slot);
      if (!worker) {
        await delivery.retry();
        continue;
      }
      try {
        await this.#handle(slot, worker, delivery);
      } catch (error) {
        // In a fleet: the API node that staged the job could not be reached before its deadline.
        this.#options.logger.error(
          { err: error, jobId: delivery.message.id, stagedOn: delivery.message.input.node },
          "could not complete a job (its input or result could not cross to the API node that staged it); dropped — its client gets a 504 and retries. If this repeats, check the network between workers and API nodes and fleet.advertiseUrl",
        );
        await delivery.term().catch(() => {});
        await this.#deadLetter(delivery, "data-path", error);
      }
    }
  }

  /** True while the slot's worker runs a job that has taken longer than HOLD_BEHIND_MS so far. */
  #runsLongJob(slot: number): boolean {
    const since = this.#runningSince.get(slot);
    return since !== undefined && performance.now() - since > HOLD_BEHIND_MS;
  }

  async #whileLongJob(slot: number, signal: AbortSignal): Promise<void> {
    while (this.#runsLongJob(slot) && !signal.aborted) await delay(50, signal).catch(() => {});
  }

  /** The slot's live worker, starting one (once, whichever lane asks first) when there is none. */
  #ensureWorker(slot: number): Promise<WorkerProcess | undefined> {
    const current = this.#slots[slot];
    if (current?.alive) return Promise.resolve(current);
    const pending = this.#starting.get(slot);
    if (pending) return pending;
    const starting = this.#spawn(slot).finally(() => this.#starting.delete(slot));
    this.#starting.set(slot, starting);
    return starting;
  }

  async #spawn(slot: number): Promise<WorkerProcess | undefined> {
    try {
      const worker = await WorkerProcess.start(
        this.#options.jemalloc,
        (line) => this.#options.logger.debug({ worker: slot }, `worker stderr: ${line}`),
        this.#options.wire,
      );
      this.#slots[slot] = worker;
      this.#updateGauges();
      return worker;
    } catch (error) {
      this.#options.logger.error(
        { err: error, worker: slot },
        "a worker process failed to start; retrying in 1 s. Check that sharp loads: node -e \"require('sharp')\"",
      );
      this.#slots[slot] = undefined;
      await delay(RESPAWN_BACKOFF_MS).catch(() => {});
      return undefined;
    }
  }

  async #handle(slot: number, worker: WorkerProcess, delivery: Delivery): Promise<void> {
    if (!this.#stillWanted(delivery.message)) return this.#dropExpired(delivery);
    // From here until it is settled the job tells the queue it is alive, so it is not redelivered meanwhile.
    const keepAlive = setInterval(() => void delivery.working().catch(() => {}), WORKING_SIGNAL_MS);
    try {
      await this.#fetchAndRun(slot, worker, delivery);
    } finally {
      clearInterval(keepAlive);
    }
  }

  async #fetchAndRun(slot: number, worker: WorkerProcess, delivery: Delivery): Promise<void> {
    const { message } = delivery;
    const { metrics, dataPath } = this.#options;
    const fetchStarted = nowMs();
    const input = await dataPath.fetchInput(message.input, message.deadline);
    const fetchMs = nowMs() - fetchStarted;
    // No bytes: the API node's request already ended (deadline or client gone).
    if (!input) return this.#dropExpired(delivery);
    let queueMs = 0;
    let started = false;
    const onStarted = () => {
      started = true;
      this.#runningSince.set(slot, performance.now());
      queueMs = Math.max(0, Date.now() - message.enqueuedAt);
      metrics.queueWait.observe(queueMs / 1000);
      this.#running.set(slot, (this.#running.get(slot) ?? 0) + 1);
      this.#updateGauges();
      this.emit("job-start", { pid: worker.pid, jobId: message.id, tenant: message.tenant });
    };
    // While it waits in the worker behind another job, its client may leave (then it never starts),
    // or the job ahead may turn out long (then it goes back to the queue for a free worker).
    let withdrawn = false;
    const watch = setInterval(() => {
      if (started || withdrawn) return;
      if (!this.#stillWanted(message)) worker.cancel(message.id);
      // Given back only where it keeps its place; at a stream's tail it would wait longer than here.
      else if (this.#runsLongJob(slot) && this.#options.queue.requeuesAtHead) {
        withdrawn = true;
        worker.cancel(message.id);
      }
    }, STILL_WANTED_CHECK_MS);
    try {
      const result = await worker.run(message, input, onStarted);
      clearInterval(watch);
      if (result.kind === "expired" && withdrawn && this.#stillWanted(message)) await delivery.requeue();
      else await this.#settle(slot, worker, delivery, result, { queueMs, fetchMs });
    } finally {
      clearInterval(watch);
      if (started) {
        this.#running.set(slot, (this.#running.get(slot) ?? 1) - 1);
        this.#runningSince.delete(slot);
      }
      this.#updateGauges();
    }
  }

  /** Someone still waits for the job: its deadline has not passed and (where the data path knows) its client is there. */
  #stillWanted(message: JobMessage): boolean {
    return Date.now() < message.deadline && this.#options.dataPath.isWaiting?.(message) !== false;
  }

  async #settle(
    slot: number,
    worker: WorkerProcess,
    delivery: Delivery,
    result: RunResult,
    waited: Pick<WorkerTimings, "queueMs" | "fetchMs">,
  ): Promise<void> {
    const { message } = delivery;
    if (result.kind === "done") return this.#settleDone(slot, worker, delivery, result, waited);
    if (result.kind === "expired") return this.#dropExpired(delivery);
    // A kill or timeout is billed too: what the worker spent until then, measured from outside it.
    const timings = { ...waited, ...result.spent };
    delivery.spent(result.spent.cpuMs);
    if (result.kind === "timeout") {
      const problem = timeoutProblem(message, result.limit);
      this.#restarted(worker, "timeout", `job ${message.id}: ${problem.detail}`);
      await this.#post(message, { ok: false, problem, timings });
      await delivery.term();
      return;
    }
    this.#restarted(worker, "crash", `${result.exit} during job ${message.id}`);
    if (!this.#stillWanted(message)) return this.#dropExpired(delivery);
    // It waited behind the job that was running: not its fault, so no attempt is charged.
    if (!result.started) return this.#requeue(delivery);
    await this.#retryOrGiveUp(delivery, result.exit, timings);
  }

  async #settleDone(
    slot: number,
    worker: WorkerProcess,
    delivery: Delivery,
    result: Extract<RunResult, { kind: "done" }>,
    waited: Pick<WorkerTimings, "queueMs" | "fetchMs">,
  ): Promise<void> {
    const { message } = delivery;
    const { reply } = result;
    const timings = { ...waited, processMs: reply.processMs, cpuMs: reply.cpuMs };
    this.#options.metrics.processing.observe({ format: message.spec.outputFormat }, reply.processMs / 1000);
    this.#options.metrics.workerRss.set({ worker: String(slot) }, reply.rssBytes);
    const outcome: JobOutcome = reply.ok
      ? { ok: true, data: result.output, info: reply.info, timings }
      : { ok: false, problem: reply.problem, timings };
    delivery.spent(reply.cpuMs);
    await this.#post(message, outcome);
    await delivery.ack();
    if (reply.rssBytes > this.#options.maxRssBytes) await this.#recycle(slot, worker, reply.rssBytes);
  }

  async #requeue(delivery: Delivery): Promise<void> {
    if (await delivery.requeue()) this.#options.metrics.jobsRedelivered.inc();
  }

  /** The job was running when its worker died: another attempt, or the dead letters once they are used up. */
  async #retryOrGiveUp(delivery: Delivery, exit: string, timings: Spent & WaitedTimings): Promise<void> {
    if (await delivery.retry()) {
      this.#options.metrics.jobsRedelivered.inc();
      return;
    }
    const problem = crashProblem(delivery.attempt, exit);
    await this.#deadLetter(delivery, "worker-crashed", problem.detail);
    await this.#post(delivery.message, { ok: false, problem, timings });
  }

  async #deadLetter(delivery: Delivery, reason: DeadLetterReason, cause: unknown): Promise<void> {
    const detail =
      cause instanceof Error
        ? `${cause.message}${cause.cause instanceof Error ? `: ${cause.cause.message}` : ""}`
        : String(cause);
    await this.#options
      .deadLetter?.({ job: delivery.message, reason, detail, attempts: delivery.attempt })
      .catch((error: unknown) =>
        this.#options.logger.warn(
          { err: error, jobId: delivery.message.id },
          "could not record a dead letter (database unavailable?)",
        ),
      );
  }

  /** Nobody waits for this job any more: count it and never deliver it again. */
  async #dropExpired(delivery: Delivery): Promise<void> {
    this.#options.metrics.jobsExpired.inc();
    await delivery.term();
  }

  async #post(message: JobMessage, outcome: JobOutcome): Promise<void> {
    const delivered = await this.#options.dataPath.postResult(message, outcome);
    if (!delivered) this.#options.metrics.lateResults.inc();
  }

  async #recycle(slot: number, worker: WorkerProcess, rssBytes: number): Promise<void> {
    if (!worker.claimReplacement()) return;
    this.#options.logger.info(
      { worker: slot, pid: worker.pid, rssMb: Math.round(rssBytes / 2 ** 20), jobs: worker.jobs },
      "recycling a worker whose memory grew past workers.maxRssMb",
    );
    this.#options.metrics.workerRestarts.inc({ reason: "memory" });
    this.emit("restart", { pid: worker.pid, reason: "memory" });
    await worker.retire();
  }

  #restarted(worker: WorkerProcess, reason: RestartReason, what: string): void {
    // Both lanes of a dead worker report it; count and announce it once.
    if (!worker.claimReplacement()) return;
    worker.kill();
    this.#options.metrics.workerRestarts.inc({ reason });
    this.#options.logger.warn(
      { pid: worker.pid, reason },
      `worker replaced: ${what}. One worker was lost, not the service; if this repeats, look for a hostile or unusual input in the request log`,
    );
    this.emit("restart", { pid: worker.pid, reason });
  }

  #updateGauges(): void {
    const { workers } = this.#options.metrics;
    const busy = this.busyCount;
    workers.set({ state: "busy" }, busy);
    workers.set({ state: "idle" }, Math.max(0, this.#slots.filter((w) => w?.alive).length - busy));
  }
}

function timeoutProblem(message: JobMessage, limit: "processing" | "deadline"): WireProblem {
  if (limit === "deadline") {
    return {
      code: "timeout",
      detail:
        "the request's deadline came while the image was still being processed (it had waited for a busy worker); stopped, and billed for the work done. Retry later, or send a smaller image or fewer effects",
    };
  }
  return {
    code: "timeout",
    detail: `processing took longer than the ${message.spec.limits.timeoutMs} ms per-image limit; try a smaller image or fewer effects`,
  };
}

function crashProblem(attempts: number, exit: string): WireProblem {
  return {
    code: "worker-crashed",
    detail: `the image worker ${exit} while processing this image (${attempts} attempt${attempts > 1 ? "s" : ""}); the input may be malformed. The service is unaffected; do not retry the same image unchanged`,
  };
}
