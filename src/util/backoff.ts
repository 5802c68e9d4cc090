/**
 * Exponential backoff with jitter: `baseMs × 2^(failures-1)`, capped at
 * `maxMs`, then spread over ±25% so that nodes failing together do not
 * retry in step.
 */
export function jitteredBackoffMs(failures: number, baseMs: number, maxMs: number): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
  return jittered(exponential, 0.25);
}

/** `ms` spread at random over ±`spread` (0.1 = ±10%), so that periodic work of many nodes does not fall in step. */
export function jittered(ms: number, spread: number): number {
  return ms * (1 - spread + Math.random() * 2 * spread);
}
