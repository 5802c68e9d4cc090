import { JetStreamApiError } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";

/**
 * The JetStream API error codes the adapters map to domain errors, as
 * nats-server 2.9 sends them (checked against a real 2.9.10 in the tests).
 */
export const JsCode = {
  /** JSStreamStoreFailedF: the store refused the message; the description says why. */
  StoreFailed: 10077,
  /** JSStreamMessageExceedsMaximumErr: larger than the stream's max_msg_size. */
  MessageTooLarge: 10054,
  /** JSStreamWrongLastSequenceErrF: an expected-last-subject-sequence precondition failed. */
  WrongLastSequence: 10071,
  /** JSStreamNotFoundErr. */
  StreamNotFound: 10059,
  /** JSConsumerNotFoundErr. */
  ConsumerNotFound: 10014,
} as const;

export function jsErrorCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/**
 * True when a stream with discard-new refused a message because it holds
 * its maximum messages or bytes (2.9 reports this as a store failure whose
 * description is the limit's text).
 */
export function isStreamFull(error: unknown): boolean {
  if (jsErrorCode(error) !== JsCode.StoreFailed) return false;
  return /maximum (messages|bytes)/i.test((error as Error).message);
}

export function isWrongLastSequence(error: unknown): boolean {
  return jsErrorCode(error) === JsCode.WrongLastSequence;
}

export function isStreamNotFound(error: unknown): boolean {
  return jsErrorCode(error) === JsCode.StreamNotFound || (error as Error)?.message === "stream not found";
}

export function hasNoResponders(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof errors.NoRespondersError) return true;
    if (e instanceof errors.RequestError && e.isNoResponders()) return true;
  }
  return false;
}

/** Errors of a cluster that is still forming or electing leaders: worth another try in a moment. */
export function isTransient(error: unknown): boolean {
  return (
    error instanceof errors.TimeoutError ||
    hasNoResponders(error) ||
    (error instanceof JetStreamApiError && (error.status === 503 || /no suitable peers/i.test(error.message)))
  );
}

/** Retries setup (streams, consumers, buckets) while JetStream elects leaders: a fresh cluster, a restart. */
export async function retryTransient<T>(fn: () => Promise<T>, attempts = 8): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await fn();
    } catch (error) {
      if (!isTransient(error) || failures >= attempts) throw error;
      await delay(jitteredBackoffMs(failures, 100, 2_000));
    }
  }
}
