/**
 * `--fleet`: W1 and W3 through HAProxy on the local fleet against the
 * ceiling, at the configured concurrencies, with the matrix's load
 * generator, warm-up and noise handling; then the job queue's own latency
 * on the fleet's NATS cluster. The fleet is stopped at the end.
 */
import { type BenchConfig, corpusFile } from "./config.js";
import { type BenchFleet, type FleetInfo, startBenchFleet } from "./fleet.js";
import { checkWorkload } from "./http.js";
import { runMatrix } from "./matrix.js";
import { type QueueLatencyResult, queueLatency } from "./queue-latency.js";
import { type RunningServer, startCeiling } from "./servers.js";
import type { Pair } from "./types.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

export interface FleetResult {
  /** The fleet's processes, what the harness set on its nodes, what it takes idle. */
  fleet: FleetInfo;
  /** Ceiling, then the fleet through HAProxy; `imgfleet` of each pair is the fleet. */
  pairs: Pair[];
  queueLatency: QueueLatencyResult;
}

/** Both up (side by side: the fleet takes ~10 s to start), the ceiling answering each workload. */
async function startBoth(config: BenchConfig): Promise<{ ceiling: RunningServer; fleet: BenchFleet }> {
  const files = config.fleetWorkloads.map((workload) => ({ workload, file: corpusFile(config, workload) }));
  const [ceiling, fleet] = await Promise.allSettled([startCeiling(), startBenchFleet(files)]);
  if (ceiling.status === "rejected" || fleet.status === "rejected") {
    if (ceiling.status === "fulfilled") await ceiling.value.stop();
    if (fleet.status === "fulfilled") await fleet.value.stop();
    throw ceiling.status === "rejected" ? ceiling.reason : (fleet as PromiseRejectedResult).reason;
  }
  for (const { workload, file } of files) await checkWorkload(ceiling.value, workload, file);
  return { ceiling: ceiling.value, fleet: fleet.value };
}

export async function fleetPhase(config: BenchConfig): Promise<FleetResult> {
  const ids = config.fleetWorkloads.map((w) => w.id).join(" and ");
  say(
    `\nfleet phase: ${ids} through HAProxy on a local fleet, against the ceiling; then the queue's latency`,
  );
  const { ceiling, fleet } = await startBoth(config);
  try {
    say(`ceiling pid ${ceiling.pid} at ${ceiling.url}; fleet (HAProxy) at ${fleet.server.url}`);
    const pairs = await runMatrix(
      { ...config, workloads: config.fleetWorkloads },
      { ceiling, imgfleet: fleet.server },
    );
    await ceiling.stop();
    const latency = await queueLatency(
      config,
      fleet.handle.natsUrls,
      fleet.server.processes ?? fleet.server.pid,
    );
    const info = await fleet.info();
    return { fleet: info, pairs, queueLatency: latency };
  } finally {
    say("\nstopping the fleet");
    await Promise.all([ceiling.stop(), fleet.stop()]);
  }
}
