/**
 * `npm run bench`: imgfleet against the ceiling (a bare node:http + sharp
 * server) on three workloads at fixed concurrencies, plus what the process
 * boundary costs and what sharp alone does; then what features cost, each
 * imgfleet with the feature against without: API keys, usage metering,
 * metric sampling; and (--fleet) the local fleet through HAProxy against the
 * ceiling, with the job queue's own latency.
 * See bench/README.md.
 */
import { loadavg } from "node:os";
import { authPhase } from "./auth-phase.js";
import { boundaryCost } from "./boundary.js";
import { type BenchConfig, COMPARISON_WORKLOADS, corpusFile, loadConfig, WORKLOADS } from "./config.js";
import { noisePct, watchCpu } from "./cpu.js";
import { fleetPhase } from "./fleet-phase.js";
import { checkWorkload } from "./http.js";
import { sharpRate } from "./inprocess.js";
import { runMatrix, type Servers } from "./matrix.js";
import { meteringPhase } from "./metering-phase.js";
import { installCleanup, stopAll, wasInterrupted } from "./procs.js";
import {
  authReport,
  boundaryReport,
  cpuTable,
  fleetReport,
  meteringReport,
  samplingReport,
  sharpRateReport,
  table,
  targetsReport,
} from "./report.js";
import { machineInfo, settings, sourceInfo, writeResults } from "./results.js";
import { samplingPhase } from "./sampling-phase.js";
import { serverInfo, startCeiling, startImgfleet } from "./servers.js";
import { checkTargets } from "./targets.js";
import type { Workload } from "./types.js";

const say = (text: string) => process.stdout.write(`${text}\n`);
const W1 = WORKLOADS[0] as Workload;

/** Workloads the matrix's imgfleet will be sent: the matrix's, and the auth phase's (it is its baseline). */
function plainWorkloads(config: BenchConfig): Workload[] {
  const ceiling = config.phases.includes("ceiling") ? config.workloads : [];
  const auth = config.phases.includes("auth") ? [COMPARISON_WORKLOADS.auth] : [];
  return [...new Set([...ceiling, ...auth])];
}

/**
 * For the ceiling and auth phases: imgfleet with auth.mode=none (figures stay
 * comparable with runs from before API keys) and metering on (its default,
 * stated explicitly) and, for the ceiling phase, the ceiling: both up and
 * answering every workload they will get with the expected JPEG.
 */
async function startServers(config: BenchConfig) {
  const wantCeiling = config.phases.includes("ceiling");
  const wantImgfleet = wantCeiling || config.phases.includes("auth");
  const [ceiling, imgfleet] = await Promise.all([
    wantCeiling ? startCeiling() : null,
    wantImgfleet ? startImgfleet({ name: "imgfleet" }) : null,
  ]);
  if (ceiling) say(`ceiling  pid ${ceiling.pid} at ${ceiling.url}`);
  if (imgfleet) say(`imgfleet pid ${imgfleet.pid} at ${imgfleet.url} (auth.mode=none, usage.enabled=true)`);
  for (const workload of imgfleet ? plainWorkloads(config) : []) {
    if (ceiling && config.workloads.includes(workload))
      await checkWorkload(ceiling, workload, corpusFile(config, workload));
    if (imgfleet) await checkWorkload(imgfleet, workload, corpusFile(config, workload));
  }
  return { ceiling, imgfleet };
}

/** Runs `step` and reports how much CPU processes outside the benchmark took meanwhile. */
async function watched<T>(config: BenchConfig, what: string, step: () => Promise<T>) {
  const watch = watchCpu(process.pid);
  const value = await step();
  const cpu = watch.stop();
  const noise = noisePct(cpu);
  if (noise > config.maxOtherCpuPct)
    say(`  NOISY: other processes and steal took ${noise}% CPU during ${what}`);
  return { value, otherCpuPct: cpu.otherPct, stealPct: cpu.stealPct };
}

/** The process-boundary cost, with the same op done in-process for comparison. */
async function boundaryPhase(config: BenchConfig, servers: Servers) {
  const file = corpusFile(config, W1);
  const sequential = await sharpRate(file, W1.query, 1, 60, config.boundaryRequests);
  const inProcess = sequential.latencyMs;
  return boundaryCost(servers.imgfleet, W1, file, config.boundaryRequests, inProcess);
}

/** The matrix against the ceiling, then the process boundary; servers left running. */
async function ceilingPhase(config: BenchConfig, servers: Servers) {
  const pairs = await runMatrix(config, servers);
  say("\nprocess boundary and sharp alone");
  const boundary = await watched(config, "the boundary measurement", () => boundaryPhase(config, servers));
  return { pairs, boundary };
}

/**
 * Everything measured, servers stopped at the end: the ceiling phase, the
 * auth phase (its baseline is the matrix's imgfleet), then, with those
 * stopped so that no idle server's background work (metering's timers) falls
 * on it, the metering phase on two imgfleets of its own, then the sampling
 * phase likewise; last the fleet phase, with nothing else running.
 */
async function measureAll(config: BenchConfig) {
  const { ceiling, imgfleet } = await startServers(config);
  const compared =
    ceiling && imgfleet ? await ceilingPhase(config, { ceiling, imgfleet }) : { pairs: [], boundary: null };
  const auth = imgfleet && config.phases.includes("auth") ? await authPhase(config, imgfleet) : undefined;
  const imgfleetInfo = imgfleet ? serverInfo(imgfleet) : null;
  await stopAll();
  const metering = config.phases.includes("metering") ? await meteringPhase(config) : undefined;
  await stopAll();
  const sampling = config.phases.includes("sampling") ? await samplingPhase(config) : undefined;
  await stopAll();
  const file = corpusFile(config, W1);
  const rate = ceiling
    ? await watched(config, "the sharp-only rate", () => sharpRate(file, W1.query, 4, config.sharpSeconds))
    : null;
  const fleet = config.phases.includes("fleet") ? await fleetPhase(config) : undefined;
  return {
    imgfleet: imgfleetInfo,
    ...compared,
    sharpInProcess: rate,
    comparisons: { auth, metering, sampling },
    fleet,
  };
}

/** The tables and reports of the phases that ran. */
function report(measured: Awaited<ReturnType<typeof measureAll>>): string {
  const { pairs, boundary, sharpInProcess, comparisons, fleet } = measured;
  const parts: string[] = [];
  if (pairs.length > 0)
    parts.push(table(pairs), `CPU per successful response (all cores):\n${cpuTable(pairs)}`);
  if (boundary) parts.push(boundaryReport(boundary.value));
  if (sharpInProcess) parts.push(sharpRateReport(sharpInProcess.value));
  if (comparisons.auth) parts.push(authReport(comparisons.auth));
  if (comparisons.metering) parts.push(meteringReport(comparisons.metering));
  if (comparisons.sampling) parts.push(samplingReport(comparisons.sampling));
  if (fleet) parts.push(fleetReport(fleet));
  return parts.join("\n\n");
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const config = loadConfig(process.argv.slice(2));
  const machine = machineInfo();
  const source = sourceInfo();
  say(`imgfleet bench: ${machine.cpus} cpus, node ${machine.node}, sharp ${machine.sharp.sharp}`);
  say(`  ${config.seconds} s per run after ${config.warmupSeconds} s warm-up; corpus ${config.corpusDir}`);
  say(`  phases: ${config.phases.join(", ")}; concurrency ${config.concurrencies.join(", ")}`);
  const load = loadavg()[0] ?? 0;
  if (load > 0.5) say(`  WARNING: load average ${load.toFixed(2)} at start; numbers may be noisy`);
  const measured = await measureAll(config);
  const targets = checkTargets(measured.pairs, measured.comparisons, measured.fleet);
  say(`\n${report(measured)}\n\n${targetsReport(targets)}`);
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
