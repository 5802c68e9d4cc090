import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import net from "node:net";
import { delimiter, join } from "node:path";
import { delay } from "../util/time.js";

/**
 * Detached processes for the dev fleet: each in its own process group, its
 * output in a log file, so it outlives the command that started it. A pid
 * alone is not an identity (pids are reused), so every record also keeps the
 * process's start time from /proc, and nothing is signalled unless both match.
 */

/** Lines of a log quoted in an error about its process. */
export const LOG_TAIL_LINES = 40;
const LOG_TAIL_BYTES = 16 * 1024;
const POLL_MS = 100;

/** A binary that is missing, with the Debian package that provides it. */
export class MissingBinaryError extends Error {
  override name = "MissingBinaryError";
  constructor(readonly missing: { binary: string; debianPackage: string }[]) {
    super(
      `${missing.map((m) => m.binary).join(", ")} not found (looked on PATH, in /usr/sbin and /usr/lib/postgresql/*/bin); ` +
        `install the Debian package${missing.length > 1 ? "s" : ""}: apt-get install ${missing
          .map((m) => m.debianPackage)
          .join(" ")}`,
    );
  }
}

/** A process that did not become ready, with the tail of its log. */
export class ProcessStartError extends Error {
  override name = "ProcessStartError";
  constructor(
    readonly processName: string,
    readonly reason: string,
    readonly logFile: string | undefined,
    readonly logTail: string,
    options?: ErrorOptions,
  ) {
    super(
      `${processName} ${reason}${logFile ? `; last lines of ${logFile}:` : ":"}\n${logTail || "(no output)"}`,
      options,
    );
  }
}

/** The first executable `name` on PATH, then in /usr/sbin and /usr/bin. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/sbin", "/usr/bin"];
  return dirs.map((dir) => join(dir, name)).find(isExecutable);
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface DetachedSpec {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Run as this user (PostgreSQL refuses root). */
  uid?: number;
  gid?: number;
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Clock ticks since boot when the process started (Linux); undefined elsewhere. */
  startTime: number | undefined;
}

/**
 * Spawns a process in its own process group with its output appended to
 * `logFile`, and lets go of it (`unref`): the caller may exit and the
 * process lives on. Throws when the executable cannot be run at all.
 */
export async function spawnDetached(spec: DetachedSpec): Promise<Spawned> {
  const fd = openSync(spec.logFile, "a", 0o600);
  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ["ignore", fd, fd],
      ...(spec.uid !== undefined && spec.gid !== undefined ? { uid: spec.uid, gid: spec.gid } : {}),
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  const failed = await new Promise<Error | undefined>((resolve) => {
    child.once("error", resolve);
    child.once("spawn", () => resolve(undefined));
  });
  if (failed || child.pid === undefined) {
    throw new Error(`could not run ${spec.command}: ${failed?.message ?? "no pid"}`, { cause: failed });
  }
  child.unref();
  return { child, pid: child.pid, startTime: processStartTime(child.pid) };
}

/** Field 22 of /proc/<pid>/stat, or undefined when there is no such process (or no /proc). */
export function processStartTime(pid: number): number | undefined {
  const stat = procStat(pid);
  const value = stat?.[19];
  return value === undefined ? undefined : Number(value);
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces): [0] is the state. */
function procStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text
      .slice(text.lastIndexOf(")") + 2)
      .trim()
      .split(" ");
  } catch {
    return undefined;
  }
}

const hasProc = (() => {
  try {
    accessSync("/proc/self/stat", constants.R_OK);
    return true;
  } catch {
    return false;
  }
})();

/**
 * True when `pid` runs and, if `startTime` is given, is the same process that
 * was recorded (not a later one that reused the pid). A zombie counts as gone.
 */
export function isAlive(pid: number, startTime?: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (hasProc) {
    const stat = procStat(pid);
    if (!stat || stat[0] === "Z" || stat[0] === "X") return false;
    return startTime === undefined || Number(stat[19]) === startTime;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface PidRecord {
  pid: number;
  startTime?: number | undefined;
}

export type StopOutcome = "stopped" | "killed" | "not-running";

/**
 * Sends `signal` to exactly this process, waits up to `timeoutMs` for it to
 * go, then SIGKILLs it. A pid now held by another process is left alone
 * ("not-running": ours is gone).
 */
export async function stopProcess(
  record: PidRecord,
  options: { signal?: NodeJS.Signals; timeoutMs?: number } = {},
): Promise<StopOutcome> {
  const { signal = "SIGTERM", timeoutMs = 10_000 } = options;
  if (!signalIfOurs(record, signal)) return "not-running";
  if (await waitUntilGone(record, timeoutMs)) return "stopped";
  if (!signalIfOurs(record, "SIGKILL")) return "stopped";
  await waitUntilGone(record, 10_000);
  return "killed";
}

/** Signals the process if it is still the recorded one; false when it is gone. */
export function signalIfOurs(record: PidRecord, signal: NodeJS.Signals): boolean {
  if (!isAlive(record.pid, record.startTime)) return false;
  try {
    process.kill(record.pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/** Resolves true once the process is gone, false if it still runs after `timeoutMs`. */
export async function waitUntilGone(record: PidRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(record.pid, record.startTime)) {
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS / 2);
  }
  return true;
}

/** The last `lines` lines of a log file (reads at most its last 16 KB). */
export async function logTail(file: string, lines = LOG_TAIL_LINES): Promise<string> {
  try {
    const handle = await open(file, "r");
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString("utf8").split("\n").filter(Boolean).slice(-lines).join("\n");
    } finally {
      await handle.close();
    }
  } catch {
    return "";
  }
}

export interface ReadyWait {
  /** Shown in errors: "nats-1", "api-2". */
  name: string;
  record: PidRecord;
  logFile?: string | undefined;
  /** Resolves true when ready; a throw counts as not ready yet. */
  probe: () => Promise<boolean>;
  /** Absolute time (Date.now()) after which waiting fails. */
  deadline: number;
  signal?: AbortSignal | undefined;
}

/**
 * Polls `probe` until it answers true, racing the process's exit and the
 * deadline; either failure quotes the tail of the process's log.
 */
export async function waitUntilReady(wait: ReadyWait): Promise<void> {
  let last: unknown;
  for (;;) {
    wait.signal?.throwIfAborted();
    if (!isAlive(wait.record.pid, wait.record.startTime)) {
      throw await startError(wait, "exited while starting");
    }
    try {
      if (await wait.probe()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= wait.deadline) throw await startError(wait, "was not ready in time", last);
    await delay(POLL_MS);
  }
}

async function startError(wait: ReadyWait, reason: string, cause?: unknown): Promise<ProcessStartError> {
  const tail = wait.logFile ? await logTail(wait.logFile) : "";
  return new ProcessStartError(wait.name, `(pid ${wait.record.pid}) ${reason}`, wait.logFile, tail, {
    cause,
  });
}

/** GET `url`: true on the expected status; false on anything else or no answer within `timeoutMs`. */
export async function httpAnswers(url: string, status = 200, timeoutMs = 1000): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status === status;
  } catch {
    return false;
  }
}

/**
 * `count` distinct ports free on 127.0.0.1 right now: all are held open until
 * every one is chosen, so two roles never get the same port. Another program
 * may still take one before its server binds (the start then fails with the log).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            if (typeof address === "object" && address) resolve(address.port);
            else reject(new Error("the OS gave no port"));
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
