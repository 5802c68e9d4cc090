import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { BENCH_DIR, PROJECT_ROOT } from "./config.js";
import { freshDataDir, removeDataDir } from "./data-dirs.js";
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
  /** Sent with every request to this server (the authenticated imgfleet: its API key). */
  headers: Record<string, string>;
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

/**
 * Waits for the line that carries the port, draining stdout and stderr from
 * the start; every stderr line also goes to `onStderrLine`.
 */
function waitForPort(
  name: ServerName,
  child: ChildProcess,
  isListening: (parsed: Record<string, unknown>) => boolean,
  onStderrLine?: (line: string) => void,
): Promise<Omit<RunningServer, "stop">> {
  const startupLines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  let lines = 0;
  let port: number | undefined;
  return new Promise((resolvePort, reject) => {
    const stderr = drainLines(child.stderr, onStderrLine);
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
        headers: {},
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
  onStderrLine?: (line: string) => void,
) {
  try {
    const server = await waitForPort(name, child, isListening, onStderrLine);
    return { ...server, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

export type AuthMode = "none" | "keys";

export interface ImgfleetOptions {
  name: Exclude<ServerName, "ceiling">;
  /** `none` for the comparison with the ceiling (as measured before API keys existed); `keys` for the auth phase. */
  authMode: AuthMode;
  /** Sees stderr from the first byte: the bootstrap banner may be read before the listening line is. */
  onStderrLine?: (line: string) => void;
}

/**
 * imgfleet as shipped: compiled entry point, any free port, default log level
 * (info), its own empty data directory, removed once the process has exited.
 * auth.mode is set explicitly so an IMGFLEET_AUTH__MODE in the shell cannot
 * change what a phase measures.
 */
export function startImgfleet(options: ImgfleetOptions): Promise<RunningServer> {
  const entry = resolve(PROJECT_ROOT, "dist/cli/main.js");
  const dataDir = freshDataDir();
  const args = [entry, "start", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir];
  const child = track(
    spawn(process.execPath, args, {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, IMGFLEET_AUTH__MODE: options.authMode },
    }),
  );
  child.once("exit", () => removeDataDir(dataDir));
  return started(
    options.name,
    child,
    (p) => typeof p.msg === "string" && p.msg.startsWith("imgfleet listening on"),
    options.onStderrLine,
  );
}

export function startCeiling(): Promise<RunningServer> {
  const child = spawnTs(resolve(BENCH_DIR, "ceiling-server.ts"), []);
  return started("ceiling", child, () => true);
}
