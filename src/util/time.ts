import { setTimeout as sleep } from "node:timers/promises";

/** Milliseconds since an arbitrary origin, monotonic. */
export function nowMs(): number {
  return performance.now();
}

/**
 * Full-jitter exponential backoff: a random delay in [0, min(cap, base·2^attempt)].
 * Jitter keeps a fleet of retrying clients from moving in lockstep.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.random() * ceiling;
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, signal ? { signal } : undefined);
}

/** Round to 0.1 ms, the precision of Server-Timing and log breakdowns. */
export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
