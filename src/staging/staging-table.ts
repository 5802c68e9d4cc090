import type { Config } from "../config/schema.js";

/** An upload's upfront reservation is at most this fraction (1/n) of the area. */
export const UPFRONT_PARTS = 64;

/** Why bytes did not fit: the tenant's own share is used up, or the whole area is. */
export type StagingRefusal = "tenant-share" | "staging-full";

interface Entry {
  /** null: an open node's anonymous caller, bounded only by the whole area. */
  tenant: string | null;
  reserved: number;
  /** Bytes of the upload that have arrived; the reservation covers at least these. */
  received: number;
  bytes?: Buffer;
}

/**
 * Upload bytes held in this process, bounded by a byte budget for the whole
 * node and a smaller share per tenant. A reservation starts with at most a
 * small upfront part of the declared length and grows as the upload's bytes
 * arrive past it, so a client that declares a large body and sends it slowly
 * holds little more than what it has sent, while a flood of uploads is
 * refused before their bodies are read (were every one admitted empty, each
 * would be read in part and then refused: memory churned for nothing);
 * uploads in flight and bytes
 * waiting for a worker share the bounds. At a bound the API refuses the
 * upload instead of growing memory.
 */
export class StagingTable {
  readonly #maxBytes: number;
  readonly #tenantShareBytes: number;
  readonly #entries = new Map<string, Entry>();
  /** Bytes held per tenant, for the tenants holding any. */
  readonly #byTenant = new Map<string, number>();
  #reserved = 0;

  /** `tenantShareBytes` defaults to the whole area: no per-tenant bound. */
  constructor(maxBytes: number, tenantShareBytes = maxBytes) {
    this.#maxBytes = maxBytes;
    this.#tenantShareBytes = Math.min(tenantShareBytes, maxBytes);
  }

  /**
   * The node's table: `staging.tenantShare` of the area per tenant, but never
   * less than one upload of the largest size, so every tenant can always send
   * an image the node accepts.
   */
  static fromConfig(config: Pick<Config, "staging" | "limits">): StagingTable {
    const { maxBytes, tenantShare } = config.staging;
    return new StagingTable(
      maxBytes,
      Math.max(Math.floor(maxBytes * tenantShare), config.limits.maxInputBytes),
    );
  }

  /**
   * Opens a reservation of `upfront` bytes for one upload (the caller checked
   * they fit); `grow` adds its bytes as they arrive.
   */
  open(key: string, tenant: string | null, upfront = 0): void {
    if (this.#entries.has(key)) throw new Error(`staging key ${key} is already reserved`);
    const entry = { tenant, reserved: 0, received: 0 };
    this.#entries.set(key, entry);
    this.#add(entry, upfront);
  }

  /**
   * What an upload declaring `declared` bytes reserves before its first byte:
   * a 64th of the area at most, so that a burst is refused before its bodies
   * are read, yet a client trickling a large declared body holds little more
   * than it sent (and only until the upload rate floor cuts it off).
   */
  upfrontFor(declared: number): number {
    return Math.min(declared, Math.floor(this.#maxBytes / UPFRONT_PARTS));
  }

  /** Whether `bytes` more for `tenant` would fit now; nothing is taken. */
  refusalFor(tenant: string | null, bytes: number): StagingRefusal | null {
    // The whole area first: a full node is the node's condition, whoever asks.
    if (this.#reserved + bytes > this.#maxBytes) return "staging-full";
    if (tenant !== null && this.bytesOf(tenant) + bytes > this.#tenantShareBytes) return "tenant-share";
    return null;
  }

  /**
   * Counts `bytes` that arrived for an upload, growing its reservation past
   * what it already covers; when they do not fit, takes nothing and says why.
   */
  grow(key: string, bytes: number): StagingRefusal | null {
    const entry = this.#entries.get(key);
    if (!entry) throw new Error(`staging key ${key} was not reserved`);
    const more = Math.max(0, entry.received + bytes - entry.reserved);
    const refusal = more > 0 ? this.refusalFor(entry.tenant, more) : null;
    if (refusal) return refusal;
    entry.received += bytes;
    this.#add(entry, more);
    return null;
  }

  /** Opens a reservation of `bytes` at once; false (and nothing reserved) when it does not fit. */
  reserve(key: string, bytes: number, tenant: string | null = null): boolean {
    this.open(key, tenant);
    if (this.grow(key, bytes) === null) return true;
    this.#entries.delete(key);
    return false;
  }

  /** Stores the arrived bytes under a reservation, shrinking it to their real size. */
  fill(key: string, bytes: Buffer): void {
    const entry = this.#entries.get(key);
    if (!entry) throw new Error(`staging key ${key} was not reserved`);
    if (bytes.length > entry.reserved)
      throw new Error(`staging key ${key}: ${bytes.length} bytes exceed the ${entry.reserved} reserved`);
    this.#add(entry, bytes.length - entry.reserved);
    entry.bytes = bytes;
  }

  get(key: string): Buffer | undefined {
    return this.#entries.get(key)?.bytes;
  }

  release(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#add(entry, -entry.reserved);
    this.#entries.delete(key);
  }

  #add(entry: Entry, bytes: number): void {
    entry.reserved += bytes;
    this.#reserved += bytes;
    if (entry.tenant === null) return;
    const held = (this.#byTenant.get(entry.tenant) ?? 0) + bytes;
    if (held > 0) this.#byTenant.set(entry.tenant, held);
    else this.#byTenant.delete(entry.tenant);
  }

  /** Bytes reserved or held now. */
  get bytes(): number {
    return this.#reserved;
  }

  /** Bytes one tenant holds now. */
  bytesOf(tenant: string): number {
    return this.#byTenant.get(tenant) ?? 0;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** The most one tenant may hold. */
  get tenantShareBytes(): number {
    return this.#tenantShareBytes;
  }

  get size(): number {
    return this.#entries.size;
  }
}
