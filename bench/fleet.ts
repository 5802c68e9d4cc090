/**
 * The local fleet as one server for the harness: `startDevFleet` (3 NATS
 * servers, PostgreSQL, API, worker and control nodes running the compiled
 * CLI, HAProxy in front) in a temporary state directory, provisioned like an
 * operator would (a tenant whose limits never bind, an API key), measured
 * through HAProxy with every fleet process counted as the server.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type DevFleet, type FleetProcess, startDevFleet } from "../src/dev/fleet.js";
import { readFleetFile } from "../src/dev/fleet-state.js";
import { adminPost, UNBOUNDED_TENANT } from "./auth-server.js";
import { PROJECT_ROOT } from "./config.js";
import { idleTicks, waitQuiet, watchCpu } from "./cpu.js";
import { freshDataDir, removeDataDir } from "./data-dirs.js";
import { checkWorkload, post } from "./http.js";
import { LogTail } from "./log-tail.js";
import { trackStoppable } from "./procs.js";
import { descendants } from "./rss.js";
import {
  DEFAULT_SAMPLE_INTERVAL_MS,
  IMGFLEET_ENTRY,
  type ImgfleetOverrides,
  overrideEnv,
  type RunningServer,
} from "./servers.js";
import type { CpuShare, ProcessSet, Workload } from "./types.js";
import { usageAfterRunOf } from "./usage.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

/** 2 API nodes, 2 worker nodes of one worker process each (the machine has 2 cores), 1 control node. */
export const FLEET_LAYOUT = { apiNodes: 2, workerNodes: 2, controlNodes: 1, workersPerNode: 1 } as const;

/** auth.mode must be `keys` in a fleet; metering and sampling as shipped. */
export const FLEET_OVERRIDES: ImgfleetOverrides = {
  "auth.mode": "keys",
  "usage.enabled": true,
  "ops.sampling": true,
  "ops.sampleIntervalMs": DEFAULT_SAMPLE_INTERVAL_MS,
};

/** Set by the fleet launcher for each node: the shell's value would break the fleet. */
const FLEET_OWNED = /^IMGFLEET_(FLEET__|DATABASE__|LOG__LEVEL$)/;

/** The shell's IMGFLEET_* (the nodes' config, as for every imgfleet), minus the fleet's own, plus the harness's. */
function nodeEnv(): Record<string, string> {
  const shell = Object.entries(process.env).filter(
    (e): e is [string, string] => e[0].startsWith("IMGFLEET_") && !FLEET_OWNED.test(e[0]) && !!e[1],
  );
  return { ...Object.fromEntries(shell), ...overrideEnv(FLEET_OVERRIDES) };
}

/** BENCH_NODE_FLAGS: extra node flags for every fleet node, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
function nodeFlags(): string[] {
  return (process.env.BENCH_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);
}

const KEY_VISIBLE_TIMEOUT_MS = 15_000;
/** Idle measurement before the first load: the fleet is never silent (heartbeats, Raft, timers). */
const IDLE_WINDOWS = 16;

export interface FleetIdle {
  /** The idle fleet's share of the machine (all cores), and each process's. */
  cpu: CpuShare;
  /** Clock ticks per 250 ms: median and largest; waitQuiet's allowance is the median + 3. */
  ticksPer250Ms: { median: number; max: number };
}

export interface BenchFleet {
  /** The fleet as the measurements see it: HAProxy's URL, the API key, every process. */
  server: RunningServer;
  handle: DevFleet;
  idle: FleetIdle;
  /** For the results: layout, processes, what the harness set, the API nodes' effective configuration. */
  info(): Promise<FleetInfo>;
  stop(): Promise<void>;
}

export interface FleetInfo {
  layout: typeof FLEET_LAYOUT;
  entry: string;
  overrides: ImgfleetOverrides;
  /** Every IMGFLEET_* variable the harness gave the nodes (after the launcher's own). */
  nodeEnv: Record<string, string>;
  tenantLimits: typeof UNBOUNDED_TENANT;
  natsUrls: readonly string[];
  processes: { name: string; role: string; pid: number; url: string }[];
  idle: FleetIdle;
  /** `GET /admin/v1/config` of each API node (null when it has no such route). */
  apiConfig: Record<string, unknown>;
}

/** Every fleet process a measurement counts: NATS, PostgreSQL, HAProxy and the nodes (with their workers). */
export function fleetProcesses(fleet: DevFleet): ProcessSet {
  return {
    roots: fleet.processes.map((p) => ({ label: p.name, pid: p.pid() })),
    main: fleet.byRole("api").map((p) => p.pid()),
  };
}

/** At exit, when nothing can be awaited: SIGKILL every process fleet.json lists, and theirs. */
function killFleetNow(stateDir: string): void {
  const records = readFleetFile(stateDir)?.processes ?? [];
  const pids = records.flatMap((r) => (r.pid > 0 ? [...descendants(r.pid), r.pid] : []));
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/** A new key reaches each API node through the outbox, asynchronously: waits until every one accepts it. */
async function untilEveryNodeAccepts(
  api: FleetProcess[],
  headers: Record<string, string>,
  w: Workload,
  file: string,
) {
  const body = readFileSync(file);
  const deadline = performance.now() + KEY_VISIBLE_TIMEOUT_MS;
  for (const node of api) {
    const url = `${node.url}/v1/resize?${w.query}`;
    let status = 0;
    while (performance.now() < deadline) {
      status = (await post(url, body, headers)).status;
      if (status !== 401) break;
      await sleep(100);
    }
    if (status === 401)
      throw new Error(`fleet: ${node.name} still refused the new API key after ${KEY_VISIBLE_TIMEOUT_MS} ms`);
  }
}

async function apiConfig(api: FleetProcess[], adminKey: string): Promise<Record<string, unknown>> {
  const entries = await Promise.all(
    api.map(async (node) => {
      try {
        const res = await fetch(`${node.url}/admin/v1/config`, {
          headers: { authorization: `Bearer ${adminKey}` },
          signal: AbortSignal.timeout(5_000),
        });
        return [node.name, res.ok ? ((await res.json()) as unknown) : null] as const;
      } catch {
        return [node.name, null] as const;
      }
    }),
  );
  return Object.fromEntries(entries);
}

/**
 * Starts the fleet, provisions a tenant and an API key through the admin
 * API, checks every workload through HAProxy and on each API node, and
 * measures what the idle fleet takes. Stopped by stopAll (and on Ctrl-C)
 * until `stop` is called; a failed start leaves nothing behind.
 */
export async function startBenchFleet(
  workloads: { workload: Workload; file: string }[],
): Promise<BenchFleet> {
  const stateDir = freshDataDir("imgfleet-bench-fleet-");
  const abort = new AbortController();
  const env = nodeEnv();
  let handle: DevFleet | undefined;
  let starting: Promise<DevFleet> | undefined;
  let stopping: Promise<void> | undefined;
  let tail: LogTail | undefined;
  const stop = () => {
    stopping ??= (async () => {
      abort.abort();
      tail?.close();
      await starting?.catch(() => {});
      await handle?.stop();
      removeDataDir(stateDir);
    })();
    return stopping;
  };
  const untrack = trackStoppable({
    stop,
    killNow: () => {
      killFleetNow(stateDir);
      removeDataDir(stateDir);
    },
  });
  try {
    starting = launchFleet(stateDir, env, abort.signal);
    handle = await starting;
    const fleet = handle;
    const { adminKey, headers } = await provisionBenchTenant(fleet);
    const api = fleet.byRole("api");
    const first = workloads[0];
    if (first) await untilEveryNodeAccepts(api, headers, first.workload, first.file);
    const usageNodes = [...api, ...fleet.byRole("control")].map((m) => ({
      name: "fleet" as const,
      url: m.url,
    }));
    tail = new LogTail(api.map((m) => m.logFile));
    const base = fleetServer(fleet, headers, tail, stop);
    const { processes } = base;
    await checkEveryWorkload(base, api, workloads);
    const idle = await measureIdle(processes);
    const quietTicks = idle.ticksPer250Ms.median + 3;
    say(
      `idle fleet: ${idle.cpu.serverPct}% of the machine (${perRoot(idle.cpu)}); quiet below ${quietTicks} ticks per 250 ms`,
    );
    const server: RunningServer = {
      ...base,
      quietTicks,
      usageAfterRun: () => usageAfterRunOf(usageNodes, () => waitQuiet(processes, 250, quietTicks)),
    };
    return {
      server,
      handle: fleet,
      idle,
      info: async () => fleetInfo(fleet, env, idle, await apiConfig(api, adminKey)),
      stop: async () => {
        await stop();
        untrack();
      },
    };
  } catch (error) {
    await stop();
    untrack();
    throw error;
  }
}

/** Starts the dev fleet with the bench's layout and node settings; says how long it took. */
async function launchFleet(
  stateDir: string,
  env: Record<string, string>,
  signal: AbortSignal,
): Promise<DevFleet> {
  const started = performance.now();
  const fleet = await startDevFleet({
    stateDir,
    entry: [...nodeFlags(), IMGFLEET_ENTRY],
    cwd: PROJECT_ROOT,
    ...FLEET_LAYOUT,
    env,
    signal,
  });
  say(
    `fleet up in ${((performance.now() - started) / 1000).toFixed(1)} s at ${fleet.url} (state ${stateDir})`,
  );
  return fleet;
}

/** The fleet as one server to the measurements: HAProxy's URL, every fleet process, the API nodes' logs. */
function fleetServer(
  fleet: DevFleet,
  headers: Record<string, string>,
  logs: LogTail,
  stop: () => Promise<void>,
): RunningServer & { processes: ProcessSet } {
  return {
    name: "fleet" as const,
    url: fleet.url,
    pid: fleet.process("haproxy").pid(),
    processes: fleetProcesses(fleet),
    startupLines: [],
    headers,
    stdoutLines: () => logs.lines(),
    onLine: (listener: (line: string) => void) => logs.onLine(listener),
    stop,
  };
}

/** A tenant without limits and an API key for it, made through the admin API with the bootstrap admin key. */
async function provisionBenchTenant(
  fleet: DevFleet,
): Promise<{ adminKey: string; headers: Record<string, string> }> {
  if (!fleet.adminKey) throw new Error("fleet: the first API node printed no bootstrap admin key");
  const adminKey = fleet.adminKey;
  const tenant = await adminPost(fleet, adminKey, "/tenants", { name: "bench", ...UNBOUNDED_TENANT }, "id");
  const secret = await adminPost(
    fleet,
    adminKey,
    `/tenants/${tenant}/keys`,
    { name: "bench", scopes: ["resize"] },
    "secret",
  );
  return { adminKey, headers: { authorization: `Bearer ${secret}` } };
}

/** Every workload answers right through HAProxy and on each API node directly. */
async function checkEveryWorkload(
  base: Parameters<typeof checkWorkload>[0],
  api: FleetProcess[],
  workloads: { workload: Workload; file: string }[],
): Promise<void> {
  for (const { workload, file } of workloads) {
    await checkWorkload(base, workload, file);
    for (const node of api) await checkWorkload({ ...base, name: "fleet", url: node.url }, workload, file);
  }
}

function fleetInfo(
  fleet: DevFleet,
  nodeEnv: Record<string, string>,
  idle: FleetIdle,
  apiConfigs: Record<string, unknown>,
): FleetInfo {
  return {
    layout: FLEET_LAYOUT,
    entry: IMGFLEET_ENTRY,
    overrides: FLEET_OVERRIDES,
    nodeEnv,
    tenantLimits: UNBOUNDED_TENANT,
    natsUrls: fleet.natsUrls,
    processes: fleet.processes.map((p) => ({ name: p.name, role: p.role, pid: p.pid(), url: p.url })),
    idle,
    apiConfig: apiConfigs,
  };
}

/** Each process's share, largest first. */
export function perRoot(cpu: CpuShare, min = 0): string {
  return Object.entries(cpu.perRootPct ?? {})
    .filter(([, pct]) => pct >= min)
    .sort((a, b) => b[1] - a[1])
    .map(([name, pct]) => `${name} ${pct}%`)
    .join(", ");
}

/** What the fleet takes with no traffic: a few seconds after its start settled. */
async function measureIdle(processes: ProcessSet): Promise<FleetIdle> {
  await waitQuiet(processes, 250, 6, 10_000);
  const watch = watchCpu(processes);
  const ticksPer250Ms = await idleTicks(processes, IDLE_WINDOWS);
  return { cpu: watch.stop(), ticksPer250Ms };
}
