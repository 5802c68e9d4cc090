/** One change in a bucket, as a watcher sees it. `value` null means the key was deleted or expired. */
export interface KvChange {
  key: string;
  value: string | null;
  revision: number;
}

export interface KvWatch {
  /** Resolves once every entry that existed when the watch began has been delivered. */
  readonly initialLoaded: Promise<void>;
  stop(): void;
}

/**
 * The KeyValue port: a bucket of string values (JSON by convention) with
 * watch. Embedded: in memory. Fleet: a replicated NATS KV bucket. Expiry is
 * per bucket, not per key, because nats-server 2.9 has no per-key TTL.
 */
export interface KeyValue {
  get(key: string): Promise<string | null>;
  /** Returns the new revision; throws KvFullError when the bucket is at its bound. */
  put(key: string, value: string): Promise<number>;
  delete(key: string): Promise<void>;
  keys(prefix?: string): Promise<string[]>;
  /**
   * Delivers the current value of every key under `prefix`, then each
   * later change, in revision order, until stopped.
   */
  watch(prefix: string, onChange: (change: KvChange) => void): Promise<KvWatch>;
  close(): Promise<void>;
}

export class KvFullError extends Error {
  override readonly name = "KvFullError";
}

/** Keys follow NATS KV's rules, so an embedded key is valid in a fleet too. */
export const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;
