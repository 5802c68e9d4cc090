import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { cliCommand, shellWord } from "../cli/invocation.js";
import { isAlive } from "./processes.js";

/**
 * `fleet.json`, the dev fleet's record of itself: every process it started
 * (pid and start time, ports, log file), the load balancer's URL, the cluster
 * secret and the admin key. It is rewritten after every spawn, so a launcher
 * interrupted half-way still leaves a file `down` can stop from. It holds
 * secrets: mode 0600.
 */

export const FLEET_FILE = "fleet.json";

export const FLEET_ROLES = ["nats", "postgres", "api", "worker", "control", "haproxy"] as const;
export type FleetRole = (typeof FLEET_ROLES)[number];

const ProcessRecordSchema = z.object({
  name: z.string(),
  role: z.enum(FLEET_ROLES),
  pid: z.number().int(),
  /** Clock ticks since boot (/proc/<pid>/stat); a pid whose start time differs is another process. */
  startTime: z.number().int().optional(),
  /** `client`, `monitor`, `cluster` for NATS; `http` for nodes and HAProxy; `postgres`. */
  ports: z.record(z.string(), z.number().int()),
  /** How clients reach it: nats://, postgres://, http://. */
  url: z.string(),
  logFile: z.string(),
});
export type FleetProcessRecord = z.infer<typeof ProcessRecordSchema>;

const FleetFileSchema = z.object({
  version: z.literal(1),
  /** `starting` until every process is ready; `failed` after a start that stopped what it started. */
  status: z.enum(["starting", "running", "failed", "stopped"]),
  stateDir: z.string(),
  /** The process that ran `up`. */
  launcherPid: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The load balancer in front of the API nodes. */
  url: z.string(),
  adminKey: z.string().nullable(),
  clusterSecret: z.string(),
  natsUrls: z.array(z.string()),
  databaseUrl: z.string(),
  processes: z.array(ProcessRecordSchema),
});
export type FleetFile = z.infer<typeof FleetFileSchema>;

export function fleetFilePath(stateDir: string): string {
  return path.join(stateDir, FLEET_FILE);
}

/** The fleet file of `stateDir`, or undefined when there is none. Throws when it exists but is not one. */
export function readFleetFile(stateDir: string): FleetFile | undefined {
  const file = fleetFilePath(stateDir);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`${file} is not valid JSON; remove it if no fleet runs from ${stateDir}`, {
      cause: error,
    });
  }
  const parsed = FleetFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `${file} is not a dev fleet file (${parsed.error.issues[0]?.message ?? "invalid"}); remove it if no fleet runs from ${stateDir}`,
    );
  }
  return parsed.data;
}

/** Replaces the file atomically (write, then rename), readable by its owner only. */
export async function writeFleetFile(fleet: FleetFile): Promise<void> {
  const file = fleetFilePath(fleet.stateDir);
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(
    temporary,
    `${JSON.stringify({ ...fleet, updatedAt: new Date().toISOString() }, null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
  await rename(temporary, file);
}

/** The recorded processes that still run (the same processes, not later ones with their pids). */
export function liveProcesses(fleet: FleetFile): FleetProcessRecord[] {
  return fleet.processes.filter((p) => isAlive(p.pid, p.startTime));
}

/** Raised by `up` when the directory already has a fleet with live processes. */
export class FleetRunningError extends Error {
  override name = "FleetRunningError";
  constructor(
    readonly stateDir: string,
    readonly live: { name: string; pid: number }[],
  ) {
    super(
      `a dev fleet is already running from ${stateDir} (${live.map((p) => `${p.name} pid ${p.pid}`).join(", ")}); ` +
        `stop it first: ${cliCommand(`dev fleet down --dir ${shellWord(stateDir)}`)}`,
    );
  }
}
