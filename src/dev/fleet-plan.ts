import { randomBytes } from "node:crypto";
import path from "node:path";
import { withServerHeapFlags } from "../app/heap-flags.js";
import type { SpawnSpec } from "./fleet-members.js";

/**
 * What the dev fleet runs, as spawn specifications: file layout, ports,
 * command lines and environment. Pure functions of the options and the
 * ports chosen, so the launcher (fleet.ts) only spawns and waits.
 */

export type NodeRole = "api" | "worker" | "control";

/** Where everything lives under the state directory. */
export function fleetLayout(stateDir: string) {
  return {
    logs: path.join(stateDir, "logs"),
    nats: path.join(stateDir, "nats"),
    postgres: path.join(stateDir, "postgres"),
    nodes: path.join(stateDir, "nodes"),
    haproxyConfig: path.join(stateDir, "haproxy.cfg"),
    haproxySocket: path.join(stateDir, "haproxy.sock"),
  };
}

/** Entries of the state directory that the fleet created (and `fresh` removes); nothing else is touched. */
export const FLEET_ENTRIES = [
  "fleet.json",
  "haproxy.cfg",
  "haproxy.sock",
  "logs",
  "nats",
  "postgres",
  "nodes",
];

/** 48 base64 characters (36 random bytes), as `fleet.clusterSecret` wants 32+. */
export function newClusterSecret(): string {
  for (;;) {
    const secret = randomBytes(36).toString("base64");
    // The config loader reads an env value that parses as a JSON number as a number: never hand it one.
    if (/[a-df-zA-DF-Z]/.test(secret)) return secret;
  }
}

export interface NatsPlan {
  name: string;
  client: number;
  monitor: number;
  cluster: number;
}

/** One server of the 3-server development cluster: JetStream on file, loopback only. */
export function natsConfig(plan: NatsPlan, all: NatsPlan[], storeDir: string): string {
  const routes = all
    .filter((p) => p !== plan)
    .map((p) => `nats-route://127.0.0.1:${p.cluster}`)
    .join(", ");
  return `${[
    `server_name: ${plan.name}`,
    `listen: 127.0.0.1:${plan.client}`,
    `http: 127.0.0.1:${plan.monitor}`,
    // Small limits: development servers on a shared machine.
    `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 64MB, max_file_store: 2GB }`,
    // 2.9 accepts no lame-duck duration under 30 s; `--signal ldm` hands leadership over within it.
    "lame_duck_duration: 30s",
    "lame_duck_grace_period: 2s",
    `cluster { name: imgfleet-dev, listen: 127.0.0.1:${plan.cluster}, routes: [${routes}] }`,
  ].join("\n")}\n`;
}

export function natsSpec(plan: NatsPlan, binary: string, configFile: string, logs: string): SpawnSpec {
  return {
    name: plan.name,
    role: "nats",
    url: `nats://127.0.0.1:${plan.client}`,
    ports: { client: plan.client, monitor: plan.monitor, cluster: plan.cluster },
    logFile: path.join(logs, `${plan.name}.log`),
    command: binary,
    args: ["-c", configFile],
    env: inheritedEnv(),
  };
}

export interface NodePlan {
  name: string;
  role: NodeRole;
  port: number;
}

export interface NodeSpecInput {
  /** `[...execArgv, script]`: how to run the imgfleet CLI. */
  entry: string[];
  cwd: string | undefined;
  nodesDir: string;
  logs: string;
  workersPerNode: number;
  natsUrls: string[];
  databaseUrl: string;
  clusterSecret: string;
  logLevel: string;
  env: Record<string, string>;
  roleEnv: Partial<Record<NodeRole, Record<string, string>>>;
}

/** `<node> [execArgv] <entry> start --role <role> --port <p> --data-dir <dir> --workers <n>`, configured through IMGFLEET_* variables. */
export function nodeSpec(plan: NodePlan, input: NodeSpecInput): SpawnSpec {
  const url = `http://127.0.0.1:${plan.port}`;
  const env: NodeJS.ProcessEnv = {
    ...inheritedEnv(),
    IMGFLEET_FLEET__NATS__SERVERS: input.natsUrls.join(","),
    IMGFLEET_DATABASE__URL: input.databaseUrl,
    IMGFLEET_FLEET__CLUSTER_SECRET: input.clusterSecret,
    IMGFLEET_FLEET__NODE_ID: plan.name,
    IMGFLEET_FLEET__ADVERTISE_URL: url,
    IMGFLEET_LOG__LEVEL: input.logLevel,
    // HAProxy runs on this host: its X-Forwarded-For carries the client's address.
    IMGFLEET_SERVER__TRUST_PROXY: "127.0.0.1",
    ...input.env,
    ...input.roleEnv[plan.role],
  };
  return {
    name: plan.name,
    role: plan.role,
    url,
    ports: { http: plan.port },
    logFile: path.join(input.logs, `${plan.name}.log`),
    command: process.execPath,
    args: [
      ...withServerHeapFlags(input.entry),
      "start",
      "--role",
      plan.role,
      "--port",
      String(plan.port),
      "--data-dir",
      path.join(input.nodesDir, plan.name),
      "--workers",
      String(input.workersPerNode),
    ],
    env,
    cwd: input.cwd,
  };
}

export function haproxySpec(binary: string, port: number, configFile: string, logs: string): SpawnSpec {
  return {
    name: "haproxy",
    role: "haproxy",
    url: `http://127.0.0.1:${port}`,
    ports: { http: port },
    logFile: path.join(logs, "haproxy.log"),
    command: binary,
    // -db: foreground, no master process, so the pid we record is the one serving.
    args: ["-f", configFile, "-db"],
    env: inheritedEnv(),
  };
}

/** How the running CLI was started: `node [execArgv] <script>`, from dist/ or from src/ under tsx. */
export function defaultEntry(): string[] {
  const script = process.argv[1];
  if (!script) throw new Error("cannot tell which script runs imgfleet; pass `entry` explicitly");
  return [...process.execArgv, script];
}

/** This process's environment without any IMGFLEET_* variable: each node gets exactly the fleet's. */
export function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("IMGFLEET_")));
}
