import { jitteredBackoffMs } from "../util/backoff.js";
import type { UsageBatch } from "./model.js";
import { type UsageConsumer, type UsageLog, UsageLogFullError } from "./usage-log.js";

export interface MemoryUsageLogOptions {
  /** Batches held for the consumer; a batch is a few hundred KB at most (maxBatchRecords records). */
  capacity: number;
  /** A batch id published again within this window is accepted and dropped, like JetStream's duplicate window. */
  duplicateWindowMs?: number;
  now?: () => number;
}

const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

/**
 * Embedded UsageLog: a bounded in-process FIFO with one consumer. Nothing
 * here survives a restart, and nothing needs to: the spool ships again
 * every batch the database has not committed.
 */
export class MemoryUsageLog implements UsageLog {
  readonly #queue: UsageBatch[] = [];
  /** Ids published within the duplicate window, oldest first (Map keeps insertion order). */
  readonly #recent = new Map<string, number>();
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(private readonly options: MemoryUsageLogOptions) {}

  async publish(batch: UsageBatch, dedupeId = batch.id): Promise<void> {
    if (this.#closed) throw new Error("the usage log is closed");
    const now = this.#now();
    this.#forgetOlderThan(now - (this.options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS));
    if (this.#recent.has(dedupeId)) return;
    if (this.#queue.length >= this.options.capacity) {
      throw new UsageLogFullError(`the usage log holds ${this.options.capacity} batches, its bound`);
    }
    this.#recent.set(dedupeId, now);
    this.#queue.push(batch);
    this.#wake?.();
  }

  get depth(): number {
    return this.#queue.length;
  }

  consume(handle: (batch: UsageBatch) => Promise<void>): UsageConsumer {
    let stopped = false;
    let interrupt: (() => void) | null = null;
    const pause = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        interrupt = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    const loop = async () => {
      let failures = 0;
      while (!stopped && !this.#closed) {
        const batch = this.#queue[0];
        if (!batch) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
            interrupt = resolve;
          });
          this.#wake = null;
          continue;
        }
        try {
          await handle(batch);
          this.#queue.shift();
          failures = 0;
        } catch {
          // Kept at the head: the aggregator is failing (database down), and order helps nobody less than a hot loop.
          failures++;
          await pause(jitteredBackoffMs(failures, 100, 10_000));
        }
      }
    };
    const running = loop();
    return {
      async stop() {
        stopped = true;
        interrupt?.();
        await running;
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
  }

  #now(): number {
    return this.options.now?.() ?? Date.now();
  }

  #forgetOlderThan(cutoff: number): void {
    for (const [id, at] of this.#recent) {
      if (at >= cutoff) break;
      this.#recent.delete(id);
    }
  }
}
