import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { type NatsConnection, TimeoutError } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";
import { isKvKey, type KvChange, type KvWatch } from "./key-value.js";

/**
 * Reading a NATS KV bucket: one-off snapshots (`keys`, `entries`, tombstone
 * compaction) and watches. Both use ordered pull consumers with
 * deliver-last-per-subject over the bucket's stream, which 2.9 supports,
 * instead of @nats-io/kv's push watcher, so a watcher can tell when its
 * initial values are done and can be rebuilt after a reset.
 */

/** Where a bucket's messages live. */
export interface BucketRef {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  /** `$KV.<bucket>.` */
  subjectPrefix: string;
  timeoutMs: number;
  logger?: Logger;
}

/** The latest message of one key, including delete markers. */
export interface RawEntry {
  key: string;
  operation: "PUT" | "DEL" | "PURGE";
  value: string;
  revision: number;
  updatedAt: number;
}

/** How long an idle ephemeral consumer outlives its client (a crashed reader's consumer is removed by the server). */
const INACTIVE_THRESHOLD_MS = 30_000;
const MAX_WATCH_RESTART_WAIT_MS = 10_000;
/**
 * A watch's pull requests expire after this, and the server sends idle
 * heartbeats at half of it: two missed (about this long) mean the server
 * holding the watch's consumer is gone, and the watch restarts elsewhere.
 */
const WATCH_PULL_EXPIRES_MS = 5_000;
/** A snapshot's pulls: heartbeats at half of it end a listing whose last entries expired meanwhile. */
const SNAPSHOT_PULL_EXPIRES_MS = 2_000;

export function toRawEntry(bucket: BucketRef, m: JsMsg): RawEntry {
  const op = m.headers?.get("KV-Operation");
  return {
    key: m.subject.slice(bucket.subjectPrefix.length),
    operation: op === "DEL" || op === "PURGE" ? op : "PUT",
    value: m.data.length > 0 ? m.string() : "",
    revision: m.seq,
    updatedAt: m.time.getTime(),
  };
}

/**
 * The narrowest subject filter that holds every key starting with `prefix`:
 * whole tokens only (`key.` → `$KV.b.key.>`); the rest is filtered here.
 */
export function filterFor(bucket: BucketRef, prefix: string): string {
  const lastDot = prefix.lastIndexOf(".");
  const tokens = lastDot > 0 ? prefix.slice(0, lastDot) : "";
  return tokens && isKvKey(tokens) ? `${bucket.subjectPrefix}${tokens}.>` : `${bucket.subjectPrefix}>`;
}

/**
 * The server heartbeats a pull only while it has nothing to send: during a
 * snapshot that means entries counted at the start expired before delivery.
 */
async function endWhenIdle(messages: ConsumerMessages): Promise<void> {
  for await (const status of messages.status()) {
    if (status.type === "heartbeat") messages.stop();
  }
}

function discard(consumer: Consumer): void {
  consumer.delete().catch(() => {
    // Already gone, or the server removes it after INACTIVE_THRESHOLD_MS.
  });
}

function orderedConsumer(bucket: BucketRef, prefix: string, headersOnly: boolean): Promise<Consumer> {
  return bucket.js.consumers.get(bucket.stream, {
    filter_subjects: filterFor(bucket, prefix),
    deliver_policy: DeliverPolicy.LastPerSubject,
    headers_only: headersOnly,
    inactive_threshold: INACTIVE_THRESHOLD_MS,
  });
}

/** The latest message of every key under `prefix` (delete markers included), in revision order. */
export async function snapshot(bucket: BucketRef, prefix: string, headersOnly: boolean): Promise<RawEntry[]> {
  const consumer = await orderedConsumer(bucket, prefix, headersOnly);
  try {
    const count = (await consumer.info(true)).num_pending;
    const out: RawEntry[] = [];
    if (count === 0) return out;
    const messages = await consumer.consume({
      max_messages: Math.min(count, 512),
      expires: SNAPSHOT_PULL_EXPIRES_MS,
    });
    void endWhenIdle(messages);
    // The deadline grows by 1 ms per entry: a listing of 100k keys may take a second or two.
    const timer = setTimeout(() => messages.stop(new TimeoutError()), bucket.timeoutMs + count);
    try {
      let received = 0;
      for await (const m of messages) {
        received++;
        const raw = toRawEntry(bucket, m);
        if (raw.key.startsWith(prefix)) out.push(raw);
        if (received >= count || m.info.pending === 0) break;
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    return out;
  } finally {
    discard(consumer);
  }
}

/**
 * A watch over one prefix. Each run is an ordered consumer that delivers
 * the last message of every key (the initial values), then every change.
 *
 * nats-server 2.9 places such an ephemeral consumer on any replica of the
 * stream, and a replica that has just restarted may lag. So the watch keeps,
 * per key, the highest revision it has processed (deletions included) and
 * ignores anything older: a lagging replica can delay news, never take a
 * key back in time or bring a deleted key back.
 *
 * When a run ends abnormally (a reconnect, its server lost, a sequence gap)
 * a fresh run starts; after its initial values, the watch asks the stream
 * leader which keys still have a message, and delivers a deletion for each
 * key it holds live that has none: deleted while the watch was away with
 * its marker compacted since, or expired. Revisions never go backwards.
 */
export class NatsWatch implements KvWatch {
  readonly initialLoaded: Promise<void>;
  #resolveLoaded: () => void = () => {};
  /** Per key under the prefix: the highest revision processed, and whether the key is live after it. */
  readonly #keys = new Map<string, { revision: number; live: boolean }>();
  #lastRevision = 0;
  #messages: ConsumerMessages | undefined;
  #consumer: Consumer | undefined;
  #stopped = false;
  /** Each consumer run; a callback or supervisor of an older run does nothing. */
  #run = 0;
  /** Each restart loop; an older loop gives up when a newer resync starts one. */
  #reopens = 0;
  /** Runs that got as far as consuming; every one after the first is a resync. */
  #runs = 0;

  private constructor(
    private readonly bucket: BucketRef,
    private readonly prefix: string,
    private readonly onChange: (change: KvChange) => void,
  ) {
    this.initialLoaded = new Promise((resolve) => {
      this.#resolveLoaded = resolve;
    });
  }

  /** Resolves once the first consumer exists; the initial values follow (see `initialLoaded`). */
  static async start(
    bucket: BucketRef,
    prefix: string,
    onChange: (change: KvChange) => void,
  ): Promise<NatsWatch> {
    const watch = new NatsWatch(bucket, prefix, onChange);
    await watch.#open();
    return watch;
  }

  stop(): void {
    this.#stopped = true;
    this.#close();
  }

  /**
   * Starts a fresh run now (after a reconnect): the old consumer may live on
   * a server that is gone, and nats.js would wait for it rather than move.
   */
  resync(reason: string): void {
    if (this.#stopped || this.bucket.nc.isClosed()) return;
    this.bucket.logger?.info(
      { stream: this.bucket.stream, prefix: this.prefix, reason },
      "KV watch resyncing",
    );
    this.#close();
    void this.#reopen();
  }

  async #open(): Promise<void> {
    const run = ++this.#run;
    const current = () => !this.#stopped && run === this.#run;
    const consumer = await orderedConsumer(this.bucket, this.prefix, false);
    if (!current()) return discard(consumer);
    const count = (await consumer.info(true)).num_pending;
    const resync = this.#runs++ > 0;
    let received = 0;
    let loading = true;
    const loaded = () => {
      loading = false;
      this.#resolveLoaded();
      if (resync) void this.#dropVanished(run);
    };
    const messages = await consumer.consume({
      max_messages: 256,
      expires: WATCH_PULL_EXPIRES_MS,
      callback: (m) => {
        if (!current()) return;
        this.#deliver(toRawEntry(this.bucket, m));
        received++;
        if (loading && (received >= count || m.info.pending === 0)) loaded();
      },
    });
    if (!current()) {
      messages.stop();
      return discard(consumer);
    }
    this.#messages = messages;
    this.#consumer = consumer;
    if (count === 0) loaded();
    void this.#supervise(run, messages, () => loading && loaded());
  }

  /**
   * Resyncs when the consumer was recreated (deletes may have been missed
   * in between), went quiet (its server is gone) or gave up. An idle
   * heartbeat during the initial load means nothing more is coming.
   */
  async #supervise(run: number, messages: ConsumerMessages, idle: () => void): Promise<void> {
    let reason = "consumer closed";
    try {
      for await (const status of messages.status()) {
        if (status.type === "heartbeat") idle();
        if (status.type === "ordered_consumer_recreated" || status.type === "heartbeats_missed") {
          reason = status.type;
          break;
        }
      }
    } catch {
      // The consumer gave up: resynced below.
    }
    // Ended by stop() or by a newer run: nothing to do.
    if (run === this.#run) this.resync(reason);
  }

  /** Retries #open with backoff until it succeeds, the watch stops, or a newer resync takes over. */
  async #reopen(): Promise<void> {
    const attempt = ++this.#reopens;
    await this.#retrying(
      () => !this.#stopped && !this.bucket.nc.isClosed() && attempt === this.#reopens,
      "KV watch could not restart (retrying); this node's view of the bucket is stale until it does",
      () => this.#open(),
    );
  }

  /** Runs `step` until it succeeds or `wanted()` turns false, logging each failure and backing off with jitter. */
  async #retrying(wanted: () => boolean, failed: string, step: () => Promise<void>): Promise<void> {
    for (let failures = 1; wanted(); failures++) {
      try {
        await step();
        return;
      } catch (error) {
        const waitMs = jitteredBackoffMs(failures, 250, MAX_WATCH_RESTART_WAIT_MS);
        this.bucket.logger?.warn({ err: error, stream: this.bucket.stream, waitMs }, failed);
        await delay(waitMs);
      }
    }
  }

  #deliver(raw: RawEntry): void {
    if (!raw.key.startsWith(this.prefix)) return;
    const known = this.#keys.get(raw.key);
    if (known && raw.revision <= known.revision) return;
    const live = raw.operation === "PUT";
    this.#keys.set(raw.key, { revision: raw.revision, live });
    if (live) {
      this.#emit({ key: raw.key, value: raw.value, revision: raw.revision });
    } else if (known?.live) {
      this.#emit({ key: raw.key, value: null, revision: raw.revision });
    }
  }

  /**
   * After a resync's initial values: a key held live with no message at the
   * stream leader is gone. Retried until it succeeds or a newer run starts,
   * because a deletion missed here would never be delivered.
   */
  async #dropVanished(run: number): Promise<void> {
    const current = () => !this.#stopped && run === this.#run;
    await this.#retrying(
      current,
      "KV watch could not check for keys deleted while it was away (retrying)",
      async () => {
        const info = await this.bucket.jsm.streams.info(this.bucket.stream, {
          subjects_filter: filterFor(this.bucket, this.prefix),
        });
        if (!current()) return;
        const present = new Set(
          Object.keys(info.state.subjects ?? {}).map((s) => s.slice(this.bucket.subjectPrefix.length)),
        );
        const floor = info.state.last_seq;
        for (const [key, known] of this.#keys) {
          if (!known.live || present.has(key) || known.revision > floor) continue;
          // Anything at or below the leader's last sequence for this key is older than its deletion.
          this.#keys.set(key, { revision: floor, live: false });
          this.#emit({ key, value: null, revision: this.#lastRevision });
        }
      },
    );
  }

  #emit(change: KvChange): void {
    this.#lastRevision = Math.max(this.#lastRevision, change.revision);
    try {
      this.onChange(change);
    } catch (error) {
      this.bucket.logger?.error(
        { err: error, key: change.key },
        "a KV watch handler threw; the watch goes on",
      );
    }
  }

  #close(): void {
    this.#run++;
    this.#messages?.stop();
    this.#messages = undefined;
    if (this.#consumer) discard(this.#consumer);
    this.#consumer = undefined;
  }
}
