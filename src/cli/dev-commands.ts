import path from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { CLI_ENV } from "../config/sources.js";
import type { DevFleet, DevFleetStatus, StoppedProcess } from "../dev/fleet.js";
import { renderTable } from "./admin/table.js";
import { cliCommand, pathExport, shellWord } from "./invocation.js";

/**
 * `imgfleet dev fleet up|down|status`: a whole fleet on this machine for
 * development and tests (see src/dev/fleet.ts). The launcher module loads
 * only when one of these runs.
 */

const DEFAULT_DIR = "./.imgfleet-fleet";

interface DirFlags {
  dir: string;
}

interface UpFlags extends DirFlags {
  api: number;
  workers: number;
  fresh?: boolean;
}

export function registerDevCommands(program: Command): void {
  const fleet = program
    .command("dev")
    .description("development tools")
    .command("fleet")
    .description(
      "a whole fleet on 127.0.0.1: 3 NATS servers, PostgreSQL, API, worker and control nodes, HAProxy in front",
    );
  fleet
    .command("up")
    .description("start a fleet in the background and wait until every process is ready")
    .option("--dir <dir>", "state directory: fleet.json, logs, data", DEFAULT_DIR)
    .option("--api <n>", "API nodes", count, 2)
    .option("--workers <n>", "worker nodes (one worker process each)", count, 2)
    .option("--fresh", "first delete the data a previous fleet left in --dir")
    .action((flags: UpFlags) => run(() => up(flags)));
  fleet
    .command("down")
    .description("stop exactly the processes the fleet in --dir started")
    .option("--dir <dir>", "state directory", DEFAULT_DIR)
    .action((flags: DirFlags) => run(() => down(flags)));
  fleet
    .command("status")
    .description("each process of the fleet: alive, ready")
    .option("--dir <dir>", "state directory", DEFAULT_DIR)
    .option("--json", "print JSON")
    .action((flags: DirFlags & { json?: boolean }) => run(() => status(flags)));
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new InvalidArgumentError("a whole number from 1 to 16");
  return n;
}

/** Known failures print one line (no stack) and exit 1. */
async function run(action: () => Promise<number>): Promise<void> {
  const { FleetRunningError, MissingBinaryError, ProcessStartError } = await import("../dev/fleet.js");
  try {
    process.exitCode = await action();
  } catch (error) {
    const known = [FleetRunningError, MissingBinaryError, ProcessStartError].some(
      (type) => error instanceof type,
    );
    if (!known && !(error instanceof Error && error.name === "AbortError")) throw error;
    process.stderr.write(`imgfleet: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}

async function up(flags: UpFlags): Promise<number> {
  const { startDevFleet } = await import("../dev/fleet.js");
  const stateDir = path.resolve(flags.dir);
  const interrupted = new AbortController();
  const onSignal = () =>
    interrupted.abort(
      Object.assign(new Error("interrupted: stopped every process started so far"), { name: "AbortError" }),
    );
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.stderr.write(`starting a dev fleet in ${stateDir} (this takes a while on two cores)…\n`);
  try {
    const fleet = await startDevFleet({
      stateDir,
      apiNodes: flags.api,
      workerNodes: flags.workers,
      fresh: flags.fresh === true,
      signal: interrupted.signal,
    });
    process.stdout.write(describeFleet(fleet));
    return 0;
  } catch (error) {
    if (interrupted.signal.aborted) throw interrupted.signal.reason;
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export function describeFleet(
  fleet: Pick<DevFleet, "url" | "adminKey" | "stateDir" | "processes" | "process">,
): string {
  const rows = [
    { name: "load balancer", url: fleet.url, pid: fleet.process("haproxy").pid(), log: "" },
    ...fleet.processes
      .filter((p) => p.role !== "haproxy")
      .map((p) => ({ name: p.name, url: p.url, pid: p.pid(), log: p.logFile })),
  ];
  const table = renderTable(rows, [
    { header: "PROCESS", value: (r) => r.name },
    { header: "URL", value: (r) => r.url },
    { header: "PID", value: (r) => r.pid, align: "right" },
    { header: "LOG", value: (r) => r.log },
  ]);
  const exports = [
    `export ${CLI_ENV.url}=${fleet.url}`,
    ...(fleet.adminKey ? [`export ${CLI_ENV.adminKey}=${fleet.adminKey}`] : []),
    pathExport(),
  ].map((line) => `  ${line}\n`);
  const key = fleet.adminKey
    ? `admin key: ${fleet.adminKey}\n`
    : "admin key: not printed by this start (the database was not empty); use the one from its first start,\nor start again with --fresh.\n";
  // The state directory by its full path: these lines work pasted in any directory.
  const where = `--dir ${shellWord(fleet.stateDir)}`;
  return (
    `dev fleet running (state in ${fleet.stateDir})\n\n${table}\n\n${key}\n${exports.join("")}\n` +
    `nodes:  ${cliCommand("nodes")}\nstatus: ${cliCommand(`dev fleet status ${where}`)}\nstop:   ${cliCommand(`dev fleet down ${where}`)}\n`
  );
}

async function down(flags: DirFlags): Promise<number> {
  const { stopDevFleet } = await import("../dev/fleet.js");
  const stopped: StoppedProcess[] = await stopDevFleet(flags.dir);
  if (stopped.length === 0) {
    process.stderr.write(`imgfleet: no dev fleet in ${path.resolve(flags.dir)} (no fleet.json)\n`);
    return 1;
  }
  process.stdout.write(
    `${renderTable(stopped, [
      { header: "PROCESS", value: (r) => r.name },
      { header: "PID", value: (r) => r.pid, align: "right" },
      { header: "RESULT", value: (r) => r.outcome },
    ])}\n`,
  );
  return 0;
}

async function status(flags: DirFlags & { json?: boolean }): Promise<number> {
  const { devFleetStatus } = await import("../dev/fleet.js");
  const fleet: DevFleetStatus | undefined = await devFleetStatus(flags.dir);
  if (!fleet) {
    process.stderr.write(`imgfleet: no dev fleet in ${path.resolve(flags.dir)} (no fleet.json)\n`);
    return 1;
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(fleet, null, 2)}\n`);
  } else {
    process.stdout.write(
      `${fleet.status}: ${fleet.url} (state in ${fleet.stateDir})\n\n${renderTable(fleet.processes, [
        { header: "PROCESS", value: (p) => p.name },
        { header: "ROLE", value: (p) => p.role },
        { header: "PID", value: (p) => p.pid, align: "right" },
        { header: "ALIVE", value: (p) => (p.alive ? "yes" : "no") },
        { header: "READY", value: (p) => (p.ready ? "yes" : "no") },
        { header: "URL", value: (p) => p.url },
      ])}\n`,
    );
  }
  return fleet.processes.every((p) => p.ready) ? 0 : 1;
}
