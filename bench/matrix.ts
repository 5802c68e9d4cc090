import type { BenchConfig } from "./config.js";
import { noisePct } from "./cpu.js";
import { describe, measure } from "./measure.js";
import { quietest } from "./quiet.js";
import type { RunningServer } from "./servers.js";
import type { Pair, Workload } from "./types.js";

export interface Servers {
  ceiling: RunningServer;
  imgfleet: RunningServer;
}

const otherCpu = (p: Pick<Pair, "ceiling" | "imgfleet">) =>
  Math.max(noisePct(p.ceiling.cpu), noisePct(p.imgfleet.cpu));

/** The ceiling, then imgfleet, back to back. */
async function measurePair(config: BenchConfig, servers: Servers, workload: Workload, concurrency: number) {
  const ceiling = await measure(config, servers.ceiling, workload, concurrency);
  process.stdout.write(`  ${describe(ceiling)}\n`);
  const imgfleet = await measure(config, servers.imgfleet, workload, concurrency);
  process.stdout.write(`  ${describe(imgfleet)}\n`);
  return { ceiling, imgfleet };
}

/** One pair, measured again while noisy (see quietest). */
async function quietestPair(config: BenchConfig, servers: Servers, workload: Workload, concurrency: number) {
  const measureOnce = () => measurePair(config, servers, workload, concurrency);
  const { best, attempts, noisy } = await quietest(config, measureOnce, otherCpu);
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
