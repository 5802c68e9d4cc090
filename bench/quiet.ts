import type { BenchConfig } from "./config.js";

const lost = (pct: number) => `other processes and steal took ${pct}% CPU`;

export interface Quietest<T> {
  best: T;
  /** Measurements made, including those discarded as noisy. */
  attempts: number;
  /** Set when even the kept attempt ran beside too much foreign CPU. */
  noisy: string | null;
}

/**
 * Measures again (up to `retries` times) while processes outside the
 * benchmark (and steal) take more than `maxOtherCpuPct` of the CPU; the
 * quietest is kept. `otherCpu` is the worst such share during one attempt.
 */
export async function quietest<T>(
  config: BenchConfig,
  measureOnce: () => Promise<T>,
  otherCpu: (attempt: T) => number,
): Promise<Quietest<T>> {
  let best = await measureOnce();
  let attempts = 1;
  while (otherCpu(best) > config.maxOtherCpuPct && attempts <= config.retries) {
    process.stdout.write(`  noisy (${lost(otherCpu(best))}): measuring again\n`);
    const next = await measureOnce();
    attempts++;
    if (otherCpu(next) < otherCpu(best)) best = next;
  }
  const noisy = otherCpu(best) > config.maxOtherCpuPct ? lost(otherCpu(best)) : null;
  return { best, attempts, noisy };
}
