import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { BENCH_DIR, PROJECT_ROOT } from "./config.js";
import { drainLines, spawnTs, stopChild, track } from "./procs.js";
import type { ServerName } from "./types.js";

const START_TIMEOUT_MS = 30_000;

export interface RunningServer {
  name: ServerName;
  url: string;
  pid: number;
  child: ChildProcess;
  /** Log lines seen before listening (imgfleet: worker count, jemalloc). */
  startupLines: string[];
  /** Lines read from stdout so far: the pipe is drained for the whole life of the process. */
  stdoutLines(): number;
  /** Hands every later stdout line to `listener` until the returned function is called. */
  onLine(listener: (line: string) => void): () => void;
  stop(): Promise<void>;
}

function portOf(line: string, isListening: (parsed: Record<string, unknown>) => boolean): number | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    return isListening(parsed) && typeof parsed.port === "number" ? parsed.port : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for the line that carries the port, draining stdout and stderr from the start. */
function waitForPort(
  name: ServerName,
  child: ChildProcess,
  isListening: (parsed: Record<string, unknown>) => boolean,
): Promise<Omit<RunningServer, "stop">> {
  const startupLines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  let lines = 0;
  let port: number | undefined;
  return new Promise((resolvePort, reject) => {
    const stderr = drainLines(child.stderr);
    const fail = (why: string) => reject(new Error(`${name} did not start: ${why}\n${stderr().join("\n")}`));
    const timer = setTimeout(() => fail(`no listening line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once("exit", (code, signal) => fail(`exited (${signal ?? code})`));
    drainLines(child.stdout, (line) => {
      lines++;
      for (const listener of listeners) listener(line);
      if (port !== undefined) return;
      startupLines.push(line);
      port = portOf(line, isListening);
      if (port === undefined) return;
      clearTimeout(timer);
      resolvePort({
        name,
        url: `http://127.0.0.1:${port}`,
        pid: child.pid as number,
        child,
        startupLines,
        stdoutLines: () => lines,
        onLine(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      });
    });
  });
}

async function started(
  name: ServerName,
  child: ChildProcess,
  isListening: (p: Record<string, unknown>) => boolean,
) {
  try {
    const server = await waitForPort(name, child, isListening);
    return { ...server, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/** imgfleet as shipped: compiled entry point, any free port, default log level (info). */
export function startImgfleet(): Promise<RunningServer> {
  const entry = resolve(PROJECT_ROOT, "dist/cli/main.js");
  const child = track(
    spawn(process.execPath, [entry, "start", "--port", "0", "--host", "127.0.0.1"], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  return started(
    "imgfleet",
    child,
    (p) => typeof p.msg === "string" && p.msg.startsWith("imgfleet listening on"),
  );
}

export function startCeiling(): Promise<RunningServer> {
  const child = spawnTs(resolve(BENCH_DIR, "ceiling-server.ts"), []);
  return started("ceiling", child, () => true);
}
