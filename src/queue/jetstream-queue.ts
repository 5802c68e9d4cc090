import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { errors, type NatsConnection, nanos } from "@nats-io/transport-node";
import { hasNoResponders, retryTransient } from "../nats/jetstream-errors.js";
import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";
import { LOG_ONLY_WIRE, type WireRejections } from "../wire/wire.js";
import { QueueUnavailableError } from "./enqueue.js";
import { JetStreamPuller, type PulledMessage } from "./jetstream-pull.js";
import type { Delivery, JobMessage, JobQueue, QueueStats } from "./job-queue.js";
import { QueueFullError } from "./job-queue.js";
import { decodeJobMessage, encodeJobMessage } from "./job-wire.js";

/**
 * Fleet JobQueue: a JetStream work-queue stream and one durable pull consumer
 * shared by every worker node (see DESIGN.md, "The life of a synchronous
 * resize"). Needs only nats-server 2.9 features.
 *
 * - Stream: work-queue retention (a message lives until a worker acks or
 *   terms it), file storage, `max_msgs = capacity` with discard-new (a full
 *   queue rejects new jobs, never deletes queued ones), `max_msg_size` 64 KiB,
 *   and a duplicate window so an enqueue retried after a lost reply is stored
 *   once (the job id is the `Nats-Msg-Id`).
 * - Consumer: explicit ack, `ack_wait = ackWaitMs` (an unsettled delivery —
 *   a SIGKILLed worker — goes to another worker after it), deliver all.
 *   `max_deliver` is unlimited and the adapter enforces `maxAttempts` itself:
 *   with a server-side `max_deliver`, a job whose last delivery is never
 *   settled stays in a work-queue stream forever, invisible to the consumer
 *   yet counted against `max_msgs` (by design, nats-server#5564), so the
 *   queue would shrink with every lost worker. Here the next puller
 *   receives that delivery as attempt `maxAttempts + 1` and terms it, which
 *   removes it.
 * - Pull: one message per `pull`, so a node never holds more than its free
 *   lanes; each pull request has its own reply subject under one wildcard
 *   subscription (JetStreamPuller), so pulling costs no per-job SUB/UNSUB. A
 *   message answering a pull that was aborted meanwhile is NAKed back at
 *   once, at the cost of one counted attempt.
 * - Requeue (a job whose worker died running another job): JetStream counts
 *   every redelivery, so the job is published again with `priorAttempts`
 *   (at the stream's tail) and the original removed; the attempt it never
 *   used is not charged. A failed publish falls back to a charged retry.
 * - Sharing between tenants: a stream delivers in order, and one consumer
 *   cannot reorder it by cost, so this adapter ignores `Delivery.spent`.
 *   In a fleet a tenant's share is bounded at admission (`maxInFlight`,
 *   rate limits) and by the time limit each job carries; expensive inputs
 *   that can be known from their header (a JPEG's scans) are refused
 *   before they are queued, on every node.
 */

/** A control message is ~1 KB; anything near this is a bug (bytes never travel in the queue). */
export const MAX_JOB_MESSAGE_BYTES = 64 * 1024;

/**
 * Cap on deliveries in flight across the fleet (consumer `max_ack_pending`).
 * Not the backpressure (pull is): it only has to exceed the fleet's lanes
 * (workers × 2), or idle lanes would wait while jobs are queued.
 */
const MAX_ACK_PENDING = 10_000;

const DEFAULTS = {
  /** Covers every retry of an enqueue (request deadlines are seconds); 2 min is the server's default. */
  duplicateWindowMs: 120_000,
  statsRefreshMs: 250,
  /** Per publish attempt; `enqueueWithin` retries within the request's deadline. */
  publishTimeoutMs: 2_000,
  /** How long one pull request waits at the server; a request lost with a server is given up 1 s after this. */
  pullExpiresMs: 5_000,
  /** Base of the jittered delay before a retried job is redelivered (then ×2 per attempt, at most ×10). */
  retryDelayMs: 100,
};

/** What the adapter logs: a pino Logger fits. */
export interface QueueLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface JetStreamQueueOptions {
  stream: string;
  subject: string;
  durable: string;
  /** Stream `max_msgs`: jobs waiting plus jobs in flight. */
  capacity: number;
  /** Deliveries per job, the first included. */
  maxAttempts: number;
  replicas: 1 | 3;
  /** Redelivery after this long without a settlement or `working()`. */
  ackWaitMs: number;
  duplicateWindowMs?: number;
  /** How often `stats()` is refreshed from the server (default 250 ms). */
  statsRefreshMs?: number;
  publishTimeoutMs?: number;
  pullExpiresMs?: number;
  retryDelayMs?: number;
  /** Default: console. */
  logger?: QueueLogger;
  /** Where a job message that fails its schema is reported (default: logged only). */
  wire?: WireRejections;
}

type Resolved = Required<JetStreamQueueOptions>;

export class JobMessageTooLargeError extends Error {
  override readonly name = "JobMessageTooLargeError";
  constructor(
    readonly jobId: string,
    readonly bytes: number,
  ) {
    super(
      `job ${jobId}: the control message is ${bytes} bytes, over the ${MAX_JOB_MESSAGE_BYTES}-byte limit; image bytes must be staged, never queued`,
    );
  }
}

/** The existing stream or consumer cannot serve as this queue; the message says what to change. */
export class QueueSetupError extends Error {
  override readonly name = "QueueSetupError";
}

const consoleLogger: QueueLogger = {
  warn: (obj, msg) => console.warn(msg, obj),
  info: (obj, msg) => console.info(msg, obj),
};

export class JetStreamJobQueue implements JobQueue {
  /** A republished job joins the stream's tail. */
  readonly requeuesAtHead = false;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #puller: JetStreamPuller;
  readonly #o: Resolved;
  readonly #stats: StatsCache;
  readonly #closing = new AbortController();
  readonly #encoder = new TextEncoder();
  #refreshTimer: NodeJS.Timeout | undefined;
  #pullFailing = false;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, o: Resolved) {
    this.#nc = nc;
    this.#js = jsm.jetstream();
    this.#puller = new JetStreamPuller(nc, o.stream, o.durable);
    this.#o = o;
    this.#stats = new StatsCache(jsm, o);
  }

  /**
   * Creates the stream and the consumer, or binds to them (updating the
   * settings that can change). Safe when many nodes open at once: creating
   * an identical stream or consumer is idempotent at the server.
   */
  static async open(nc: NatsConnection, options: JetStreamQueueOptions): Promise<JetStreamJobQueue> {
    const o: Resolved = { ...DEFAULTS, logger: consoleLogger, wire: LOG_ONLY_WIRE, ...options };
    validate(o);
    // JetStream may still be electing its meta leader when a node starts beside a fresh cluster.
    const jsm = await retryTransient(() => jetstreamManager(nc));
    await retryTransient(() => ensureStream(jsm, o));
    await retryTransient(() => ensureConsumer(jsm, o));
    const queue = new JetStreamJobQueue(nc, jsm, o);
    await queue.#stats.refresh();
    queue.#refreshTimer = setInterval(() => void queue.#stats.refresh(), o.statsRefreshMs);
    queue.#refreshTimer.unref();
    return queue;
  }

  async enqueue(message: JobMessage): Promise<void> {
    if (this.#closing.signal.aborted) throw new Error("the job queue is closed");
    const data = this.#encoder.encode(encodeJobMessage(message));
    if (data.length > MAX_JOB_MESSAGE_BYTES) throw new JobMessageTooLargeError(message.id, data.length);
    const { subject, stream, publishTimeoutMs } = this.#o;
    try {
      await this.#js.publish(subject, data, {
        msgID: message.id,
        timeout: publishTimeoutMs,
        expect: { streamName: stream },
      });
    } catch (error) {
      throw this.#publishError(error);
    }
  }

  async pull(signal: AbortSignal): Promise<Delivery | null> {
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    let failures = 0;
    while (!stop.aborted && !this.#nc.isClosed()) {
      let msg: PulledMessage | null;
      try {
        msg = await this.#puller.pullOne(this.#o.pullExpiresMs, stop);
        this.#pullRecovered();
        failures = 0;
      } catch (error) {
        this.#pullFailed(error);
        await delay(jitteredBackoffMs(++failures, 100, 2_000), stop).catch(() => {});
        continue;
      }
      const delivery = msg && this.#toDelivery(msg);
      if (delivery) return delivery;
    }
    return null;
  }

  stats(): QueueStats {
    return this.#stats.current();
  }

  /** Stops refreshing stats and wakes waiting pulls; the stream stays, and the node owns the connection. */
  async close(): Promise<void> {
    clearInterval(this.#refreshTimer);
    this.#closing.abort();
    this.#puller.close();
  }

  /** A Delivery, or null for a message no worker should see (over the attempt bound, unreadable). */
  #toDelivery(msg: PulledMessage): Delivery | null {
    const attempt = msg.deliveryCount + priorAttemptsIn(msg.msg.data);
    this.#stats.delivered(attempt);
    if (attempt > this.#o.maxAttempts) {
      // Its last attempt was never settled (the worker died): remove it from the stream.
      msg.term();
      this.#stats.settled();
      this.#o.logger.warn(
        { stream: this.#o.stream, seq: msg.streamSequence, attempts: attempt - 1 },
        "dropped a job whose last attempt was never settled (its worker died); it counted against the queue's capacity until now",
      );
      return null;
    }
    const read = decodeJobMessage(msg.msg.data, {
      source: "job",
      from: `${msg.msg.subject} (stream ${this.#o.stream}, seq ${msg.streamSequence})`,
    });
    if (!read.ok) {
      // Terminated, never redelivered: no worker of this version can run it, however often it comes back.
      msg.term();
      this.#stats.settled();
      this.#o.wire.reject(read.rejection);
      return null;
    }
    return this.#delivery(msg, read.value, attempt);
  }

  #delivery(msg: PulledMessage, message: JobMessage, attempt: number): Delivery {
    let settled = false;
    const settle = () => {
      if (settled) throw new Error(`job ${message.id}: delivery settled twice`);
      settled = true;
    };
    return {
      message,
      attempt,
      ack: async () => {
        settle();
        await this.#confirmAck(msg, message.id);
        this.#stats.settled();
      },
      term: async () => {
        settle();
        msg.term();
        this.#stats.settled();
      },
      retry: async () => {
        settle();
        return this.#retry(msg, attempt);
      },
      requeue: async () => {
        settle();
        if (await this.#republish(msg, message, attempt)) return true;
        return this.#retry(msg, attempt);
      },
      // Fair sharing by cost is the embedded queue's: a stream delivers in order (see the class comment).
      spent: () => {},
      working: async () => {
        if (!settled) msg.working();
      },
    };
  }

  #retry(msg: PulledMessage, attempt: number): boolean {
    if (attempt >= this.#o.maxAttempts) {
      msg.term();
      this.#stats.settled();
      return false;
    }
    // Still pending at the server until redelivered: inFlight is unchanged.
    const { retryDelayMs } = this.#o;
    msg.nak(Math.round(jitteredBackoffMs(attempt, retryDelayMs, retryDelayMs * 10)));
    return true;
  }

  /**
   * Puts the job back without charging this attempt: JetStream counts every
   * redelivery, so the job is published again (at the stream's tail) saying
   * how many attempts it had used, and this message is removed. False when
   * the publish fails (a full stream, no leader): the caller then retries.
   */
  async #republish(msg: PulledMessage, message: JobMessage, attempt: number): Promise<boolean> {
    const again: JobMessage = { ...message, priorAttempts: attempt - 1 };
    const { subject, stream, publishTimeoutMs } = this.#o;
    try {
      await this.#js.publish(subject, this.#encoder.encode(encodeJobMessage(again)), {
        // Unique per original message, so the dedupe window neither drops it nor lets it in twice.
        msgID: `${message.id}@${msg.streamSequence}`,
        timeout: publishTimeoutMs,
        expect: { streamName: stream },
      });
    } catch {
      return false;
    }
    msg.term();
    this.#stats.settled();
    return true;
  }

  /** Waits for the server's word; if it never comes the job may run again, which every consumer tolerates. */
  async #confirmAck(msg: PulledMessage, jobId: string): Promise<void> {
    const ok = await msg.ackConfirmed(this.#o.publishTimeoutMs).then(
      () => true,
      (error: unknown) => error,
    );
    if (ok === true) return;
    this.#o.logger.warn(
      { err: ok, jobId, stream: this.#o.stream },
      "the queue did not confirm a job's ack (server or leader change?); the job may be delivered again",
    );
  }

  #publishError(error: unknown): Error {
    const { stream, capacity } = this.#o;
    if (error instanceof JetStreamApiError) {
      if (isStreamFull(error)) {
        this.#stats.full();
        return new QueueFullError(capacity);
      }
      if (error.status === 503) return new QueueUnavailableError(stream, "unavailable", { cause: error });
      return error;
    }
    if (hasNoResponders(error)) return new QueueUnavailableError(stream, "no-responders", { cause: error });
    if (error instanceof errors.TimeoutError)
      return new QueueUnavailableError(stream, "timeout", { cause: error });
    if (error instanceof errors.ClosedConnectionError || error instanceof errors.DrainingConnectionError) {
      return new QueueUnavailableError(stream, "closed", { cause: error });
    }
    return error instanceof Error ? error : new Error(String(error));
  }

  #pullFailed(error: unknown): void {
    if (this.#pullFailing) return;
    this.#pullFailing = true;
    this.#o.logger.warn(
      { err: error, stream: this.#o.stream, durable: this.#o.durable },
      "pulling jobs failed; retrying with backoff (a NATS server or leader change?)",
    );
  }

  #pullRecovered(): void {
    if (!this.#pullFailing) return;
    this.#pullFailing = false;
    this.#o.logger.info({ stream: this.#o.stream }, "pulling jobs works again");
  }
}

function isStreamFull(error: JetStreamApiError): boolean {
  return (
    error.code === 10077 || /maximum (messages|bytes|messages per subject) exceeded/i.test(error.message)
  );
}

function validate(o: Resolved): void {
  const positive = ["capacity", "maxAttempts", "ackWaitMs", "statsRefreshMs", "publishTimeoutMs"] as const;
  for (const key of positive) {
    if (!Number.isInteger(o[key]) || o[key] < 1) {
      throw new RangeError(`JetStreamJobQueue: ${key} must be a positive integer (got ${o[key]})`);
    }
  }
  if (o.pullExpiresMs < 1_000) throw new RangeError("JetStreamJobQueue: pullExpiresMs must be at least 1000");
}

function streamConfig(o: Resolved): Partial<StreamConfig> & { name: string } {
  return {
    name: o.stream,
    subjects: [o.subject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    max_msgs: o.capacity,
    discard: DiscardPolicy.New,
    duplicate_window: nanos(o.duplicateWindowMs),
    max_msg_size: MAX_JOB_MESSAGE_BYTES,
    num_replicas: o.replicas,
  };
}

/** Creates the stream, or checks and updates an existing one. Racing creators with the same config all succeed. */
async function ensureStream(jsm: JetStreamManager, o: Resolved): Promise<void> {
  const wanted = streamConfig(o);
  try {
    await jsm.streams.add(wanted);
    return;
  } catch (error) {
    // 10058: the name is taken with another configuration.
    if (!(error instanceof JetStreamApiError && error.code === 10058)) throw error;
  }
  const { config } = await jsm.streams.info(o.stream);
  const problems = [
    config.retention !== RetentionPolicy.Workqueue && `retention is ${config.retention}, not workqueue`,
    config.storage !== StorageType.File && `storage is ${config.storage}, not file`,
    !config.subjects?.includes(o.subject) && `subjects ${JSON.stringify(config.subjects)} lack ${o.subject}`,
  ].filter(Boolean);
  if (problems.length > 0) {
    throw new QueueSetupError(
      `stream ${o.stream} exists but cannot be the job queue: ${problems.join("; ")}. Delete it (nats stream rm ${o.stream}) or configure another stream name`,
    );
  }
  const { max_msgs, discard, duplicate_window, max_msg_size, num_replicas } = wanted;
  await jsm.streams.update(o.stream, { max_msgs, discard, duplicate_window, max_msg_size, num_replicas });
}

async function ensureConsumer(jsm: JetStreamManager, o: Resolved): Promise<void> {
  const wanted: Partial<ConsumerConfig> = {
    durable_name: o.durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(o.ackWaitMs),
    max_deliver: -1,
    max_ack_pending: MAX_ACK_PENDING,
    deliver_policy: DeliverPolicy.All,
  };
  try {
    // 2.9 creates or updates a durable; 2.10+ answers 10148 when it exists with another config.
    await jsm.consumers.add(o.stream, wanted);
  } catch (error) {
    if (!(error instanceof JetStreamApiError)) throw error;
    if (error.code === 10148) {
      const { ack_wait, max_deliver, max_ack_pending } = wanted;
      await jsm.consumers.update(o.stream, o.durable, { ack_wait, max_deliver, max_ack_pending });
      return;
    }
    throw new QueueSetupError(
      `cannot create consumer ${o.durable} on stream ${o.stream}: ${error.message}. A work-queue stream takes one consumer: remove any other (nats consumer ls ${o.stream})`,
      { cause: error },
    );
  }
}

/**
 * A synchronous view of the queue for admission: the last server snapshot
 * plus this node's changes since, refreshed every `statsRefreshMs`.
 *
 * - depth: the consumer's `num_pending` (stored, never delivered).
 * - inFlight: `num_ack_pending` — delivered and unsettled, including jobs
 *   waiting for their redelivery after a retry or a missed ack.
 * - oldestAgeMs: from the `enqueuedAt` of the first waiting message, the
 *   one after the consumer's `delivered.stream_seq` (work-queue streams
 *   never delete an undelivered message), fetched by sequence only when
 *   that head moves: one consumer-info request per refresh in steady state.
 *
 * Every snapshot is applied, less this node's deliveries made while it was
 * being requested or since (a worker's own deliveries are certain; one
 * counted twice is corrected by the next snapshot), and likewise for
 * settlements and the in-flight count.
 * This node's enqueues are never added: an API node never sees the workers'
 * deliveries, so adding them made the estimate grow with its request rate
 * (one per enqueue per refresh interval) instead of with the queue, and
 * refuse requests with the queue nearly empty. Admission therefore reads the
 * stream's real pending count at most one refresh old, and the stream's own
 * `max_msgs` still refuses (QueueFullError, 503) what arrives over the
 * capacity in between.
 * Failed refreshes keep the last values; the first of a run is logged.
 */
class StatsCache {
  readonly #jsm: JetStreamManager;
  readonly #o: Resolved;
  #depth = 0;
  #inFlight = 0;
  #oldestEnqueuedAt = 0;
  /** The last head message looked up, so an unchanged head costs no request. */
  #head = { seq: 0, enqueuedAt: 0 };
  /** Local changes since start, so a snapshot can be corrected for those made while it was in flight. */
  readonly #changes = { delivered: 0, settled: 0 };
  #refreshing = false;
  #failing = false;

  constructor(jsm: JetStreamManager, o: Resolved) {
    this.#jsm = jsm;
    this.#o = o;
  }

  current(): QueueStats {
    return {
      depth: this.#depth,
      capacity: this.#o.capacity,
      inFlight: this.#inFlight,
      oldestAgeMs:
        this.#depth > 0 && this.#oldestEnqueuedAt > 0 ? Math.max(0, Date.now() - this.#oldestEnqueuedAt) : 0,
    };
  }

  /** The server refused a message: count the queue as full until the next snapshot. */
  full(): void {
    this.#depth = Math.max(this.#depth, this.#o.capacity - this.#inFlight);
  }

  delivered(attempt: number): void {
    // Redeliveries were counted in flight already.
    if (attempt > 1) return;
    this.#changes.delivered++;
    this.#depth = Math.max(0, this.#depth - 1);
    this.#inFlight++;
  }

  settled(): void {
    this.#changes.settled++;
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  async refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    const before = { ...this.#changes };
    try {
      const info = await this.#jsm.consumers.info(this.#o.stream, this.#o.durable);
      const head = info.num_pending > 0 ? info.delivered.stream_seq + 1 : 0;
      const oldest = head === 0 ? 0 : await this.#enqueuedAt(head);
      this.#recovered();
      const delivered = this.#changes.delivered - before.delivered;
      const settled = this.#changes.settled - before.settled;
      this.#depth = Math.max(0, info.num_pending - delivered);
      this.#inFlight = Math.max(0, info.num_ack_pending + delivered - settled);
      this.#oldestEnqueuedAt = oldest;
    } catch (error) {
      this.#failed(error);
    } finally {
      this.#refreshing = false;
    }
  }

  async #enqueuedAt(seq: number): Promise<number> {
    if (seq === this.#head.seq) return this.#head.enqueuedAt;
    const stored = await this.#jsm.streams.getMessage(this.#o.stream, { seq });
    if (!stored) return 0;
    let enqueuedAt = stored.time.getTime();
    try {
      const body = stored.json<Partial<JobMessage>>();
      if (typeof body.enqueuedAt === "number") enqueuedAt = body.enqueuedAt;
    } catch {
      // Not a job message: the stored time will do.
    }
    this.#head = { seq, enqueuedAt };
    return enqueuedAt;
  }

  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#o.logger.warn(
      { err: error, stream: this.#o.stream },
      "refreshing job queue stats failed; admission uses the last values until it works again",
    );
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#o.logger.info({ stream: this.#o.stream }, "job queue stats refresh works again");
  }
}

/** Attempts a republished job had used (`JobMessage.priorAttempts`), read before the full decode; 0 when absent or unreadable. */
function priorAttemptsIn(data: Uint8Array): number {
  try {
    const prior = (JSON.parse(new TextDecoder().decode(data)) as { priorAttempts?: unknown }).priorAttempts;
    return typeof prior === "number" && Number.isInteger(prior) && prior >= 0 && prior <= 100 ? prior : 0;
  } catch {
    return 0;
  }
}
