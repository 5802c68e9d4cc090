import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { UsageMetrics } from "../metrics/usage-metrics.js";
import { jitteredBackoffMs } from "../util/backoff.js";
import type { UsageBatch } from "./model.js";
import { rollupStore } from "./rollup-store.js";
import type { UsageSpool } from "./spool/usage-spool.js";
import { type UsageLog, UsageLogFullError } from "./usage-log.js";

export interface ShipperDeps {
  spool: UsageSpool;
  log: UsageLog;
  db: Database;
  metrics: UsageMetrics;
  logger: Logger;
  confirmIntervalMs: number;
  reshipAfterMs: number;
  /** Batches shipped and awaiting their commit at most; the rest wait in the spool. */
  maxInFlight?: number;
}

const DEFAULT_MAX_IN_FLIGHT = 64;
/** Ids per commit check: one query stays small however far behind the database is. */
const CONFIRM_CHUNK = 1000;
const MAX_BACKOFF_MS = 30_000;

/**
 * Moves sealed batches from the spool to the usage log, and deletes spool
 * data only once the database says the batches are committed: end to end,
 * never on the transport's word. A batch not committed within
 * `reshipAfterMs` is shipped again; the aggregator's claim makes that safe.
 */
export class UsageShipper {
  /** Batch id → when it was last shipped. */
  readonly #shipped = new Map<string, number>();
  #confirmAll = true;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #failures = 0;
  #stopped = false;
  #reships = 0;

  constructor(private readonly deps: ShipperDeps) {}

  /** The first round checks every batch left in the spool, so a restart re-ships only what was never committed. */
  start(): void {
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** A batch just sealed: shipped at once when there is room, else by the next round. */
  offer(batch: UsageBatch): void {
    if (this.#shipped.size >= this.#maxInFlight() || this.#stopped) return;
    this.#publish(batch, false).catch(() => {
      // Left in the spool; the next round ships it.
    });
  }

  /** One round now (tests and shutdown): commit check, then shipping. */
  async round(): Promise<void> {
    while (this.#running) await this.#running;
    this.#running = this.#round().finally(() => {
      this.#running = undefined;
    });
    await this.#running;
  }

  get awaitingCommit(): number {
    return this.#shipped.size;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.round()
        .then(() => {
          this.#failures = 0;
        })
        .catch((error: unknown) => this.#failed(error))
        .finally(() => this.#schedule(this.#nextDelay()));
    }, delayMs);
    this.#timer.unref();
  }

  #nextDelay(): number {
    const { confirmIntervalMs } = this.deps;
    return this.#failures === 0
      ? confirmIntervalMs
      : jitteredBackoffMs(this.#failures, confirmIntervalMs, MAX_BACKOFF_MS);
  }

  async #round(): Promise<void> {
    await this.#confirm();
    await this.#shipDue();
  }

  async #confirm(): Promise<void> {
    const { spool, db, metrics } = this.deps;
    const ids = this.#confirmAll ? spool.pending().map((b) => b.id) : [...this.#shipped.keys()];
    for (let i = 0; i < ids.length; i += CONFIRM_CHUNK) {
      const committed = await rollupStore.committed(db, ids.slice(i, i + CONFIRM_CHUNK));
      if (committed.size === 0) continue;
      for (const id of committed) this.#shipped.delete(id);
      const { deletedSegments } = await spool.markCommitted(committed);
      metrics.segmentsDeleted.inc(deletedSegments);
    }
    this.#confirmAll = false;
  }

  async #shipDue(): Promise<void> {
    const now = Date.now();
    for (const ref of this.deps.spool.pending()) {
      if (this.#stopped) return;
      const shippedAt = this.#shipped.get(ref.id);
      if (shippedAt !== undefined && now - shippedAt < this.deps.reshipAfterMs) continue;
      if (shippedAt === undefined && this.#shipped.size >= this.#maxInFlight()) return;
      await this.#publish(await this.deps.spool.readBatch(ref), shippedAt !== undefined);
    }
  }

  async #publish(batch: UsageBatch, again: boolean): Promise<void> {
    // A re-ship gets a fresh dedupe id: the transport may have acknowledged and lost the first copy.
    const dedupeId = again ? `${batch.id}~${++this.#reships}` : batch.id;
    try {
      await this.deps.log.publish(batch, dedupeId);
    } catch (error) {
      if (!(error instanceof UsageLogFullError)) throw error;
      this.deps.metrics.shipErrors.inc();
      return;
    }
    this.#shipped.set(batch.id, Date.now());
    this.deps.metrics.batchesShipped.inc();
    if (again) this.deps.metrics.batchesReshipped.inc();
  }

  #maxInFlight(): number {
    return this.deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  }

  #failed(error: unknown): void {
    this.#failures++;
    this.deps.metrics.shipErrors.inc();
    if (this.#failures % 10 !== 1) return;
    this.deps.logger.warn(
      { err: error, failures: this.#failures, spoolBytes: this.deps.spool.bytes },
      "could not ship usage or check its commit (retrying with backoff); records wait in the spool and nothing is lost, but the spool grows: check the database",
    );
  }
}
