import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type NatsConnection, NoRespondersError, nanos, TimeoutError } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { isStreamFull, isStreamNotFound, JsCode, jsErrorCode } from "../nats/jetstream-errors.js";
import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";
import { LOG_ONLY_WIRE, type WireRejections } from "../wire/wire.js";
import type { UsageBatch } from "./model.js";
import { decodeUsageBatch, encodeUsageBatch } from "./usage-batch-wire.js";
import { type UsageConsumer, type UsageLog, UsageLogFullError } from "./usage-log.js";

export interface JetStreamUsageLogOptions {
  stream: string;
  subject: string;
  /** Batches the stream holds before it refuses new ones (UsageLogFullError); the shipper keeps the rest in its spool. */
  capacity: number;
  /** 3 in a cluster (a batch survives one server lost), 1 on a single server. */
  replicas: 1 | 3;
  /** A batch id published again within this window is dropped by the server. Default 2 minutes. */
  duplicateWindowMs?: number;
  /** A delivered batch is redelivered if not acked (nor reported in progress) within this. Default 30 s. */
  ackWaitMs?: number;
  /** The durable consumer every aggregator shares. */
  durable?: string;
  /** Deadline of every call to the server (publish, stream and consumer API, ack confirmation). */
  timeoutMs?: number;
  logger?: Logger;
  /** Where a batch that fails its schema is reported (default: logged only). */
  wire?: WireRejections;
}

const DEFAULTS = {
  duplicateWindowMs: 120_000,
  ackWaitMs: 30_000,
  durable: "usage-aggregator",
  timeoutMs: 5_000,
};
/** Room for the Nats-Msg-Id header and the protocol line on top of the JSON. */
const HEADER_ALLOWANCE_BYTES = 1024;
/**
 * Each pull waits this long; missed idle heartbeats (half of it, twice)
 * make the client re-check the consumer, so after a leader change the
 * consumer resumes within seconds rather than nats.js's 30 s default.
 */
const PULL_EXPIRES_MS = 5_000;
const MAX_RETRY_MS = 10_000;

/** A batch too large for one NATS message; it must be split by whoever sealed it. */
export class UsageBatchTooLargeError extends Error {
  override readonly name = "UsageBatchTooLargeError";
  constructor(
    readonly batchId: string,
    readonly bytes: number,
    readonly limitBytes: number,
    records: number,
  ) {
    super(
      `usage batch ${batchId} is ${kib(bytes)} of JSON (${records} records), more than the ${kib(limitBytes)} one NATS message may carry (the server's max_payload less headers); seal smaller batches (lower usage.maxBatchRecords) or raise max_payload on every nats-server`,
    );
  }
}

/**
 * The fleet UsageLog: a JetStream stream with work-queue retention and one
 * durable pull consumer shared by the aggregators.
 *
 * Work-queue rather than limits retention: the log is a hand-over, not a
 * history (the archive and the rollups are the history). Under work-queue
 * an acked batch leaves the stream, so `max_msgs` bounds exactly the
 * batches not yet aggregated, and `discard: new` makes a full log refuse
 * new batches (the shipper keeps them in its spool) instead of deleting
 * unaggregated ones. Limits retention would keep consumed batches until an
 * age or size limit, so the same bound would fill with finished work.
 *
 * The consumer holds one batch at a time (`max_ack_pending: 1`), in order:
 * a failing batch is nak'd with a backoff and blocks the ones behind it,
 * like the embedded log, because the aggregator failing is nearly always
 * the database, which would fail the next batch too.
 */
export class JetStreamUsageLog implements UsageLog {
  readonly #consumers = new Set<UsageConsumer>();
  #closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: JetStreamUsageLogOptions & typeof DEFAULTS,
  ) {}

  /** Creates the stream and the durable consumer, or binds to them and brings their limits to these options. */
  static async open(nc: NatsConnection, options: JetStreamUsageLogOptions): Promise<JetStreamUsageLog> {
    const resolved = {
      ...options,
      duplicateWindowMs: options.duplicateWindowMs ?? DEFAULTS.duplicateWindowMs,
      ackWaitMs: options.ackWaitMs ?? DEFAULTS.ackWaitMs,
      durable: options.durable ?? DEFAULTS.durable,
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    };
    const js = jetstream(nc, { timeout: resolved.timeoutMs });
    const jsm = await js.jetstreamManager();
    const log = new JetStreamUsageLog(nc, js, jsm, resolved);
    await log.#ensureStream();
    await log.#ensureConsumer();
    return log;
  }

  async publish(batch: UsageBatch, dedupeId = batch.id): Promise<void> {
    if (this.#closed) throw new Error("the usage log is closed");
    const payload = encodeUsageBatch(batch);
    const bytes = Buffer.byteLength(payload);
    const limit = (this.nc.info?.max_payload ?? 1024 * 1024) - HEADER_ALLOWANCE_BYTES;
    if (bytes > limit) throw new UsageBatchTooLargeError(batch.id, bytes, limit, batch.records.length);
    try {
      await this.js.publish(this.options.subject, payload, { msgID: dedupeId });
    } catch (error) {
      if (isStreamFull(error)) {
        throw new UsageLogFullError(
          `the usage stream ${this.options.stream} holds ${this.options.capacity} batches, its bound`,
          { cause: error },
        );
      }
      throw unavailable(this.options.stream, this.options.timeoutMs, error) ?? error;
    }
  }

  consume(handle: (batch: UsageBatch) => Promise<void>): UsageConsumer {
    const stopping = new AbortController();
    let messages: ConsumerMessages | undefined;
    const running = this.#consumeLoop(handle, {
      stopping: stopping.signal,
      started: (m) => {
        messages = m;
        if (stopping.signal.aborted) m.stop();
      },
    });
    const consumer: UsageConsumer = {
      stop: async () => {
        stopping.abort();
        messages?.stop();
        await running;
        this.#consumers.delete(consumer);
      },
    };
    this.#consumers.add(consumer);
    return consumer;
  }

  /** Stops every consumer (each after its batch in progress); the connection stays open, it is the caller's. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#consumers].map((c) => c.stop()));
  }

  async #consumeLoop(
    handle: (batch: UsageBatch) => Promise<void>,
    control: { stopping: AbortSignal; started: (m: ConsumerMessages) => void },
  ): Promise<void> {
    const stopped = () => control.stopping.aborted;
    for (let failures = 0; !stopped() && !this.nc.isClosed(); ) {
      try {
        await this.#ensureConsumer().catch(async (error: unknown) => {
          // Deleted by an operator: recreated as `open` would.
          if (!isStreamNotFound(error)) throw error;
          await this.#ensureStream();
          await this.#ensureConsumer();
        });
        const consumer = await this.js.consumers.get(this.options.stream, this.options.durable);
        const messages = await consumer.consume({ max_messages: 1, expires: PULL_EXPIRES_MS });
        control.started(messages);
        void stopWhenGone(messages);
        for await (const m of messages) {
          if (stopped()) {
            // Pulled but not started: hand it back for the next consumer now, not after ack_wait.
            m.nak();
            continue;
          }
          await this.#handleOne(m, handle);
          failures = 0;
        }
        if (!stopped()) throw new Error("the usage consumer's stream or durable consumer went away");
      } catch (error) {
        if (stopped()) break;
        failures++;
        const waitMs = Math.round(jitteredBackoffMs(failures, 250, MAX_RETRY_MS));
        this.options.logger?.warn(
          { err: error, stream: this.options.stream, failures, waitMs },
          "usage consumer cannot reach its stream or durable consumer (retrying); batches wait in the stream and the spools, nothing is lost",
        );
        await delay(waitMs, control.stopping).catch(() => {
          // Stopped while waiting.
        });
      }
    }
  }

  /** Acks after the handler resolves, naks with a backoff when it throws, and reports progress while it runs. */
  async #handleOne(m: JsMsg, handle: (batch: UsageBatch) => Promise<void>): Promise<void> {
    const read = decodeUsageBatch(m.data, {
      source: "usage-batch",
      from: `${m.subject} (stream ${this.options.stream}, seq ${m.seq})`,
    });
    if (!read.ok) {
      // Terminated, not redelivered: its spool still holds the batch and ships it again, for an aggregator that reads it.
      m.term();
      (this.options.wire ?? LOG_ONLY_WIRE).reject(read.rejection);
      return;
    }
    const batch = read.value;
    const progress = setInterval(() => m.working(), Math.max(100, this.options.ackWaitMs / 3));
    try {
      await handle(batch);
    } catch {
      // The handler logs its own failure; the batch comes back after the backoff.
      m.nak(Math.round(jitteredBackoffMs(m.info.deliveryCount, 100, MAX_RETRY_MS)));
      return;
    } finally {
      clearInterval(progress);
    }
    try {
      await m.ackAck({ timeout: this.options.timeoutMs });
    } catch (error) {
      this.options.logger?.warn(
        { err: error, batch: batch.id },
        "the usage stream did not confirm an ack; the batch may be delivered again, which the aggregator's claim makes harmless",
      );
    }
  }

  async #ensureStream(): Promise<void> {
    const { stream, subject, capacity, replicas, duplicateWindowMs } = this.options;
    const config: Partial<StreamConfig> & { name: string } = {
      name: stream,
      subjects: [subject],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_msgs: capacity,
      num_replicas: replicas,
      duplicate_window: nanos(duplicateWindowMs),
    };
    let current: StreamConfig;
    try {
      current = (await this.jsm.streams.info(stream)).config;
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      await this.jsm.streams.add(config);
      return;
    }
    if (current.retention !== RetentionPolicy.Workqueue || current.discard !== DiscardPolicy.New) {
      throw new Error(
        `stream ${stream} exists with ${current.retention} retention and discard ${current.discard}; the usage log needs workqueue and new: delete the stream (after draining it) or choose another name`,
      );
    }
    if (current.max_msgs !== capacity || current.num_replicas !== replicas) {
      await this.jsm.streams.update(stream, { max_msgs: capacity, num_replicas: replicas });
    }
  }

  async #ensureConsumer(): Promise<void> {
    const { stream, subject, durable, ackWaitMs } = this.options;
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      deliver_policy: DeliverPolicy.All,
      filter_subject: subject,
      max_ack_pending: 1,
      max_deliver: -1,
    };
    try {
      const current = (await this.jsm.consumers.info(stream, durable)).config;
      if (current.ack_wait !== config.ack_wait || current.max_ack_pending !== 1) {
        await this.jsm.consumers.update(stream, durable, { ack_wait: config.ack_wait, max_ack_pending: 1 });
      }
    } catch (error) {
      if (jsErrorCode(error) !== JsCode.ConsumerNotFound) throw error;
      await this.jsm.consumers.add(stream, config);
    }
  }
}

/**
 * nats.js keeps pulling from a deleted consumer or stream forever; ending
 * the iterator instead lets the loop recreate them (with backoff).
 */
async function stopWhenGone(messages: ConsumerMessages): Promise<void> {
  for await (const status of messages.status()) {
    if (
      status.type === "consumer_deleted" ||
      status.type === "consumer_not_found" ||
      status.type === "stream_not_found"
    ) {
      messages.stop();
    }
  }
}

/** A publish that found no stream leader in time: an outage or an election, not a bug in the batch. */
function unavailable(stream: string, timeoutMs: number, error: unknown): Error | null {
  // nats.js turns "no responders" on a JetStream subject into JetStreamNotEnabled (not exported by name).
  const transient =
    error instanceof TimeoutError ||
    error instanceof NoRespondersError ||
    (error instanceof Error && error.name === "JetStreamNotEnabled");
  if (!transient) return null;
  return new Error(
    `the usage stream ${stream} did not accept the batch within ${timeoutMs} ms (NATS unreachable, or the stream electing a leader); the batch stays in the spool and is shipped again`,
    { cause: error },
  );
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}
