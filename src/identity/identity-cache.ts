import type { KeyValue, KvChange, KvWatch } from "../kv/key-value.js";
import type { IdentityMetrics } from "../metrics/identity-metrics.js";
import { LOG_ONLY_WIRE, type WireRejections } from "../wire/wire.js";
import { decodePublishedValue, KEY_PREFIX, TENANT_PREFIX } from "./identity-kv.js";
import type { KeyRecord, TenantRecord } from "./model.js";

const RECENT_DELAYS = 1024;

/**
 * The data plane: every key and tenant, in memory, kept current by watching
 * the identity bucket. Authentication reads only this, never the database,
 * so it keeps working (on its last snapshot) when the database is down.
 */
export class IdentityCache {
  readonly #keys = new Map<string, KeyRecord>();
  readonly #tenants = new Map<string, TenantRecord>();
  /** The most recent propagation delays, for percentiles in the admin API (the histogram is in /metrics). */
  readonly #delays: number[] = [];
  #watch: KvWatch | undefined;
  #loaded = false;

  constructor(
    private readonly kv: KeyValue,
    private readonly metrics: IdentityMetrics,
    private readonly wire: WireRejections = LOG_ONLY_WIRE,
  ) {}

  /** Resolves once the bucket's current contents are loaded. */
  async start(): Promise<void> {
    this.#watch = await this.kv.watch("", (change) => this.#apply(change));
    await this.#watch.initialLoaded;
    this.#loaded = true;
    this.#count();
  }

  stop(): void {
    this.#watch?.stop();
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  key(id: string): KeyRecord | undefined {
    return this.#keys.get(id);
  }

  tenant(id: string): TenantRecord | undefined {
    return this.#tenants.get(id);
  }

  #apply(change: KvChange): void {
    if (change.key.startsWith(KEY_PREFIX)) {
      this.#set(this.#keys, change.key, KEY_PREFIX, change.value);
    } else if (change.key.startsWith(TENANT_PREFIX)) {
      this.#set(this.#tenants, change.key, TENANT_PREFIX, change.value);
    }
  }

  #set<T>(map: Map<string, T>, key: string, prefix: string, raw: string | null): void {
    const id = key.slice(prefix.length);
    const read = raw === null ? null : decodePublishedValue(raw, key, "identity");
    if (read === null || !read.ok) {
      // Deleted, or refused: forgotten either way, so a revocation written in a newer shape still locks the key out.
      map.delete(id);
      if (read) this.wire.reject(read.rejection);
    } else {
      map.set(id, read.value.record as T);
      const { committedAt } = read.value;
      if (committedAt !== null && this.#loaded) this.#observe(Date.now() - committedAt);
    }
    if (this.#loaded) this.#count();
  }

  stats() {
    const sorted = [...this.#delays].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null;
    return {
      keys: this.#keys.size,
      tenants: this.#tenants.size,
      propagationMs: { samples: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? null },
    };
  }

  #observe(delayMs: number): void {
    const ms = Math.max(0, delayMs);
    this.metrics.propagation.observe(ms / 1000);
    if (this.#delays.length >= RECENT_DELAYS) this.#delays.shift();
    this.#delays.push(ms);
  }

  #count(): void {
    this.metrics.cachedKeys.set(this.#keys.size);
    this.metrics.cachedTenants.set(this.#tenants.size);
  }
}
