/**
 * `npm run bench`: imgfleet against the ceiling (a bare node:http + sharp
 * server) on three workloads at fixed concurrencies, plus what the process
 * boundary costs and what sharp alone does. See bench/README.md.
 */
import { loadavg } from "node:os";
import { boundaryCost } from "./boundary.js";
import { type BenchConfig, corpusFile, loadConfig, WORKLOADS } from "./config.js";
import { watchCpu } from "./cpu.js";
import { checkWorkload } from "./http.js";
import { sharpRate } from "./inprocess.js";
import { runMatrix, type Servers } from "./matrix.js";
import { installCleanup, stopAll, wasInterrupted } from "./procs.js";
import { boundaryReport, cpuTable, sharpRateReport, table, targetsReport } from "./report.js";
import { machineInfo, settings, sourceInfo, writeResults } from "./results.js";
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

/** Both servers up, and both answering every workload with the expected JPEG. */
async function startServers(config: BenchConfig): Promise<Servers> {
  const [ceiling, imgfleet] = await Promise.all([startCeiling(), startImgfleet()]);
  say(`ceiling  pid ${ceiling.pid} at ${ceiling.url}`);
  say(`imgfleet pid ${imgfleet.pid} at ${imgfleet.url}`);
  for (const workload of config.workloads) {
    await checkWorkload(ceiling, workload, corpusFile(config, workload));
    await checkWorkload(imgfleet, workload, corpusFile(config, workload));
  }
  return { ceiling, imgfleet };
}

/** Runs `step` and reports how much CPU processes outside the benchmark took meanwhile. */
async function watched<T>(config: BenchConfig, what: string, step: () => Promise<T>) {
  const watch = watchCpu(process.pid);
  const value = await step();
  const { otherPct } = watch.stop();
  if (otherPct > config.maxOtherCpuPct) say(`  NOISY: other processes used ${otherPct}% CPU during ${what}`);
  return { value, otherCpuPct: otherPct };
}

/** The process-boundary cost, with the same op done in-process for comparison. */
async function boundaryPhase(config: BenchConfig, servers: Servers) {
  const file = corpusFile(config, W1);
  const sequential = await sharpRate(file, W1.query, 1, 60, config.boundaryRequests);
  const inProcess = sequential.latencyMs;
  return boundaryCost(servers.imgfleet, W1, file, config.boundaryRequests, inProcess);
}

/** Everything measured, servers stopped at the end. */
async function measureAll(config: BenchConfig) {
  const servers = await startServers(config);
  const pairs = await runMatrix(config, servers);
  say("\nprocess boundary and sharp alone");
  const boundary = await watched(config, "the boundary measurement", () => boundaryPhase(config, servers));
  const imgfleet = {
    startup: parsedLines(servers.imgfleet.startupLines),
    logLines: servers.imgfleet.stdoutLines(),
  };
  await stopAll();
  const file = corpusFile(config, W1);
  const rate = await watched(config, "the sharp-only rate", () =>
    sharpRate(file, W1.query, 4, config.sharpSeconds),
  );
  return { imgfleet, pairs, boundary, sharpInProcess: rate };
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const config = loadConfig(process.argv.slice(2));
  const machine = machineInfo();
  const source = sourceInfo();
  say(`imgfleet bench: ${machine.cpus} cpus, node ${machine.node}, sharp ${machine.sharp.sharp}`);
  say(`  ${config.seconds} s per run after ${config.warmupSeconds} s warm-up; corpus ${config.corpusDir}`);
  const load = loadavg()[0] ?? 0;
  if (load > 0.5) say(`  WARNING: load average ${load.toFixed(2)} at start; numbers may be noisy`);
  const measured = await measureAll(config);
  const { pairs, boundary, sharpInProcess } = measured;
  const targets = checkTargets(pairs);
  say(`\n${table(pairs)}\n\nCPU per successful response (all cores):\n${cpuTable(pairs)}`);
  say(
    `\n${boundaryReport(boundary.value)}\n\n${sharpRateReport(sharpInProcess.value)}\n\n${targetsReport(targets)}`,
  );
  const finishedAt = new Date().toISOString();
  const path = writeResults(
    {
      startedAt: startedAt.toISOString(),
      finishedAt,
      machine: { ...machine, loadAvgAtEnd: loadavg() },
      settings: settings(config),
      source,
      ...measured,
      targets,
    },
    startedAt,
  );
  say(`\nresults: ${path}`);
  const missed = targets.some((c) => c.status === "MISS");
  if (missed && !config.strict) say("(targets missed; exiting 0 because --strict was not given)");
  return missed && config.strict ? 1 : 0;
}

installCleanup();
main()
  .then((code) => process.exit(code))
  .catch(async (error: unknown) => {
    if (wasInterrupted()) return; // the signal handler stops the children and exits
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    await stopAll();
    process.exit(1);
  });
