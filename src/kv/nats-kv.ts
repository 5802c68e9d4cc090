import {
  DiscardPolicy,
  type JetStreamManager,
  jetstream,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type NatsConnection, nanos, type Status } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  isStreamFull,
  isStreamNotFound,
  isWrongLastSequence,
  JsCode,
  jsErrorCode,
} from "../nats/jetstream-errors.js";
import { mapLimit } from "../util/map-limit.js";
import {
  assertKvKey,
  isKvKey,
  type KeyValue,
  type KvChange,
  type KvEntry,
  KvFullError,
  type KvWatch,
} from "./key-value.js";
import { type BucketRef, filterFor, NatsWatch, type RawEntry, snapshot } from "./nats-kv-watch.js";

export interface NatsKeyValueOptions {
  /** Bucket name (letters, digits, - and _); the stream is `KV_<bucket>`. */
  bucket: string;
  /** Entries older than this are removed by the server (stream max_age). 0 keeps them forever. */
  maxAgeMs: number;
  /** Live keys the bucket holds; a new key beyond it is refused (KvFullError), updates still work. */
  maxEntries: number;
  maxValueBytes: number;
  /** 3 in a cluster (survives one server lost), 1 on a single server. */
  replicas: 1 | 3;
  /** Values kept per key. 1 is enough for every use here; above 1, `maxEntries` counts versions, not keys. */
  history?: number;
  /** Deadline of every call to the server. */
  timeoutMs?: number;
  /**
   * A delete leaves a marker that takes a slot until compacted; when the
   * bucket is full, markers older than this are purged to make room. Long
   * enough for any live watcher to have seen the marker; a watcher that was
   * away longer notices the key vanished when it resyncs.
   */
  tombstoneGraceMs?: number;
  logger?: Logger;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_TOMBSTONE_GRACE_MS = 60_000;
/** The server's dedupe window; KV writes carry no message id, so it only costs memory: keep it small. */
const DUPLICATE_WINDOW_MS = 10_000;
/**
 * Room for the headers a write carries (KV-Operation, the expected-revision
 * precondition) on top of the value: the stream's max_msg_size counts both,
 * while maxValueBytes bounds the value alone (checked here first, with the
 * same message as the embedded adapter).
 */
const HEADER_ALLOWANCE_BYTES = 512;
/** `entries` reads keys from the leader this many at a time. */
const ENTRY_READS_IN_FLIGHT = 16;

/**
 * The fleet KeyValue adapter: a NATS KV bucket (a JetStream stream with
 * one subject per key) on nats-server >= 2.9. Writes go through the stream
 * leader, and so do `get` and `entry` (no direct get), so `update` after
 * `entry` never starts from a stale revision. `keys`, `entries` and `watch`
 * read through an ephemeral consumer that 2.9 may place on any replica:
 * right after a server restarts they can lag until its replica catches up
 * (a watch never goes back in time; see NatsWatch).
 *
 * The bucket's stream is created here rather than by `Kvm.create`, because
 * the entry bound needs `max_msgs` with `discard: new`, which @nats-io/kv
 * does not expose. The result stays a standard KV bucket (`nats kv` reads it).
 */
export class NatsKeyValue implements KeyValue {
  readonly #watches = new Set<NatsWatch>();
  #compacting: Promise<number> | null = null;
  readonly #statuses: AsyncIterable<Status> & { stop?: () => void };

  private constructor(
    private readonly kv: KV,
    private readonly ref: BucketRef,
    private readonly options: NatsKeyValueOptions,
  ) {
    this.#statuses = ref.nc.status();
    void this.#resyncOnReconnect();
  }

  /** Creates the bucket, or binds to it and brings its limits to these options. */
  static async open(nc: NatsConnection, options: NatsKeyValueOptions): Promise<NatsKeyValue> {
    if (!/^[-\w]+$/.test(options.bucket)) {
      throw new Error(`invalid KV bucket name '${options.bucket}': use letters, digits, - and _`);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const js = jetstream(nc, { timeout: timeoutMs });
    const jsm = await js.jetstreamManager();
    const config = bucketConfig(options);
    await ensureStream(jsm, config);
    const kv = await new Kvm(js).open(options.bucket);
    const ref: BucketRef = {
      nc,
      js,
      jsm,
      stream: config.name,
      subjectPrefix: `$KV.${options.bucket}.`,
      timeoutMs,
      ...(options.logger ? { logger: options.logger } : {}),
    };
    return new NatsKeyValue(kv, ref, options);
  }

  async get(key: string): Promise<string | null> {
    return (await this.entry(key))?.value ?? null;
  }

  async entry(key: string): Promise<KvEntry | null> {
    if (!isKvKey(key)) return null;
    const e = await this.kv.get(key);
    if (e?.operation !== "PUT") return null;
    return { key, value: e.string(), revision: e.revision, updatedAt: e.created.getTime() };
  }

  /**
   * Asks the stream leader which keys have a message, then reads each one's
   * latest value from the leader. A consumer's listing (as `keys` uses) can
   * miss a key rewritten while it runs: the message it counted on is removed
   * by the rewrite. Callers list small sets (nodes, flags), so N reads are cheap.
   */
  async entries(prefix = ""): Promise<KvEntry[]> {
    const info = await this.ref.jsm.streams.info(this.ref.stream, {
      subjects_filter: filterFor(this.ref, prefix),
    });
    const keys = Object.keys(info.state.subjects ?? {})
      .map((subject) => subject.slice(this.ref.subjectPrefix.length))
      .filter((key) => key.startsWith(prefix));
    const read = await mapLimit(keys, ENTRY_READS_IN_FLIGHT, (key) => this.entry(key));
    return read.filter((e): e is KvEntry => e !== null).sort((a, b) => a.revision - b.revision);
  }

  async keys(prefix = ""): Promise<string[]> {
    const all = await snapshot(this.ref, prefix, true);
    return all.filter(isLive).map((e) => e.key);
  }

  async put(key: string, value: string): Promise<number> {
    this.#check(key, value);
    return this.#write(key, () => this.kv.put(key, value));
  }

  async create(key: string, value: string): Promise<number | null> {
    this.#check(key, value);
    // Expect "no message for this key"; if there is one, and it is a delete
    // marker, expect exactly that marker. Each step is one server-side
    // precondition, so of two racing creates only one can pass.
    let expected = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      const written = await this.#writeIf(key, () => this.kv.put(key, value, { previousSeq: expected }));
      if (written !== null) return written;
      const current = await this.kv.get(key);
      if (current?.operation === "PUT") return null;
      expected = current?.revision ?? 0;
    }
    return null;
  }

  async update(key: string, value: string, revision: number): Promise<number | null> {
    this.#check(key, value);
    if (!Number.isInteger(revision) || revision <= 0) return null;
    return this.#writeIf(key, () => this.kv.put(key, value, { previousSeq: revision }));
  }

  async delete(key: string): Promise<void> {
    assertKvKey(key);
    await this.kv.delete(key);
  }

  async watch(prefix: string, onChange: (change: KvChange) => void): Promise<KvWatch> {
    const watch = await NatsWatch.start(this.ref, prefix, onChange);
    this.#watches.add(watch);
    return {
      initialLoaded: watch.initialLoaded,
      stop: () => {
        this.#watches.delete(watch);
        watch.stop();
      },
    };
  }

  async close(): Promise<void> {
    this.#statuses.stop?.();
    for (const watch of this.#watches) watch.stop();
    this.#watches.clear();
  }

  /** After a reconnect every watch starts a fresh consumer: its old one may be on the server that went away. */
  async #resyncOnReconnect(): Promise<void> {
    try {
      for await (const status of this.#statuses) {
        if (status.type === "reconnect") for (const watch of this.#watches) watch.resync("reconnect");
      }
    } catch {
      // Ends with the connection.
    }
  }

  #check(key: string, value: string): void {
    assertKvKey(key);
    if (Buffer.byteLength(value) > this.options.maxValueBytes) {
      throw new KvFullError(`value of ${key} is larger than ${this.options.maxValueBytes} bytes`);
    }
  }

  /** Like #write, but a failed revision precondition is null instead of an error. */
  async #writeIf(key: string, write: () => Promise<number>): Promise<number | null> {
    try {
      return await this.#write(key, write);
    } catch (error) {
      if (isWrongLastSequence(error)) return null;
      throw error;
    }
  }

  /** Writes; when the bucket is full, compacts old delete markers once and tries again. */
  async #write(key: string, write: () => Promise<number>): Promise<number> {
    try {
      return await write();
    } catch (error) {
      if (!isStreamFull(error)) throw this.#mapError(key, error);
      if ((await this.#compactTombstones()) === 0) throw this.#mapError(key, error);
    }
    try {
      return await write();
    } catch (error) {
      throw this.#mapError(key, error);
    }
  }

  #mapError(key: string, error: unknown): unknown {
    if (isStreamFull(error)) {
      return new KvFullError(`the bucket holds its maximum of ${this.options.maxEntries} entries`, {
        cause: error,
      });
    }
    if (jsErrorCode(error) === JsCode.MessageTooLarge) {
      return new KvFullError(`value of ${key} is larger than ${this.options.maxValueBytes} bytes`, {
        cause: error,
      });
    }
    return error;
  }

  /** Purges delete markers older than the grace; one compaction at a time. Returns how many went. */
  #compactTombstones(): Promise<number> {
    this.#compacting ??= this.#purgeOldMarkers().finally(() => {
      this.#compacting = null;
    });
    return this.#compacting;
  }

  async #purgeOldMarkers(): Promise<number> {
    const graceMs = this.options.tombstoneGraceMs ?? DEFAULT_TOMBSTONE_GRACE_MS;
    const cutoff = Date.now() - graceMs;
    const markers = (await snapshot(this.ref, "", true)).filter(
      (e) => e.operation !== "PUT" && e.updatedAt <= cutoff,
    );
    for (const marker of markers) {
      // Up to and including the marker only: a write that came after it stays.
      await this.ref.jsm.streams.purge(this.ref.stream, {
        filter: `${this.ref.subjectPrefix}${marker.key}`,
        seq: marker.revision + 1,
      });
    }
    return markers.length;
  }
}

function isLive(e: RawEntry): boolean {
  return e.operation === "PUT";
}

type NewStream = Partial<StreamConfig> & { name: string };

function bucketConfig(options: NatsKeyValueOptions): NewStream {
  const history = options.history ?? 1;
  const maxAgeMs = Math.max(0, options.maxAgeMs);
  return {
    name: `KV_${options.bucket}`,
    subjects: [`$KV.${options.bucket}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    num_replicas: options.replicas,
    max_msgs_per_subject: history,
    max_msgs: options.maxEntries * history,
    max_bytes: -1,
    max_msg_size: options.maxValueBytes + HEADER_ALLOWANCE_BYTES,
    max_age: nanos(maxAgeMs),
    duplicate_window: nanos(maxAgeMs > 0 ? Math.min(maxAgeMs, DUPLICATE_WINDOW_MS) : DUPLICATE_WINDOW_MS),
    allow_rollup_hdrs: true,
    deny_delete: true,
    deny_purge: false,
    allow_direct: false,
  };
}

/** The limits a running bucket may be brought to without recreating it. */
const MUTABLE_LIMITS = [
  "max_msgs",
  "max_msgs_per_subject",
  "max_msg_size",
  "max_age",
  "duplicate_window",
  "num_replicas",
] as const;

async function ensureStream(jsm: JetStreamManager, config: NewStream): Promise<void> {
  let current: StreamConfig;
  try {
    current = (await jsm.streams.info(config.name)).config;
  } catch (error) {
    if (!isStreamNotFound(error)) throw error;
    await jsm.streams.add(config);
    return;
  }
  const changed = MUTABLE_LIMITS.filter((k) => current[k] !== config[k]);
  if (changed.length === 0) return;
  const update = Object.fromEntries(changed.map((k) => [k, config[k]]));
  try {
    await jsm.streams.update(config.name, update);
  } catch (error) {
    throw new Error(
      `KV bucket ${config.name} exists with other limits (${changed.join(", ")}) and the server refused to change them: ${(error as Error).message}; delete the bucket or align the config`,
      { cause: error },
    );
  }
}
