/**
 * Client addresses tracked at once. Each entry is ~100 bytes, so the table
 * stays under ~1 MB; when full, the address seen least recently is dropped
 * (it starts again with a full bucket, which costs an attacker nothing they
 * could not get from a fresh address anyway).
 */
export const MAX_TRACKED_ADDRESSES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Sign-in attempts per client address: a token bucket of `perMinute`
 * attempts, refilled evenly over a minute. Successful sign-ins count too,
 * so a valid key cannot be used to reset a guessing budget.
 */
export class SignInLimiter {
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = MAX_TRACKED_ADDRESSES,
  ) {}

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one attempt; returns 0 when allowed, else the seconds until the next attempt is. */
  take(address: string): number {
    const now = this.now();
    const refillPerMs = this.perMinute / 60_000;
    const previous = this.#buckets.get(address);
    const tokens = previous
      ? Math.min(this.perMinute, previous.tokens + (now - previous.at) * refillPerMs)
      : this.perMinute;
    // Re-inserting keeps the Map in least-recently-seen order for eviction.
    this.#buckets.delete(address);
    if (tokens < 1) {
      this.#buckets.set(address, { tokens, at: now });
      return Math.max(1, Math.ceil((1 - tokens) / refillPerMs / 1000));
    }
    this.#buckets.set(address, { tokens: tokens - 1, at: now });
    while (this.#buckets.size > this.maxAddresses) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest === undefined) break;
      this.#buckets.delete(oldest);
    }
    return 0;
  }
}
