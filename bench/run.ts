/**
 * `npm run bench`: imgfleet against the ceiling (a bare node:http + sharp
 * server) on three workloads at fixed concurrencies, plus what the process
 * boundary costs and what sharp alone does. See bench/README.md.
 */
import { loadavg } from "node:os";
import { boundaryCost } from "./boundary.js";
import { type BenchConfig, corpusFile, loadConfig, WORKLOADS } from "./config.js";
import { checkWorkload } from "./http.js";
import { sharpRate } from "./inprocess.js";
import { runMatrix, type Servers } from "./matrix.js";
import { installCleanup, stopAll } from "./procs.js";
import { boundaryReport, sharpRateReport, table, targetsReport } from "./report.js";
import { machineInfo, settings, writeResults } from "./results.js";
import { startCeiling, startImgfleet } from "./servers.js";
import { checkTargets } from "./targets.js";
import type { Workload } from "./types.js";

const say = (text: string) => process.stdout.write(`${text}\n`);
const W1 = WORKLOADS[0] as Workload;

function parsedLines(lines: string[]): unknown[] {
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as unknown];
    } catch {
      return [line];
    }
  });
}

async function startServers(config: BenchConfig): Promise<Servers> {
  const [ceiling, imgfleet] = await Promise.all([startCeiling(), startImgfleet()]);
  say(`ceiling  pid ${ceiling.pid} at ${ceiling.url}`);
  say(`imgfleet pid ${imgfleet.pid} at ${imgfleet.url}`);
  const servers = { ceiling, imgfleet };
  for (const workload of config.workloads) {
    await checkWorkload(ceiling, workload, corpusFile(config, workload));
    await checkWorkload(imgfleet, workload, corpusFile(config, workload));
  }
  return servers;
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const config = loadConfig(process.argv.slice(2));
  const machine = machineInfo();
  say(`imgfleet bench: ${machine.cpus} cpus, node ${machine.node}, sharp ${machine.sharp.sharp}`);
  say(
    `  ${config.seconds} s per measurement after ${config.warmupSeconds} s warm-up; corpus ${config.corpusDir}`,
  );
  if ((loadavg()[0] ?? 0) > 0.5)
    say(`  WARNING: load average ${loadavg()[0]?.toFixed(2)} at start; numbers may be noisy`);
  const servers = await startServers(config);
  const imgfleetStartup = parsedLines(servers.imgfleet.startupLines);
  const pairs = await runMatrix(config, servers);
  const w1File = corpusFile(config, W1);
  const inProcessSeq = await sharpRate(w1File, W1.query, 1, 60, config.boundaryRequests);
  const boundary = await boundaryCost(
    servers.imgfleet,
    W1,
    w1File,
    config.boundaryRequests,
    inProcessSeq.latencyMs,
  );
  const imgfleetLogLines = servers.imgfleet.stdoutLines();
  await stopAll();
  const rate = await sharpRate(w1File, W1.query, 4, config.sharpSeconds);
  const checks = checkTargets(pairs);
  say(
    `\n${table(pairs)}\n\n${boundaryReport(boundary)}\n\n${sharpRateReport(rate)}\n\n${targetsReport(checks)}`,
  );
  const path = writeResults(
    {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: { ...machine, loadAvgAtEnd: loadavg() },
      settings: settings(config),
      imgfleet: { startup: imgfleetStartup, logLines: imgfleetLogLines },
      pairs,
      boundary,
      sharpInProcess: { rate, sequential: inProcessSeq },
      targets: checks,
    },
    startedAt,
  );
  say(`\nresults: ${path}`);
  const missed = checks.some((c) => c.status === "MISS");
  if (missed && !config.strict) say("(targets missed; exiting 0 because --strict was not given)");
  return missed && config.strict ? 1 : 0;
}

installCleanup();
main()
  .then((code) => process.exit(code))
  .catch(async (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    await stopAll();
    process.exit(1);
  });
