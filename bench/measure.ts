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

/** What a measurement counts as the server: its own tree, or the set it names (the fleet). */
const processesOf = (server: RunningServer) => server.processes ?? server.pid;

/**
 * Warm-up, then one measured run: the server's process tree (or trees)
 * sampled for RSS, the machine's CPU split, and (imgfleet) its request log's
 * timings and its usage pipeline, waited for until drained: the server is
 * left quiet.
 */
export async function measure(
  config: BenchConfig,
  server: RunningServer,
  workload: Workload,
  concurrency: number,
): Promise<Measurement> {
  const url = resizeUrl(server, workload);
  const file = corpusFile(config, workload);
  const processes = processesOf(server);
  const quiet = () => waitQuiet(processes, 250, server.quietTicks ?? 3);
  await quiet();
  await runLoad(url, file, concurrency, config.warmupSeconds, server.headers);
  await quiet();
  const sampler = sampleRss(processes);
  const cpuWatch = watchCpu(processes);
  const log = collectTimings(server);
  const startedAt = Date.now();
  const result = await runLoad(url, file, concurrency, config.seconds, server.headers).finally(() =>
    sampler.stop(),
  );
  const endedAt = Date.now();
  const cpu = cpuWatch.stop();
  const rss = sampler.stop();
  const drain = server.usageAfterRun ?? (() => usageAfterRun(server));
  const usage = server.name === "ceiling" ? undefined : await drain();
  await quiet();
  const timings = log.stop();
  const load = summarize(result);
  const cpuMsPerOk = perRequest(cpu, load.okRps);
  const run = { startedAt, endedAt };
  const measured = {
    server: server.name,
    workload: workload.id,
    concurrency,
    load,
    rss,
    cpu,
    cpuMsPerOk,
    run,
  };
  return server.name === "ceiling" ? measured : { ...measured, serverTimings: timings, usage };
}

const INDENT = "\n                ";

/** `name share%`, largest first, those under 0.5% left out. */
const byShare = (shares: Record<string, number>) =>
  Object.entries(shares)
    .filter(([, pct]) => pct >= 0.5)
    .sort((a, b) => b[1] - a[1])
    .map(([name, pct]) => `${name} ${pct}%`)
    .join(", ");

function split(m: Measurement): string {
  const t = m.serverTimings;
  if (!t) return "";
  const busy = t.processSumMs / (m.load.durationS * 1000);
  return [
    `${INDENT}p50 in imgfleet: auth ${t.auth.p50}, probe ${t.probe.p50}, queue ${t.queue.p50}, process ${t.process.p50}`,
    ` (worker cpu ${t.cpu.p50}), other ${t.other.p50}, total ${t.total.p50} ms;`,
    ` workers busy ${busy.toFixed(2)} on average; API process ${m.cpuMsPerOk.serverMain} ms cpu/request`,
    m.usage ? `${INDENT}${describeUsage(m.usage)}` : "",
    m.cpu.perRootPct ? `${INDENT}cpu by process (with its children): ${byShare(m.cpu.perRootPct)}` : "",
    m.rss.pssAtEndMb ? `; PSS at end ${m.rss.pssAtEndMb} MB` : "",
  ].join("");
}

/** One line per measurement while the matrix runs. */
export function describe(m: Measurement): string {
  const { load, rss, cpu } = m;
  const flag = load.flagged ? `  !! ${load.flagged}` : "";
  const ops = `${load.okRps.toFixed(1).padStart(6)} ops/s  p50 ${load.latencyMs.p50} ms  p99 ${load.latencyMs.p99} ms`;
  const parts = rss.perRootMb ? Object.entries(rss.perRootMb).map(([k, v]) => `${k} ${v}`) : rss.perProcessMb;
  const mem = `rss ${rss.peakMb} MB (${parts.join(" + ")})`;
  const used = `cpu ${cpu.serverPct}% (${m.cpuMsPerOk.server} ms/request) other ${cpu.otherPct}% steal ${cpu.stealPct}%`;
  return `${m.server.padEnd(18)} ${ops}  ${mem}  ${used}${flag}${split(m)}`;
}
