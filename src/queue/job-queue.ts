import type { ResizeSpec } from "../image/spec.js";

/**
 * Where the input bytes of a job wait, and where its result goes. The queue
 * carries this small reference, never the bytes: in embedded mode it names
 * an entry in this process's staging table; in a fleet, the API node.
 */
export interface StagedRef {
  /** The node holding the bytes (its id; embedded: "local"). */
  node: string;
  key: string;
  bytes: number;
  /** The staging node's internal base URL (fleet); absent in embedded mode. */
  url?: string;
}

/** A small control message: what to do, for whom, where the bytes are, and until when. */
export interface JobMessage {
  id: string;
  /** Set by the identity layer; null until tenants exist. */
  tenant: string | null;
  spec: ResizeSpec;
  input: StagedRef;
  /** Epoch milliseconds after which nobody waits for the result. */
  deadline: number;
  enqueuedAt: number;
  /**
   * Attempts charged before this message was published again (see
   * `Delivery.requeue` in a fleet); absent means none.
   */
  priorAttempts?: number;
}

/** One delivery of a message to a consumer; settle it exactly once. */
export interface Delivery {
  readonly message: JobMessage;
  /** 1 for the first delivery. */
  readonly attempt: number;
  /** Done: never deliver again. */
  ack(): Promise<void>;
  /** Deliver again (at the head of the queue) unless the attempt bound is reached. Returns false when dropped. */
  retry(): Promise<boolean>;
  /** Failed for good: never deliver again. */
  term(): Promise<void>;
  /**
   * Back to the queue without charging an attempt: the job never ran (its
   * worker died running someone else's job). Returns false when the adapter
   * had to fall back to `retry` and that dropped it.
   */
  requeue(): Promise<boolean>;
  /**
   * What this delivery's run cost the worker (CPU ms, measured by the
   * supervisor; a kill or timeout included). Call before settling. An
   * adapter that shares workers between tenants by cost uses it; others
   * ignore it.
   */
  spent(cpuMs: number): void;
  /**
   * Still working on it: restarts the adapter's redelivery timer (JetStream's
   * ack wait) so a long job is not handed to a second worker meanwhile. Call
   * it well within the ack wait; a no-op once settled and for adapters
   * without a timer (in-memory: a delivery lives until settled or the
   * process ends).
   */
  working(): Promise<void>;
}

export interface QueueStats {
  depth: number;
  capacity: number;
  /** Delivered and not yet settled. */
  inFlight: number;
  /** Age of the oldest waiting message, 0 when empty. */
  oldestAgeMs: number;
}

/**
 * JobQueue port: a bounded queue of job messages, pulled by consumers that
 * have a free slot (pull is the backpressure). FIFO for one tenant; between
 * tenants an adapter may order by cost (`Delivery.spent`) so that one
 * tenant's expensive jobs do not starve another's. It leaves out explicit
 * priorities, delayed jobs and payload bytes; adapters own their connections.
 */
export interface JobQueue {
  /**
   * `Delivery.requeue` puts the job back at the head of the queue (in its
   * tenant's line), not behind every job waiting; a consumer withdraws a job
   * it holds only where this is true.
   */
  readonly requeuesAtHead: boolean;
  /** Throws QueueFullError when at capacity: new work is rejected, queued work is never dropped. */
  enqueue(message: JobMessage): Promise<void>;
  /** Resolves with the next delivery, or null once the signal aborts or the queue closes. */
  pull(signal: AbortSignal): Promise<Delivery | null>;
  stats(): QueueStats;
  /** Stops deliveries; waiting pulls resolve null. */
  close(): Promise<void>;
}

export function queueFullMessage(capacity: number): string {
  return `the job queue is full (${capacity} jobs waiting)`;
}

export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
  constructor(readonly capacity: number) {
    super(queueFullMessage(capacity));
  }
}
