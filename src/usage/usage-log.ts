import type { UsageBatch } from "./model.js";

/** Stops a consumer; resolves once the batch being handled (if any) is done. */
export interface UsageConsumer {
  stop(): Promise<void>;
}

/**
 * The UsageLog port: carries sealed batches from every API node's spool to
 * the aggregator. Embedded: an in-process bounded channel. Fleet: a
 * JetStream stream with the batch id as the dedupe id.
 *
 * Delivery is at least once and the transport's word is never final: the
 * aggregator's claim makes a repeated batch harmless, and the shipper
 * deletes spool data only once the database has committed it, so a
 * transport that loses an acknowledged batch costs a re-ship, not usage.
 * Left out on purpose: ordering across batches, and any acknowledgement
 * that reaches the publisher.
 */
export interface UsageLog {
  /**
   * Hands a sealed batch to the transport; resolves once accepted. Throws
   * UsageLogFullError at the transport's bound (the shipper tries later).
   * `dedupeId` (default: the batch id) is what the transport drops repeats
   * by; a re-ship passes a fresh one, since the transport may have dropped
   * the first copy after acknowledging it, and then it would drop the re-ship
   * too. The aggregator's claim on the batch id still counts it once.
   */
  publish(batch: UsageBatch, dedupeId?: string): Promise<void>;
  /**
   * Delivers batches to `handle` one at a time. A batch whose handler
   * throws is delivered again later, with backoff.
   */
  consume(handle: (batch: UsageBatch) => Promise<void>): UsageConsumer;
  close(): Promise<void>;
}

export class UsageLogFullError extends Error {
  override readonly name = "UsageLogFullError";
}
