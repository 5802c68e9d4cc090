import { setTimeout as sleep } from "node:timers/promises";
import { type BenchConfig, corpusFile } from "./config.js";
import { resizeUrl } from "./http.js";
import { runLoad, summarize } from "./load.js";
import { sampleRss } from "./rss.js";
import type { RunningServer } from "./servers.js";
import type { Measurement, Pair, Workload } from "./types.js";

/** Lets the previous load's last requests finish before the next phase starts. */
const SETTLE_MS = 1000;

export interface Servers {
  ceiling: RunningServer;
  imgfleet: RunningServer;
}

/** Warm-up, then one measured run with the server's process tree sampled for RSS. */
async function measure(
  config: BenchConfig,
  server: RunningServer,
  workload: Workload,
  concurrency: number,
): Promise<Measurement> {
  const url = resizeUrl(server, workload);
  const file = corpusFile(config, workload);
  await runLoad(url, file, concurrency, config.warmupSeconds);
  await sleep(SETTLE_MS);
  const sampler = sampleRss(server.pid);
  const result = await runLoad(url, file, concurrency, config.seconds).finally(() => sampler.stop());
  const rss = sampler.stop();
  await sleep(SETTLE_MS);
  return { server: server.name, workload: workload.id, concurrency, load: summarize(result), rss };
}

function describe(m: Measurement): string {
  const { load } = m;
  const flag = load.flagged ? `  !! ${load.flagged}` : "";
  return `${m.server.padEnd(8)} ${load.okRps.toFixed(1).padStart(7)} ops/s  p50 ${load.latencyMs.p50} ms  p99 ${load.latencyMs.p99} ms  rss ${m.rss.peakMb} MB${flag}`;
}

/** Every workload × concurrency: the ceiling, then imgfleet, back to back. */
export async function runMatrix(config: BenchConfig, servers: Servers): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for (const workload of config.workloads) {
    for (const concurrency of config.concurrencies) {
      process.stdout.write(`\n${workload.id} c${concurrency}\n`);
      const ceiling = await measure(config, servers.ceiling, workload, concurrency);
      process.stdout.write(`  ${describe(ceiling)}\n`);
      const imgfleet = await measure(config, servers.imgfleet, workload, concurrency);
      process.stdout.write(`  ${describe(imgfleet)}\n`);
      pairs.push({ workload: workload.id, concurrency, ceiling, imgfleet });
    }
  }
  return pairs;
}
