/**
 * Exponential backoff with jitter: `baseMs × 2^(failures-1)`, capped at
 * `maxMs`, then spread over ±25% so that nodes failing together do not
 * retry in step.
 */
export function jitteredBackoffMs(failures: number, baseMs: number, maxMs: number): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
  return exponential * (0.75 + Math.random() * 0.5);
}
