/**
 * Completions per second over a sliding window, to tell a rejected client
 * when the queue will have room again (Retry-After).
 */
export class DrainRate {
  readonly #windowMs: number;
  readonly #stamps: number[] = [];
  /** Bounded: one stamp per completion in the window, at most this many. */
  static readonly MAX_STAMPS = 4096;

  constructor(windowMs = 10_000) {
    this.#windowMs = windowMs;
  }

  record(now = Date.now()): void {
    this.#stamps.push(now);
    if (this.#stamps.length > DrainRate.MAX_STAMPS) this.#stamps.shift();
  }

  perSecond(now = Date.now()): number {
    while (this.#stamps.length > 0 && (this.#stamps[0] as number) < now - this.#windowMs)
      this.#stamps.shift();
    return this.#stamps.length / (this.#windowMs / 1000);
  }

  /** Seconds until `waiting` jobs have drained at the current rate, clamped to [1, 60]. */
  retryAfterS(waiting: number, now = Date.now()): number {
    const rate = this.perSecond(now);
    if (rate <= 0) return 1;
    return Math.min(60, Math.max(1, Math.ceil(waiting / rate)));
  }
}
