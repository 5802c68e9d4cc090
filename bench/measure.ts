import { cpus } from "node:os";
import { type BenchConfig, corpusFile } from "./config.js";
import { waitQuiet, watchCpu } from "./cpu.js";
import { resizeUrl } from "./http.js";
import { runLoad, summarize } from "./load.js";
import { collectTimings } from "./request-log.js";
import { sampleRss } from "./rss.js";
import type { RunningServer } from "./servers.js";
import type { CpuShare, Measurement, Workload } from "./types.js";
import { describeUsage, usageAfterRun } from "./usage.js";

/** CPU milliseconds per successful response, from a share of all cores. */
function msPerOk(sharePct: number, okRps: number): number {
  return okRps > 0 ? Math.round(((sharePct / 100) * cpus().length * 10_000) / okRps) / 10 : Number.NaN;
}

function perRequest(cpu: CpuShare, okRps: number) {
  return { server: msPerOk(cpu.serverPct, okRps), serverMain: msPerOk(cpu.serverMainPct, okRps) };
}

/**
 * Warm-up, then one measured run: the server's process tree sampled for RSS,
 * the machine's CPU split, and (imgfleet) its request log's timings and its
 * usage pipeline, waited for until drained: the server is left quiet.
 */
export async function measure(
  config: BenchConfig,
  server: RunningServer,
  workload: Workload,
  concurrency: number,
): Promise<Measurement> {
  const url = resizeUrl(server, workload);
  const file = corpusFile(config, workload);
  await waitQuiet(server.pid);
  await runLoad(url, file, concurrency, config.warmupSeconds, server.headers);
  await waitQuiet(server.pid);
  const sampler = sampleRss(server.pid);
  const cpuWatch = watchCpu(server.pid);
  const log = collectTimings(server);
  const result = await runLoad(url, file, concurrency, config.seconds, server.headers).finally(() =>
    sampler.stop(),
  );
  const cpu = cpuWatch.stop();
  const rss = sampler.stop();
  const usage = server.name === "ceiling" ? undefined : await usageAfterRun(server);
  await waitQuiet(server.pid);
  const timings = log.stop();
  const load = summarize(result);
  const cpuMsPerOk = perRequest(cpu, load.okRps);
  const measured = { server: server.name, workload: workload.id, concurrency, load, rss, cpu, cpuMsPerOk };
  return server.name === "ceiling" ? measured : { ...measured, serverTimings: timings, usage };
}

const INDENT = "\n                ";

function split(m: Measurement): string {
  const t = m.serverTimings;
  if (!t) return "";
  const busy = t.processSumMs / (m.load.durationS * 1000);
  return [
    `${INDENT}p50 in imgfleet: auth ${t.auth.p50}, probe ${t.probe.p50}, queue ${t.queue.p50}, process ${t.process.p50}`,
    ` (worker cpu ${t.cpu.p50}), other ${t.other.p50}, total ${t.total.p50} ms;`,
    ` workers busy ${busy.toFixed(2)} on average; API process ${m.cpuMsPerOk.serverMain} ms cpu/request`,
    m.usage ? `${INDENT}${describeUsage(m.usage)}` : "",
  ].join("");
}

/** One line per measurement while the matrix runs. */
export function describe(m: Measurement): string {
  const { load, rss, cpu } = m;
  const flag = load.flagged ? `  !! ${load.flagged}` : "";
  const ops = `${load.okRps.toFixed(1).padStart(6)} ops/s  p50 ${load.latencyMs.p50} ms  p99 ${load.latencyMs.p99} ms`;
  const mem = `rss ${rss.peakMb} MB (${rss.perProcessMb.join(" + ")})`;
  const used = `cpu ${cpu.serverPct}% (${m.cpuMsPerOk.server} ms/request) other ${cpu.otherPct}% steal ${cpu.stealPct}%`;
  return `${m.server.padEnd(18)} ${ops}  ${mem}  ${used}${flag}${split(m)}`;
}
