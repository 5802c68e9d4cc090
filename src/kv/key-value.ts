/**
 * One change in a bucket, as a watcher sees it. `value` null means the key
 * was deleted (or expired, where the adapter can tell: see `KeyValue`).
 */
export interface KvChange {
  key: string;
  value: string | null;
  revision: number;
}

/** A live value with what compare-and-set and discovery need beside it. */
export interface KvEntry {
  key: string;
  value: string;
  /** Pass to `update` to write only if nobody wrote since. */
  revision: number;
  /** Epoch milliseconds of the write: the server's clock in a fleet, so compare with care across machines. */
  updatedAt: number;
}

export interface KvWatch {
  /** Resolves once every entry that existed when the watch began has been delivered. */
  readonly initialLoaded: Promise<void>;
  stop(): void;
}

/**
 * The KeyValue port: a bucket of string values (JSON by convention) with
 * watch and compare-and-set. Embedded: in memory. Fleet: a replicated NATS
 * KV bucket. The adapter owns its connections; callers see no NATS types.
 *
 * Revisions grow with every write to the bucket (not per key), so a watcher
 * can order changes across keys.
 *
 * Expiry is per bucket (max age), not per key, because nats-server 2.9 has
 * no per-key TTL (2.11). `get`, `entry`, `entries`, `keys` and `create`
 * treat an expired entry as absent in every adapter. Whether a *watcher* is
 * told of an expiry differs: the embedded adapter delivers `value: null`;
 * NATS 2.9 removes aged messages silently (no subject delete markers before
 * 2.11), so a NATS watcher is not told. Code that must notice an expiry
 * (discovery, leases) compares `updatedAt` with the bucket's max age or
 * lists `entries()` again; it never waits for a watch event.
 *
 * Left out on purpose: per-key TTL, history, transactions over several keys,
 * and any ordering guarantee between two watchers.
 */
export interface KeyValue {
  /** The live value, or null when absent, deleted or expired. */
  get(key: string): Promise<string | null>;
  /** The live value with its revision and write time, or null. */
  entry(key: string): Promise<KvEntry | null>;
  /** Every live entry whose key starts with `prefix`, in revision order. */
  entries(prefix?: string): Promise<KvEntry[]>;
  /** Returns the new revision; throws KvFullError when the bucket is at its bound. */
  put(key: string, value: string): Promise<number>;
  /**
   * Writes only if the key has no live value (absent, deleted or expired).
   * Returns the revision, or null when a live value exists. Of two
   * concurrent creates of one key, exactly one gets a revision.
   */
  create(key: string, value: string): Promise<number | null>;
  /**
   * Writes only if the key's latest revision is `revision` (taken from a
   * live value: `entry`, `entries`, `create`, `update`, `put` or a watch).
   * Returns the new revision, or null when the key moved on (written,
   * deleted or expired since). Of two updates from one revision, exactly one
   * succeeds.
   */
  update(key: string, value: string, revision: number): Promise<number | null>;
  delete(key: string): Promise<void>;
  keys(prefix?: string): Promise<string[]>;
  /**
   * Delivers the current value of every key under `prefix` (in revision
   * order), then each later change, in revision order, until stopped. A
   * deletion is delivered for keys the watcher had seen live. An adapter may
   * skip a value that was overwritten before the watcher read it (a NATS
   * bucket keeps one message per key), never the latest one: watchers build
   * state, not an audit trail.
   */
  watch(prefix: string, onChange: (change: KvChange) => void): Promise<KvWatch>;
  /** Stops every watcher; does not delete the bucket. */
  close(): Promise<void>;
}

export class KvFullError extends Error {
  override readonly name = "KvFullError";
}

/** Keys follow NATS KV's rules, so an embedded key is valid in a fleet too. */
export const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;

/** Throws the one message every adapter uses for a key NATS KV would reject. */
export function assertKvKey(key: string): void {
  if (!isKvKey(key)) {
    throw new Error(
      `invalid KV key '${key}': use letters, digits and - / _ = . (a dot not at either end nor doubled)`,
    );
  }
}

export function isKvKey(key: string): boolean {
  return KV_KEY.test(key) && !key.startsWith(".") && !key.endsWith(".") && !key.includes("..");
}
