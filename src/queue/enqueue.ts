import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";
import type { JobMessage, JobQueue } from "./job-queue.js";

const UNAVAILABLE = {
  timeout: "no reply within the publish timeout",
  "no-responders": "no server answers for the stream (a leader election?)",
  unavailable: "JetStream answered that it is temporarily unavailable",
  closed: "the NATS connection is closed",
  deadline: "still unavailable at the request's deadline",
} as const;

/** The queue cannot take the job right now (no stream leader, timeout, disconnected); retry shortly. */
export class QueueUnavailableError extends Error {
  override readonly name = "QueueUnavailableError";
  /** A Raft election takes 4-9 s: a client should come back after it. */
  readonly retryAfterS = 5;
  constructor(
    readonly stream: string,
    readonly reason: keyof typeof UNAVAILABLE,
    options?: ErrorOptions,
  ) {
    super(
      `the job queue (stream ${stream}) is unavailable: ${UNAVAILABLE[reason]}; retry in a few seconds`,
      options,
    );
  }

  /** False when retrying cannot help: the connection is closed, or the deadline passed. */
  get retryable(): boolean {
    return this.reason !== "closed" && this.reason !== "deadline";
  }
}

/**
 * Retries `enqueue` while the queue is unavailable (a leader election, a
 * server restart), with jittered exponential backoff, until `deadlineMs`
 * (epoch ms, like `JobMessage.deadline`, its default). The job id dedupes
 * attempts whose reply was lost. Throws QueueUnavailableError once the
 * deadline passes, mid-attempt included; other errors (QueueFullError)
 * at once; the signal's reason when it aborts (the client went away).
 */
export async function enqueueWithin(
  queue: JobQueue,
  message: JobMessage,
  deadlineMs: number = message.deadline,
  hooks: { signal?: AbortSignal; onRetry?: (error: QueueUnavailableError, failures: number) => void } = {},
): Promise<void> {
  let last: QueueUnavailableError | undefined;
  for (let failures = 1; Date.now() < deadlineMs && !hooks.signal?.aborted; failures++) {
    try {
      if (await settlesWithin(queue.enqueue(message), deadlineMs - Date.now())) return;
      break;
    } catch (error) {
      if (!(error instanceof QueueUnavailableError) || !error.retryable) throw error;
      last = error;
    }
    hooks.onRetry?.(last, failures);
    const waitMs = Math.min(jitteredBackoffMs(failures, 50, 1_000), Math.max(0, deadlineMs - Date.now()));
    await delay(waitMs, hooks.signal).catch(() => {});
  }
  hooks.signal?.throwIfAborted();
  throw new QueueUnavailableError(last?.stream ?? "unknown", "deadline", { cause: last });
}

/** True when `promise` fulfils within `ms`, false when the time runs out first; rejects as it does. */
async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  // A losing attempt may still fail later (ignored) or succeed (its job id dedupes a retry).
  promise.catch(() => {});
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
