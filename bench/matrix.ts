import type { BenchConfig } from "./config.js";
import { describe, measure } from "./measure.js";
import type { RunningServer } from "./servers.js";
import type { Pair, Workload } from "./types.js";

export interface Servers {
  ceiling: RunningServer;
  imgfleet: RunningServer;
}

const otherCpu = (p: Pick<Pair, "ceiling" | "imgfleet">) =>
  Math.max(p.ceiling.cpu.otherPct, p.imgfleet.cpu.otherPct);

/** The ceiling, then imgfleet, back to back. */
async function measurePair(config: BenchConfig, servers: Servers, workload: Workload, concurrency: number) {
  const ceiling = await measure(config, servers.ceiling, workload, concurrency);
  process.stdout.write(`  ${describe(ceiling)}\n`);
  const imgfleet = await measure(config, servers.imgfleet, workload, concurrency);
  process.stdout.write(`  ${describe(imgfleet)}\n`);
  return { ceiling, imgfleet };
}

/**
 * One pair, measured again (up to `retries` times) while processes outside
 * the benchmark take more than `maxOtherCpuPct` of the CPU; the quietest is kept.
 */
async function quietestPair(config: BenchConfig, servers: Servers, workload: Workload, concurrency: number) {
  let best = await measurePair(config, servers, workload, concurrency);
  let attempts = 1;
  while (otherCpu(best) > config.maxOtherCpuPct && attempts <= config.retries) {
    process.stdout.write(`  noisy (other processes used ${otherCpu(best)}% CPU): measuring again\n`);
    const next = await measurePair(config, servers, workload, concurrency);
    attempts++;
    if (otherCpu(next) < otherCpu(best)) best = next;
  }
  const noisy = otherCpu(best) > config.maxOtherCpuPct ? `other processes used ${otherCpu(best)}% CPU` : null;
  return { ...best, attempts, noisy };
}

/** Every workload × concurrency. */
export async function runMatrix(config: BenchConfig, servers: Servers): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for (const workload of config.workloads) {
    for (const concurrency of config.concurrencies) {
      process.stdout.write(`\n${workload.id} c${concurrency}\n`);
      const pair = await quietestPair(config, servers, workload, concurrency);
      pairs.push({ workload: workload.id, concurrency, ...pair });
    }
  }
  return pairs;
}
