import type { Config } from "../config/schema.js";

/** Why bytes did not fit: the tenant's own share is used up, or the whole area is. */
export type StagingRefusal = "tenant-share" | "staging-full";

interface Entry {
  /** null: an open node's anonymous caller, bounded only by the whole area. */
  tenant: string | null;
  reserved: number;
  bytes?: Buffer;
}

/**
 * Upload bytes held in this process, bounded by a byte budget for the whole
 * node and a smaller share per tenant. A reservation starts empty and grows
 * as the upload's bytes arrive, so a client that declares a large body and
 * sends it slowly holds only what it has sent; uploads in flight and bytes
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

  /** Opens an empty reservation for one upload; `grow` adds its bytes as they arrive. */
  open(key: string, tenant: string | null): void {
    if (this.#entries.has(key)) throw new Error(`staging key ${key} is already reserved`);
    this.#entries.set(key, { tenant, reserved: 0 });
  }

  /** Whether `bytes` more for `tenant` would fit now; nothing is taken. */
  refusalFor(tenant: string | null, bytes: number): StagingRefusal | null {
    // The whole area first: a full node is the node's condition, whoever asks.
    if (this.#reserved + bytes > this.#maxBytes) return "staging-full";
    if (tenant !== null && this.bytesOf(tenant) + bytes > this.#tenantShareBytes) return "tenant-share";
    return null;
  }

  /** Adds `bytes` that arrived to a reservation; when they do not fit, takes nothing and says why. */
  grow(key: string, bytes: number): StagingRefusal | null {
    const entry = this.#entries.get(key);
    if (!entry) throw new Error(`staging key ${key} was not reserved`);
    const refusal = this.refusalFor(entry.tenant, bytes);
    if (refusal) return refusal;
    this.#add(entry, bytes);
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
