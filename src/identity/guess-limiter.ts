/**
 * Subjects (addresses, key ids) tracked at once, per kind. Each entry is
 * ~100 bytes, so a table stays under ~1 MB; when full, the subject seen
 * least recently is dropped (it starts again with a full budget, which
 * costs an attacker nothing they could not get from a fresh address).
 */
export const MAX_TRACKED_SUBJECTS = 10_000;
/** The first pause once a subject's budget is spent, doubled per further failure up to the cap. */
export const FIRST_BACKOFF_MS = 1_000;
export const MAX_BACKOFF_MS = 15 * 60_000;
/** Retry-After is spread over up to this much more than the pause, so refused clients do not return in step. */
const JITTER = 0.2;

export interface GuessLimits {
  /** Failed attempts per subject per minute before backoff (a bucket of this size, refilled over a minute). */
  failuresPerMinute: number;
  firstBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Entry {
  tokens: number;
  at: number;
  /** Failures beyond the budget since the budget was last full: the backoff's exponent. */
  strikes: number;
  /** Until when a further failure is refused outright. */
  blockedUntil: number;
}

/** What `fail` decided: 0 when still within budget, else how long the subjects are in backoff. */
export interface Backoff {
  blockedMs: number;
  /** The retry hint for a refused attempt: the pause with jitter, whole seconds, at least 1. */
  retryAfterS: number;
  /** Which kind of subject is in backoff (the longest), for the answer's detail and metrics. */
  by: "address" | "key";
}

/**
 * Failed authentication attempts, per client address and per key id, with
 * exponential backoff (capped) once a subject's budget is spent. Only
 * failures are counted and only failures are refused: the caller checks
 * every credential, and a correct one is accepted whatever the state here,
 * so nobody can lock a key's holder out by failing on purpose.
 */
export class GuessLimiter {
  readonly #addresses: BackoffTable;
  readonly #keys: BackoffTable;

  constructor(
    limits: GuessLimits,
    private readonly now: () => number = Date.now,
    maxSubjects = MAX_TRACKED_SUBJECTS,
    private readonly random: () => number = Math.random,
  ) {
    // Two tables, so spraying made-up key ids cannot evict the addresses under watch (or the reverse).
    this.#addresses = new BackoffTable(limits, maxSubjects);
    this.#keys = new BackoffTable(limits, maxSubjects);
  }

  /** Records one failed attempt; the backoff it puts either subject in (blockedMs 0: within budget). */
  fail(subjects: { address?: string | undefined; keyId?: string | undefined }): Backoff {
    const now = this.now();
    const byAddress = subjects.address === undefined ? 0 : this.#addresses.fail(subjects.address, now);
    const byKey = subjects.keyId === undefined ? 0 : this.#keys.fail(subjects.keyId, now);
    const blockedMs = Math.max(byAddress, byKey);
    const retryAfterS = Math.max(1, Math.ceil((blockedMs * (1 + JITTER * this.random())) / 1000));
    return { blockedMs, retryAfterS, by: byKey > byAddress ? "key" : "address" };
  }

  get size(): { addresses: number; keys: number } {
    return { addresses: this.#addresses.size, keys: this.#keys.size };
  }
}

class BackoffTable {
  readonly #entries = new Map<string, Entry>();
  readonly #budget: number;
  readonly #firstMs: number;
  readonly #maxMs: number;

  constructor(
    limits: GuessLimits,
    private readonly maxSubjects: number,
  ) {
    this.#budget = Math.max(1, limits.failuresPerMinute);
    this.#firstMs = limits.firstBackoffMs ?? FIRST_BACKOFF_MS;
    this.#maxMs = limits.maxBackoffMs ?? MAX_BACKOFF_MS;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** One failure of `subject` at `now`: ms it is now blocked for (0 within budget). */
  fail(subject: string, now: number): number {
    const entry = this.#refilled(subject, now);
    // A full budget means a quiet spell since the last failure: the backoff starts over.
    if (entry.tokens >= this.#budget) entry.strikes = 0;
    const withinBudget = entry.tokens >= 1 && now >= entry.blockedUntil;
    // Failures in backoff spend too (down to a debt of one budget), so a steady stream never refills it.
    entry.tokens = Math.max(-this.#budget, entry.tokens - 1);
    if (withinBudget) return 0;
    entry.strikes += 1;
    const pause = Math.min(this.#maxMs, this.#firstMs * 2 ** Math.min(entry.strikes - 1, 40));
    entry.blockedUntil = Math.max(entry.blockedUntil, now + pause);
    return entry.blockedUntil - now;
  }

  #refilled(subject: string, now: number): Entry {
    const previous = this.#entries.get(subject);
    const refillPerMs = this.#budget / 60_000;
    const entry: Entry = previous
      ? {
          ...previous,
          tokens: Math.min(this.#budget, previous.tokens + (now - previous.at) * refillPerMs),
          at: now,
        }
      : { tokens: this.#budget, at: now, strikes: 0, blockedUntil: 0 };
    // Re-inserting keeps the Map in least-recently-seen order for eviction.
    this.#entries.delete(subject);
    this.#entries.set(subject, entry);
    while (this.#entries.size > this.maxSubjects) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return entry;
  }
}
