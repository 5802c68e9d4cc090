/**
 * Uploads held while their jobs wait or run, bounded by total bytes. At the
 * bound `put` refuses (the API answers 503) instead of growing memory.
 */
export class StagingTable {
  readonly #maxBytes: number;
  readonly #entries = new Map<string, Buffer>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** False when the bytes do not fit under the bound. */
  tryPut(key: string, bytes: Buffer): boolean {
    if (this.#bytes + bytes.length > this.#maxBytes) return false;
    this.delete(key);
    this.#entries.set(key, bytes);
    this.#bytes += bytes.length;
    return true;
  }

  get(key: string): Buffer | undefined {
    return this.#entries.get(key);
  }

  delete(key: string): void {
    const old = this.#entries.get(key);
    if (!old) return;
    this.#entries.delete(key);
    this.#bytes -= old.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  get size(): number {
    return this.#entries.size;
  }
}
