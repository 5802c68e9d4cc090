import { chmod, mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Launch } from "./fleet-launch.js";
import { probeRecord, type StoppedProcess, stopRecords } from "./fleet-members.js";
import { FLEET_ENTRIES, fleetLayout } from "./fleet-plan.js";
import {
  type FleetFile,
  type FleetProcessRecord,
  FleetRunningError,
  liveProcesses,
  readFleetFile,
  writeFleetFile,
} from "./fleet-state.js";
import type { DevFleet, DevFleetOptions, FleetBinaries } from "./fleet-types.js";
import { findNatsServer } from "./nats-cluster.js";
import { findPostgresBinDir, postgresIdentity } from "./postgres-server.js";
import { findBinary, isAlive, MissingBinaryError } from "./processes.js";

/**
 * `imgfleet dev fleet`: a whole fleet on 127.0.0.1 — 3 clustered nats-server
 * with JetStream, one PostgreSQL, API, worker and control nodes, and HAProxy
 * in front of the API nodes — each process detached with its log in the
 * state directory, recorded in `fleet.json` so another command can stop
 * exactly those processes later.
 */

export type { FleetProcess, StoppedProcess } from "./fleet-members.js";
export type { NodeRole } from "./fleet-plan.js";
export type { FleetFile, FleetProcessRecord, FleetRole } from "./fleet-state.js";
export { FleetRunningError } from "./fleet-state.js";
export type { DevFleet, DevFleetOptions, FleetBinaries } from "./fleet-types.js";
export { MissingBinaryError, ProcessStartError } from "./processes.js";

/** The binaries a fleet needs, or one error naming every missing Debian package. */
export function findFleetBinaries(): FleetBinaries {
  const nats = findNatsServer();
  const postgresBin = findPostgresBinDir();
  const haproxy = findBinary("haproxy");
  const missing = [
    ...(nats ? [] : [{ binary: "nats-server", debianPackage: "nats-server" }]),
    ...(postgresBin ? [] : [{ binary: "initdb/postgres", debianPackage: "postgresql" }]),
    ...(haproxy ? [] : [{ binary: "haproxy", debianPackage: "haproxy" }]),
  ];
  if (!nats || !postgresBin || !haproxy) throw new MissingBinaryError(missing);
  return { nats, postgresBin, haproxy };
}

/** Starts a fleet and waits until every process is ready; on failure stops what it started and throws. */
export async function startDevFleet(options: DevFleetOptions): Promise<DevFleet> {
  const binaries = findFleetBinaries();
  const { apiNodes, workerNodes, controlNodes, workersPerNode } = options;
  for (const [name, value] of Object.entries({ apiNodes, workerNodes, controlNodes, workersPerNode })) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new RangeError(`${name} must be a whole number of at least 1, got ${value}`);
    }
  }
  const stateDir = path.resolve(options.stateDir);
  const previous = readFleetFile(stateDir);
  if (previous) {
    const live: { name: string; pid: number }[] = liveProcesses(previous);
    // Another `up` still starting in this directory counts as live too.
    if (
      previous.status === "starting" &&
      previous.launcherPid !== process.pid &&
      isAlive(previous.launcherPid)
    ) {
      live.push({ name: "`up` still starting", pid: previous.launcherPid });
    }
    if (live.length > 0) throw new FleetRunningError(stateDir, live);
  }
  if (options.fresh) await removeFleetState(stateDir);
  const layout = fleetLayout(stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  await letPostgresEnter(stateDir);
  await mkdir(layout.logs, { recursive: true, mode: 0o700 });
  await mkdir(layout.nats, { recursive: true, mode: 0o700 });
  await mkdir(layout.nodes, { recursive: true, mode: 0o700 });

  const launch = new Launch(stateDir, options, previous);
  try {
    await launch.run(binaries);
  } catch (error) {
    await launch.abandon();
    throw error;
  }
  return launch.handle();
}

/**
 * Stops exactly the processes fleet.json lists (a pid now held by another
 * process is left alone), each with its clean stop signal and SIGKILL after
 * a timeout. Returns what happened to each; [] when there is no fleet.json.
 */
export async function stopDevFleet(stateDir: string): Promise<StoppedProcess[]> {
  const dir = path.resolve(stateDir);
  const file = readFleetFile(dir);
  if (!file) return [];
  const results = await stopRecords(file.processes);
  await writeFleetFile({ ...file, status: "stopped" });
  return results;
}

export interface FleetProcessStatus extends FleetProcessRecord {
  alive: boolean;
  ready: boolean;
}

export interface DevFleetStatus {
  stateDir: string;
  status: FleetFile["status"];
  url: string;
  adminKey: string | null;
  processes: FleetProcessStatus[];
}

/** Each recorded process: alive (the same process still runs) and ready (answers its probe). Undefined without fleet.json. */
export async function devFleetStatus(stateDir: string): Promise<DevFleetStatus | undefined> {
  const file = readFleetFile(path.resolve(stateDir));
  if (!file) return undefined;
  const processes = await Promise.all(
    file.processes.map(async (record) => {
      const alive = isAlive(record.pid, record.startTime);
      const ready = alive && (await probeRecord(record));
      return { ...record, alive, ready };
    }),
  );
  return { stateDir: file.stateDir, status: file.status, url: file.url, adminKey: file.adminKey, processes };
}

/**
 * PostgreSQL runs as `postgres` when we are root, and must be able to enter the
 * state directory to reach its own (a mkdtemp directory is 0700): add search
 * permission for others, nothing more (no listing, no reading).
 */
async function letPostgresEnter(stateDir: string): Promise<void> {
  if (!postgresIdentity()) return;
  const { mode } = await stat(stateDir);
  if ((mode & 0o001) === 0) await chmod(stateDir, (mode & 0o7777) | 0o001);
}

/** Removes what a previous fleet left in `stateDir` (only the entries a fleet creates). */
async function removeFleetState(stateDir: string): Promise<void> {
  for (const entry of FLEET_ENTRIES) {
    await rm(path.join(stateDir, entry), { recursive: true, force: true });
  }
}
