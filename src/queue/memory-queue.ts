import { FairShare } from "./fair-share.js";
import type { Delivery, JobMessage, JobQueue, QueueStats } from "./job-queue.js";
import { QueueFullError } from "./job-queue.js";

interface Entry {
  message: JobMessage;
  attempt: number;
}

type Waiter = (entry: Entry | null) => void;

/** The fair-share key of a job: its tenant, or one shared key in an open node. */
function tenantOf(message: JobMessage): string {
  return message.tenant ?? "";
}

/**
 * Embedded JobQueue: bounded and in memory, one FIFO per tenant, and between
 * tenants the one whose jobs have cost the least CPU goes next (FairShare),
 * so a tenant looping expensive inputs cannot starve the others. Memory cost
 * per entry is the control message only (~1 KB); the bytes live in the
 * staging table.
 */
export class MemoryJobQueue implements JobQueue {
  readonly requeuesAtHead = true;
  readonly #capacity: number;
  readonly #maxAttempts: number;
  /** Waiting entries per tenant; Map order is the order tenants' oldest entries arrived in. */
  readonly #byTenant = new Map<string, Entry[]>();
  readonly #share = new FairShare();
  #depth = 0;
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
    if (this.#depth >= this.#capacity) throw new QueueFullError(this.#capacity);
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
    let oldest = Number.POSITIVE_INFINITY;
    for (const entries of this.#byTenant.values())
      oldest = Math.min(oldest, entries[0]?.message.enqueuedAt ?? oldest);
    return {
      depth: this.#depth,
      capacity: this.#capacity,
      inFlight: this.#inFlight,
      oldestAgeMs: Number.isFinite(oldest) ? Math.max(0, Date.now() - oldest) : 0,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waitOrder) if (this.#waiters.has(waiter)) waiter(null);
    this.#waiters.clear();
    this.#waitOrder = [];
  }

  /** Hands the entry to the longest-waiting consumer, or queues it (redeliveries first in their tenant's line). */
  #offer(entry: Entry, atHead: boolean): void {
    this.#share.joined(tenantOf(entry.message));
    while (this.#waitOrder.length > 0) {
      const waiter = this.#waitOrder.shift() as Waiter;
      if (!this.#waiters.delete(waiter)) continue;
      waiter(entry);
      return;
    }
    const tenant = tenantOf(entry.message);
    const entries = this.#byTenant.get(tenant) ?? [];
    if (atHead) entries.unshift(entry);
    else entries.push(entry);
    this.#byTenant.set(tenant, entries);
    this.#depth++;
  }

  #take(): Entry | undefined {
    const tenant = this.#share.pick(this.#byTenant.keys());
    if (tenant === undefined) return undefined;
    const entries = this.#byTenant.get(tenant) as Entry[];
    const entry = entries.shift() as Entry;
    // An emptied line leaves the map, so a tenant's next job lines up by its own arrival.
    if (entries.length === 0) this.#byTenant.delete(tenant);
    this.#depth--;
    return entry;
  }

  #deliver(entry: Entry): Delivery {
    this.#inFlight++;
    const tenant = tenantOf(entry.message);
    const estimateMs = this.#share.dispatched(tenant);
    let costMs: number | undefined;
    let settled = false;
    const settle = (charged: boolean) => {
      if (settled) throw new Error(`job ${entry.message.id}: delivery settled twice`);
      settled = true;
      this.#inFlight--;
      this.#share.ended(tenant, estimateMs, charged ? (costMs ?? 0) : undefined);
    };
    const again = (attempt: number) => {
      if (this.#closed) return false;
      this.#offer({ message: entry.message, attempt }, true);
      return true;
    };
    return {
      message: entry.message,
      attempt: entry.attempt,
      // A job settled without a measured cost (dropped unprocessed) gives its estimate back.
      ack: async () => settle(costMs !== undefined),
      term: async () => settle(costMs !== undefined),
      // No redelivery timer here: a delivery stays in hand until it is settled.
      working: async () => {},
      spent: (cpuMs) => {
        costMs = cpuMs;
      },
      retry: async () => {
        settle(costMs !== undefined);
        return entry.attempt < this.#maxAttempts && again(entry.attempt + 1);
      },
      requeue: async () => {
        settle(false);
        return again(entry.attempt);
      },
    };
  }
}
