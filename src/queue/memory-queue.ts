import type { Delivery, JobMessage, JobQueue, QueueStats } from "./job-queue.js";
import { QueueFullError } from "./job-queue.js";

interface Entry {
  message: JobMessage;
  attempt: number;
}

type Waiter = (entry: Entry | null) => void;

/**
 * Embedded JobQueue: a bounded in-memory FIFO. Memory cost per entry is the
 * control message only (~1 KB); the bytes live in the staging table.
 */
export class MemoryJobQueue implements JobQueue {
  readonly #capacity: number;
  readonly #maxAttempts: number;
  #entries: Entry[] = [];
  #head = 0;
  readonly #waiters = new Set<Waiter>();
  #waitOrder: Waiter[] = [];
  #inFlight = 0;
  #closed = false;

  constructor(options: { capacity: number; maxAttempts: number }) {
    this.#capacity = options.capacity;
    this.#maxAttempts = options.maxAttempts;
  }

  async enqueue(message: JobMessage): Promise<void> {
    if (this.#closed) throw new Error("the job queue is closed");
    if (this.#depth() >= this.#capacity) throw new QueueFullError(this.#capacity);
    this.#offer({ message, attempt: 1 }, false);
  }

  pull(signal: AbortSignal): Promise<Delivery | null> {
    if (this.#closed || signal.aborted) return Promise.resolve(null);
    const entry = this.#take();
    if (entry) return Promise.resolve(this.#deliver(entry));
    return new Promise((resolve) => {
      const waiter: Waiter = (e) => {
        signal.removeEventListener("abort", onAbort);
        resolve(e ? this.#deliver(e) : null);
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        resolve(null);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
      this.#waitOrder.push(waiter);
    });
  }

  stats(): QueueStats {
    const oldest = this.#entries[this.#head];
    return {
      depth: this.#depth(),
      capacity: this.#capacity,
      inFlight: this.#inFlight,
      oldestAgeMs: oldest ? Math.max(0, Date.now() - oldest.message.enqueuedAt) : 0,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waitOrder) if (this.#waiters.has(waiter)) waiter(null);
    this.#waiters.clear();
    this.#waitOrder = [];
  }

  #depth(): number {
    return this.#entries.length - this.#head;
  }

  /** Hands the entry to the longest-waiting consumer, or queues it (redeliveries go first). */
  #offer(entry: Entry, atHead: boolean): void {
    while (this.#waitOrder.length > 0) {
      const waiter = this.#waitOrder.shift() as Waiter;
      if (!this.#waiters.delete(waiter)) continue;
      waiter(entry);
      return;
    }
    if (atHead) this.#entries.splice(this.#head, 0, entry);
    else this.#entries.push(entry);
  }

  #take(): Entry | undefined {
    const entry = this.#entries[this.#head];
    if (!entry) return undefined;
    this.#head++;
    // Compact now and then so the array does not grow with every message ever queued.
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  #deliver(entry: Entry): Delivery {
    this.#inFlight++;
    let settled = false;
    const settle = () => {
      if (settled) throw new Error(`job ${entry.message.id}: delivery settled twice`);
      settled = true;
      this.#inFlight--;
    };
    return {
      message: entry.message,
      attempt: entry.attempt,
      ack: async () => settle(),
      term: async () => settle(),
      // No redelivery timer here: a delivery stays in hand until it is settled.
      working: async () => {},
      retry: async () => {
        settle();
        if (entry.attempt >= this.#maxAttempts || this.#closed) return false;
        this.#offer({ message: entry.message, attempt: entry.attempt + 1 }, true);
        return true;
      },
    };
  }
}
