import { setTimeout as sleep } from "node:timers/promises";
import { type BenchConfig, corpusFile } from "./config.js";
import { watchCpu } from "./cpu.js";
import { resizeUrl } from "./http.js";
import { runLoad, summarize } from "./load.js";
import { collectTimings } from "./request-log.js";
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
  const cpuWatch = watchCpu(server.pid);
  const log = collectTimings(server);
  const result = await runLoad(url, file, concurrency, config.seconds).finally(() => sampler.stop());
  const cpu = cpuWatch.stop();
  const rss = sampler.stop();
  await sleep(SETTLE_MS);
  const timings = log.stop();
  const measured = {
    server: server.name,
    workload: workload.id,
    concurrency,
    load: summarize(result),
    rss,
    cpu,
  };
  return server.name === "imgfleet" ? { ...measured, serverTimings: timings } : measured;
}

function describe(m: Measurement): string {
  const { load } = m;
  const flag = load.flagged ? `  !! ${load.flagged}` : "";
  const cpu = `cpu server ${m.cpu.serverPct}% other ${m.cpu.otherPct}%`;
  const t = m.serverTimings;
  const split = t
    ? `\n           p50 in server: probe ${t.probe.p50}, queue ${t.queue.p50}, process ${t.process.p50} (cpu ${t.cpu.p50}), other ${t.other.p50}, total ${t.total.p50} ms`
    : "";
  return `${m.server.padEnd(8)} ${load.okRps.toFixed(1).padStart(7)} ops/s  p50 ${load.latencyMs.p50} ms  p99 ${load.latencyMs.p99} ms  rss ${m.rss.peakMb} MB (${m.rss.perProcessMb.join(" + ")})  ${cpu}${flag}${split}`;
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
