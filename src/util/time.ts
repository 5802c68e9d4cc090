import { setTimeout as sleep } from "node:timers/promises";

/** Milliseconds since an arbitrary origin, monotonic. */
export function nowMs(): number {
  return performance.now();
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, signal ? { signal } : undefined);
}

/** Round to 0.1 ms, the precision of Server-Timing and log breakdowns. */
export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
