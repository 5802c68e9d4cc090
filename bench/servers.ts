import { type ChildProcess, execFile, spawn } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { SERVER_HEAP_FLAGS } from "../src/app/heap-flags.js";
import { BENCH_DIR, PROJECT_ROOT } from "./config.js";
import { freshDataDir, removeDataDir } from "./data-dirs.js";
import { drainLines, spawnTs, stopChild, track } from "./procs.js";
import type { ImgfleetName, ProcessSet, ServerName, UsageAfterRun } from "./types.js";

const START_TIMEOUT_MS = 30_000;

export interface RunningServer {
  name: ServerName;
  url: string;
  /** The server's process: its tree is what a measurement counts, unless `processes` says otherwise. */
  pid: number;
  child?: ChildProcess;
  /** Several process trees counted as this server (the fleet); default: the tree of `pid`. */
  processes?: ProcessSet;
  /** Clock ticks per 250 ms below which the server counts as quiet (default 3; the idle fleet takes more). */
  quietTicks?: number;
  /** How its usage pipeline is read and drained after a run (the fleet: every node); default: its own /metrics. */
  usageAfterRun?: () => Promise<UsageAfterRun | undefined>;
  /** Log lines seen before listening (imgfleet: worker count, jemalloc). */
  startupLines: string[];
  /** Sent with every request to this server (the authenticated imgfleet: its API key). */
  headers: Record<string, string>;
  /** imgfleet only: what the harness set, and the configuration it started with (`imgfleet config print`). */
  imgfleet?: { overrides: ImgfleetOverrides; config: unknown };
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

/** Config keys the harness sets on an imgfleet, over any IMGFLEET_* variable of the shell. */
export interface ImgfleetOverrides {
  "auth.mode": "none" | "keys";
  "usage.enabled": boolean;
  "ops.sampling": boolean;
  "ops.sampleIntervalMs": number;
}

/** ops.sampleIntervalMs as shipped: the metric history's sampler scrapes every node this often. */
export const DEFAULT_SAMPLE_INTERVAL_MS = 15_000;
/** The sampling phase's variant: 15 times the default rate, an upper bound on what sampling costs. */
export const BENCH_SAMPLE_INTERVAL_MS = 1_000;

/** Sampling as shipped (on, every 15 s): every server but the sampling phase's two. */
const SHIPPED_SAMPLING = {
  "ops.sampling": true,
  "ops.sampleIntervalMs": DEFAULT_SAMPLE_INTERVAL_MS,
} as const;

/**
 * Every imgfleet the harness starts, and what it sets on it. Set explicitly,
 * defaults included, so that the shell's IMGFLEET_AUTH__MODE,
 * IMGFLEET_USAGE__ENABLED or IMGFLEET_OPS__* cannot change what a phase
 * measures. Metering is on (its default) everywhere but on the metering
 * phase's baseline; sampling is as shipped everywhere but in the sampling phase.
 */
export const IMGFLEET_OVERRIDES: Readonly<Record<ImgfleetName, ImgfleetOverrides>> = {
  /** The matrix (against the ceiling) and the auth phase's baseline. */
  imgfleet: { "auth.mode": "none", "usage.enabled": true, ...SHIPPED_SAMPLING },
  /** The auth phase's variant. */
  "imgfleet-auth": { "auth.mode": "keys", "usage.enabled": true, ...SHIPPED_SAMPLING },
  /** The metering phase's baseline, */
  "imgfleet-unmetered": { "auth.mode": "none", "usage.enabled": false, ...SHIPPED_SAMPLING },
  /** and its variant: requests metered to the tenant `anonymous`. */
  "imgfleet-metered": { "auth.mode": "none", "usage.enabled": true, ...SHIPPED_SAMPLING },
  /** The sampling phase's baseline: no metric history at all, */
  "imgfleet-unsampled": {
    "auth.mode": "none",
    "usage.enabled": true,
    "ops.sampling": false,
    "ops.sampleIntervalMs": DEFAULT_SAMPLE_INTERVAL_MS,
  },
  /** and its variant: sampling 15 times as often as shipped. */
  "imgfleet-sampled": {
    "auth.mode": "none",
    "usage.enabled": true,
    "ops.sampling": true,
    "ops.sampleIntervalMs": BENCH_SAMPLE_INTERVAL_MS,
  },
};

/** The IMGFLEET_* variables that set `o`. */
export const overrideEnv = (o: ImgfleetOverrides): Record<string, string> => ({
  IMGFLEET_AUTH__MODE: o["auth.mode"],
  IMGFLEET_USAGE__ENABLED: String(o["usage.enabled"]),
  IMGFLEET_OPS__SAMPLING: String(o["ops.sampling"]),
  IMGFLEET_OPS__SAMPLE_INTERVAL_MS: String(o["ops.sampleIntervalMs"]),
});

/** The compiled CLI (`npm run bench` builds dist/ first): every imgfleet the harness starts, fleet nodes included. */
export const IMGFLEET_ENTRY = resolve(PROJECT_ROOT, "dist/cli/main.js");

/** What `imgfleet config print` says for the same flags and environment: the configuration the server starts with. */
async function effectiveConfig(flags: string[], env: NodeJS.ProcessEnv): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [IMGFLEET_ENTRY, "config", "print", ...flags],
    {
      cwd: PROJECT_ROOT,
      env,
    },
  );
  return JSON.parse(stdout) as unknown;
}

export interface ImgfleetOptions {
  name: ImgfleetName;
  /** Sees stderr from the first byte: the bootstrap banner may be read before the listening line is. */
  onStderrLine?: (line: string) => void;
}

/**
 * imgfleet as shipped: compiled entry point, any free port, default log level
 * (info), its own empty data directory, removed once the process has exited;
 * IMGFLEET_OVERRIDES of its name set in its environment.
 */
export async function startImgfleet(options: ImgfleetOptions): Promise<RunningServer> {
  const overrides = IMGFLEET_OVERRIDES[options.name];
  const dataDir = freshDataDir();
  const flags = ["--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir];
  const env = { ...process.env, ...overrideEnv(overrides) };
  const config = await effectiveConfig(flags, env).catch((error: unknown) => {
    removeDataDir(dataDir);
    throw error;
  });
  const child = track(
    spawn(process.execPath, [...SERVER_HEAP_FLAGS, IMGFLEET_ENTRY, "start", ...flags], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env,
    }),
  );
  child.once("exit", () => removeDataDir(dataDir));
  const server = await started(
    options.name,
    child,
    (p) => typeof p.msg === "string" && p.msg.startsWith("imgfleet listening on"),
    options.onStderrLine,
  );
  return { ...server, imgfleet: { overrides, config } };
}

export function startCeiling(): Promise<RunningServer> {
  const child = spawnTs(resolve(BENCH_DIR, "ceiling-server.ts"), []);
  return started("ceiling", child, () => true);
}

function parsedLines(lines: string[]): unknown[] {
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as unknown];
    } catch {
      return [line];
    }
  });
}

/** A server as the results keep it: what the harness set, the effective config, its log up to listening. */
export function serverInfo(server: RunningServer) {
  return {
    name: server.name,
    overrides: server.imgfleet?.overrides ?? null,
    config: server.imgfleet?.config ?? null,
    startup: parsedLines(server.startupLines),
    logLines: server.stdoutLines(),
  };
}

export type ServerInfo = ReturnType<typeof serverInfo>;
