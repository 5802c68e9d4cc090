/**
 * Upload bytes held in this process, bounded by a byte budget. A request
 * reserves its declared size before its body is read, so uploads in flight
 * and bytes waiting for a worker share one bound; at the bound the API
 * answers 503 instead of growing memory.
 */
export class StagingTable {
  readonly #maxBytes: number;
  /** Reserved size per key, and the bytes once they have arrived. */
  readonly #entries = new Map<string, { reserved: number; bytes?: Buffer }>();
  #reserved = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Claims room for an upload of `bytes`; false when it does not fit under the bound. */
  reserve(key: string, bytes: number): boolean {
    if (this.#entries.has(key)) throw new Error(`staging key ${key} is already reserved`);
    if (this.#reserved + bytes > this.#maxBytes) return false;
    this.#entries.set(key, { reserved: bytes });
    this.#reserved += bytes;
    return true;
  }

  /** Stores the arrived bytes under a reservation, shrinking it to their real size. */
  fill(key: string, bytes: Buffer): void {
    const entry = this.#entries.get(key);
    if (!entry) throw new Error(`staging key ${key} was not reserved`);
    if (bytes.length > entry.reserved)
      throw new Error(`staging key ${key}: ${bytes.length} bytes exceed the ${entry.reserved} reserved`);
    this.#reserved += bytes.length - entry.reserved;
    entry.reserved = bytes.length;
    entry.bytes = bytes;
  }

  get(key: string): Buffer | undefined {
    return this.#entries.get(key)?.bytes;
  }

  release(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#reserved -= entry.reserved;
  }

  /** Bytes reserved or held now. */
  get bytes(): number {
    return this.#reserved;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  get size(): number {
    return this.#entries.size;
  }
}
