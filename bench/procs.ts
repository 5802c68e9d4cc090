import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { PROJECT_ROOT } from "./config.js";
import { removeAllDataDirs } from "./data-dirs.js";
import { descendants } from "./rss.js";

/** Every child the harness started and has not seen exit: stopped on exit, SIGINT and errors. */
const live = new Set<ChildProcess>();

/**
 * Runs a TypeScript file of bench/ as its own Node process (through tsx).
 * `env` adds variables: secrets go there rather than into argv, which `ps` shows.
 */
export function spawnTs(script: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return track(
    spawn(process.execPath, ["--import", "tsx", script, ...args], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    }),
  );
}

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL after `graceMs`; descendants still alive afterwards are killed too. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  const pid = child.pid;
  const family = pid === undefined ? [] : descendants(pid);
  if (!exited(child)) {
    const gone = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
  }
  for (const orphan of family.filter(alive)) process.kill(orphan, "SIGKILL");
}

/**
 * Processes the harness started that are not its tracked children: the local
 * fleet, whose processes are detached (their own process groups, so a
 * Ctrl-C in the terminal does not reach them) and stopped through its handle.
 */
export interface Stoppable {
  /** A clean stop, waited for. */
  stop(): Promise<void>;
  /** At exit, when nothing can be waited for: SIGKILL. */
  killNow(): void;
}

const stoppables = new Set<Stoppable>();

/** Stopped by stopAll, on SIGINT/SIGTERM and at exit until the returned function is called. */
export function trackStoppable(stoppable: Stoppable): () => void {
  stoppables.add(stoppable);
  return () => stoppables.delete(stoppable);
}

export async function stopAll(): Promise<void> {
  const others = [...stoppables].map(async (s) => {
    await s.stop();
    stoppables.delete(s);
  });
  await Promise.all([...others, ...[...live].map((child) => stopChild(child))]);
}

/** Last resort when the harness itself is exiting: no waiting possible, so SIGKILL. */
function killAllNow(): void {
  for (const stoppable of stoppables) stoppable.killNow();
  for (const child of live) {
    const family = child.pid === undefined ? [] : descendants(child.pid);
    child.kill("SIGKILL");
    for (const pid of family.filter(alive)) process.kill(pid, "SIGKILL");
  }
}

let interrupted = false;

/** True once SIGINT or SIGTERM arrived: failures after that are the interruption, not errors. */
export const wasInterrupted = () => interrupted;

export function installCleanup(): void {
  process.once("exit", () => {
    killAllNow();
    removeAllDataDirs();
  });
  // Kept installed (not `once`): a Ctrl-C reaches this process both from the
  // terminal and relayed by tsx's parent process, and a signal with no
  // listener left would end it before the fleet's detached processes are
  // stopped. Later signals wait for the first stop.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (interrupted) {
        process.stderr.write(`bench: ${signal} again; still stopping child processes\n`);
        return;
      }
      interrupted = true;
      process.stderr.write(`\nbench: ${signal}, stopping child processes\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** Keeps reading a stream to its end so the child never blocks on a full pipe; keeps the last lines. */
export function drainLines(
  stream: NodeJS.ReadableStream | null,
  onLine: (line: string) => void = () => {},
): () => string[] {
  const tail: string[] = [];
  if (!stream) return () => tail;
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    onLine(line);
  });
  return () => tail;
}
