import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { delay } from "../util/time.js";
import { freePort } from "./ports.js";
import { findBinary } from "./processes.js";

/**
 * Local nats-server processes with JetStream, for `imgfleet dev fleet` and
 * the tests: one server, or a cluster of three on 127.0.0.1 with their own
 * ports and store directories. Readiness is a deadline on the monitoring
 * endpoint racing the process's early exit; logs are kept in a bounded tail.
 */

const READY_TIMEOUT_MS = 30_000;
const LOG_TAIL_LINES = 200;

export const NATS_MISSING =
  "nats-server not found on PATH (nor in /usr/sbin); install the Debian package 'nats-server'";

export function findNatsServer(): string | undefined {
  return findBinary("nats-server");
}

export interface NatsServerProcess {
  name: string;
  /** nats://127.0.0.1:<port> */
  url: string;
  monitorUrl: string;
  pid(): number | undefined;
  logs(): string[];
  running(): boolean;
  /** Sends a signal (SIGKILL for a crash, SIGTERM for a clean stop) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports and store (after `kill`). */
  restart(): Promise<void>;
}

export interface NatsCluster {
  servers: NatsServerProcess[];
  /** Every client URL, for a connection that fails over. */
  urls: string[];
  dir: string;
  stop(): Promise<void>;
}

interface ServerPlan {
  name: string;
  port: number;
  monitorPort: number;
  clusterPort: number;
}

/** Starts `size` servers (1, or 3 for a Raft cluster) and waits until JetStream answers on every one. */
export async function startNatsCluster(options: { size: 1 | 3; dir?: string }): Promise<NatsCluster> {
  const binary = findNatsServer();
  if (!binary) throw new Error(NATS_MISSING);
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "imgfleet-nats-")));
  const plans: ServerPlan[] = [];
  for (let i = 1; i <= options.size; i++) {
    plans.push({
      name: `n${i}`,
      port: await freePort(),
      monitorPort: await freePort(),
      clusterPort: await freePort(),
    });
  }
  const servers = await Promise.all(
    plans.map(async (plan) => {
      const config = join(dir, `${plan.name}.conf`);
      await mkdir(join(dir, plan.name), { recursive: true });
      await writeFile(config, serverConfig(plan, plans, join(dir, plan.name)));
      return launch(binary, plan, config);
    }),
  );
  try {
    await Promise.all(servers.map((s) => s.ready));
    if (options.size > 1) await waitForMetaLeader(servers.map((s) => s.handle));
  } catch (error) {
    await Promise.all(servers.map((s) => s.handle.kill("SIGKILL")));
    throw error;
  }
  const handles = servers.map((s) => s.handle);
  return {
    servers: handles,
    urls: handles.map((s) => s.url),
    dir,
    async stop() {
      await Promise.all(handles.map((s) => s.kill("SIGTERM")));
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

function serverConfig(plan: ServerPlan, all: ServerPlan[], storeDir: string): string {
  const lines = [
    `server_name: ${plan.name}`,
    `listen: 127.0.0.1:${plan.port}`,
    `http: 127.0.0.1:${plan.monitorPort}`,
    // Small limits: these are development servers on a shared machine.
    `jetstream { store_dir: "${storeDir}", max_memory_store: 64MB, max_file_store: 2GB }`,
    // 2.9 accepts no lame-duck duration under 30 s; restarts hand leadership over within it.
    "lame_duck_duration: 30s",
    "lame_duck_grace_period: 2s",
  ];
  if (all.length > 1) {
    const routes = all
      .filter((p) => p !== plan)
      .map((p) => `nats-route://127.0.0.1:${p.clusterPort}`)
      .join(", ");
    lines.push(`cluster { name: imgfleet, listen: 127.0.0.1:${plan.clusterPort}, routes: [${routes}] }`);
  }
  return `${lines.join("\n")}\n`;
}

function launch(binary: string, plan: ServerPlan, config: string) {
  let child: ChildProcess | undefined;
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
    }
  };
  const start = () => {
    child = spawn(binary, ["-c", config], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    return waitReady(handle, child);
  };
  const handle: NatsServerProcess = {
    name: plan.name,
    url: `nats://127.0.0.1:${plan.port}`,
    monitorUrl: `http://127.0.0.1:${plan.monitorPort}`,
    pid: () => child?.pid,
    logs: () => [...tail],
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async kill(signal = "SIGTERM") {
      if (!child || !handle.running()) return;
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    },
    async restart() {
      await handle.kill("SIGKILL");
      await start();
    },
  };
  return { handle, ready: start() };
}

/** Polls /healthz (JetStream included) until it answers 200, or fails with the log tail. */
async function waitReady(server: NatsServerProcess, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server ${server.name} exited during start:\n${server.logs().join("\n")}`);
    }
    const ok = await fetch(`${server.monitorUrl}/healthz?js-enabled-only=true`, {
      signal: AbortSignal.timeout(1000),
    })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await delay(50);
  }
  throw new Error(
    `nats-server ${server.name} not ready after ${READY_TIMEOUT_MS} ms:\n${server.logs().join("\n")}`,
  );
}

interface JszMeta {
  meta_cluster?: { leader?: string; cluster_size?: number; replicas?: { name: string; current: boolean }[] };
}

/**
 * Placement of a replicated stream needs every peer known to the meta group:
 * a leader alone is not enough ("no suitable peers for placement").
 */
function everyPeerCurrent(jsz: JszMeta, size: number): boolean {
  const meta = jsz.meta_cluster;
  if (!meta?.leader) return false;
  const others = meta.replicas ?? [];
  return (meta.cluster_size ?? 0) >= size && others.length >= size - 1 && others.every((r) => r.current);
}

/** A cluster takes JetStream requests only once its meta group has elected a leader and knows every peer. */
export async function waitForMetaLeader(
  servers: NatsServerProcess[],
  timeoutMs = READY_TIMEOUT_MS,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const server of servers.filter((s) => s.running())) {
      const leader = await fetch(`${server.monitorUrl}/jsz`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.json() as Promise<JszMeta>)
        .then((j) => (everyPeerCurrent(j, servers.length) ? j.meta_cluster?.leader : undefined))
        .catch(() => undefined);
      if (leader) return leader;
    }
    await delay(100);
  }
  throw new Error(`the NATS cluster elected no JetStream leader within ${timeoutMs} ms`);
}
