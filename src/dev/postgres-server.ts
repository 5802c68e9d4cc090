import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { delay } from "../util/time.js";
import {
  freePorts,
  isExecutable,
  logTail,
  processStartTime,
  type Spawned,
  spawnDetached,
} from "./processes.js";

/**
 * Local PostgreSQL servers for `imgfleet dev fleet` and the tests: initdb
 * into a directory, a free port on 127.0.0.1, trust authentication (only
 * local clients can reach it), fsync off (a development server trades
 * durability for speed), run as `postgres` when we are root.
 *
 * Two ways to run it: attached (the default, for tests: the server is our
 * child, its stderr kept in a bounded tail, and a temporary directory that
 * `stop` removes) and detached (for the dev fleet: own process group, output
 * to a log file, outlives the command that started it, data kept).
 */

export const POSTGRES_MISSING =
  "initdb and postgres not found on PATH nor in /usr/lib/postgresql/*/bin; install the Debian package 'postgresql'";
/** The superuser initdb creates; clients connect as it, without a password. */
export const POSTGRES_USER = "imgfleet";
const STARTUP_TIMEOUT_MS = 30_000;
/** A fast shutdown (SIGINT) that takes longer than this is escalated to SIGKILL. */
export const POSTGRES_SHUTDOWN_TIMEOUT_MS = 10_000;
/** Another process may take the free port between our probe and the server's bind. */
const PORT_ATTEMPTS = 3;
const STDERR_TAIL_CHARS = 4_000;
/** A Unix socket path longer than this (107 on Linux) makes postgres refuse to start; then TCP only. */
const MAX_SOCKET_PATH = 100;
const SPEED_OVER_DURABILITY = ["fsync=off", "full_page_writes=off", "synchronous_commit=off"];

/** A directory holding both `initdb` and `postgres`: first on PATH, else Debian's newest major version. */
export function findPostgresBinDir(): string | undefined {
  const onPath = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  const debian = "/usr/lib/postgresql";
  let versions: string[] = [];
  try {
    versions = readdirSync(debian)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    // No Debian packages installed.
  }
  const candidates = [...onPath, ...versions.map((v) => path.join(debian, v, "bin"))];
  return candidates.find(
    (dir) => isExecutable(path.join(dir, "initdb")) && isExecutable(path.join(dir, "postgres")),
  );
}

export interface Identity {
  uid: number;
  gid: number;
}

/**
 * initdb and postgres refuse to run as root, and CI runs as root: then both run
 * as the `postgres` user the Debian package creates. Node's own uid/gid spawn
 * options rather than runuser/su, so the signals `stop` sends reach the
 * postmaster itself, not a wrapper that translates them.
 */
export function postgresIdentity(): Identity | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    throw new Error(
      "running as root, which PostgreSQL refuses, and there is no 'postgres' user to run it as; install the Debian package 'postgresql'",
    );
  }
}

export interface PostgresServerOptions {
  /**
   * Directory for the cluster (`data/` inside it) and its socket. Given: created if
   * missing, initdb only when `data/` holds no cluster yet, kept by `stop`. Absent:
   * a new temporary directory that `stop` deletes.
   */
  dir?: string;
  /** Own process group, output appended to `logFile`, outlives the caller. Default false. */
  detached?: boolean;
  /** Where a detached server's output goes; default `<dir>/postgres.log`. */
  logFile?: string;
  /** Default: a free one (retried if another process takes it first). */
  port?: number;
  startupTimeoutMs?: number;
  /** Test harnesses: called right after each postmaster is spawned, before it is ready. */
  onSpawn?: (pid: number, dir: string) => void;
  /** Called before we stop (or give up on) that postmaster ourselves. */
  onRelease?: (pid: number) => void;
}

export interface PostgresServer {
  /** `postgres://imgfleet@127.0.0.1:<port>/postgres`, no password (trust authentication). */
  url: string;
  port: number;
  dir: string;
  /** True when this start ran initdb (an empty cluster). */
  initialized: boolean;
  logFile: string | undefined;
  pid(): number | undefined;
  /** Clock ticks since boot when the postmaster started (Linux), to tell it from a later process with its pid. */
  startTime(): number | undefined;
  running(): boolean;
  /** The last lines of its output. */
  logTail(): Promise<string>;
  /** Sends a signal (SIGKILL for a crash, SIGINT for a fast shutdown) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data (after `kill`, or stopping it first). */
  restart(): Promise<void>;
  /** Fast shutdown (SIGINT), SIGKILL after 10 s; deletes the directory if it was temporary. */
  stop(): Promise<void>;
}

/** Starts a server, running initdb first when its directory holds no cluster. */
export async function startPostgresServer(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const binDir = findPostgresBinDir();
  if (!binDir) throw new Error(POSTGRES_MISSING);
  const identity = postgresIdentity();
  const temporary = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), "imgfleet-pg-")));
  try {
    await mkdir(dir, { recursive: true });
    if (identity) await chown(dir, identity.uid, identity.gid);
    const dataDir = path.join(dir, "data");
    const initialized = !existsSync(path.join(dataDir, "PG_VERSION"));
    if (initialized) await initdb(binDir, dir, dataDir, identity);
    const plan: Plan = { binDir, dir, dataDir, identity, temporary, initialized, options };
    return await launchOnFreePort(plan);
  } catch (err) {
    if (temporary) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

interface Plan {
  binDir: string;
  dir: string;
  dataDir: string;
  identity: Identity | undefined;
  temporary: boolean;
  initialized: boolean;
  options: PostgresServerOptions;
}

async function initdb(binDir: string, dir: string, dataDir: string, identity: Identity | undefined) {
  await runToEnd(
    path.join(binDir, "initdb"),
    ["-D", dataDir, "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
    dir,
    identity,
  );
}

async function launchOnFreePort(plan: Plan): Promise<PostgresServer> {
  for (let attempt = 1; ; attempt++) {
    const [port = 0] = plan.options.port === undefined ? await freePorts(1) : [plan.options.port];
    try {
      return await launch(plan, port);
    } catch (err) {
      const lostPortRace = err instanceof Error && /could not bind|already in use/i.test(err.message);
      if (plan.options.port !== undefined || !lostPortRace || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

/** One running postmaster: the child (attached) or its detached record. */
interface Running {
  child: ChildProcess;
  pid: number;
  startTime: number | undefined;
  exited: Promise<void>;
  stderr: () => string;
}

function serverArgs(plan: Plan, port: number): string[] {
  const socketDir = path.join(plan.dir, `.s.PGSQL.${port}`).length <= MAX_SOCKET_PATH ? plan.dir : "";
  const args = ["-D", plan.dataDir, "-p", String(port), "-k", socketDir, "-c", "listen_addresses=127.0.0.1"];
  for (const setting of SPEED_OVER_DURABILITY) args.push("-c", setting);
  return args;
}

async function spawnServer(plan: Plan, port: number, logFile: string | undefined): Promise<Running> {
  const command = path.join(plan.binDir, "postgres");
  const args = serverArgs(plan, port);
  if (logFile) {
    const spawned: Spawned = await spawnDetached({
      command,
      args,
      cwd: plan.dir,
      logFile,
      ...plan.identity,
    });
    const exited = new Promise<void>((resolve) => spawned.child.once("exit", () => resolve()));
    return { ...spawned, exited, stderr: () => "" };
  }
  const child = spawn(command, args, {
    cwd: plan.dir,
    stdio: ["ignore", "ignore", "pipe"],
    ...plan.identity,
  });
  const stderr = tail(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("spawn", () => resolve());
  });
  // Neither the server nor its log pipe should keep a finished caller alive.
  child.unref();
  const pid = child.pid ?? 0;
  return { child, pid, startTime: processStartTime(pid), exited, stderr };
}

async function launch(plan: Plan, port: number): Promise<PostgresServer> {
  const { options } = plan;
  const logFile = options.detached ? (options.logFile ?? path.join(plan.dir, "postgres.log")) : undefined;
  const url = `postgres://${POSTGRES_USER}@127.0.0.1:${port}/postgres`;
  let current: Running | undefined;

  const isRunning = () =>
    current !== undefined && current.child.exitCode === null && current.child.signalCode === null;
  const output = async () => (logFile ? logTail(logFile) : (current?.stderr() ?? ""));
  const release = () => {
    if (current) options.onRelease?.(current.pid);
  };
  const kill = async (signal: NodeJS.Signals = "SIGINT") => {
    if (!current || !isRunning()) return;
    current.child.kill(signal);
    await current.exited;
  };
  const start = async () => {
    current = await spawnServer(plan, port, logFile);
    options.onSpawn?.(current.pid, plan.dir);
    const running = current;
    try {
      await Promise.race([
        running.exited.then(async () => {
          throw new Error(`postgres exited while starting on port ${port}:\n${await output()}`);
        }),
        waitUntilAccepting(url, options.startupTimeoutMs ?? STARTUP_TIMEOUT_MS),
      ]);
    } catch (err) {
      release();
      running.child.kill("SIGKILL");
      await within(running.exited, POSTGRES_SHUTDOWN_TIMEOUT_MS);
      throw err;
    }
  };
  const shutdown = async () => {
    if (!current) return;
    release();
    if (!isRunning()) return;
    current.child.kill("SIGINT");
    if (!(await within(current.exited, POSTGRES_SHUTDOWN_TIMEOUT_MS))) {
      current.child.kill("SIGKILL");
      await current.exited;
    }
  };

  await start();
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    dir: plan.dir,
    initialized: plan.initialized,
    logFile,
    pid: () => current?.pid,
    startTime: () => current?.startTime,
    running: isRunning,
    logTail: output,
    kill,
    async restart() {
      await shutdown();
      await start();
    },
    stop() {
      stopping ??= (async () => {
        await shutdown();
        if (plan.temporary) await rm(plan.dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** The last few KB of an attached server's stderr, for the error when it does not start. */
function tail(child: ChildProcess): () => string {
  let text = "";
  const stream = child.stderr;
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk: string) => {
    text = (text + chunk).slice(-STDERR_TAIL_CHARS);
  });
  (stream as { unref?: () => void } | null)?.unref?.();
  return () => text;
}

/** Polls with a real connection and `SELECT 1` until the server answers. */
export async function waitUntilAccepting(url: string, timeoutMs = STARTUP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await postgresAnswers(url)) return;
    } catch (err) {
      last = err;
    }
    await delay(50);
  }
  throw new Error(`PostgreSQL at ${url} did not accept connections within ${timeoutMs} ms`, {
    cause: last,
  });
}

/** One connection and `SELECT 1`; rejects with the connection error. */
export async function postgresAnswers(url: string, timeoutMs = 1_000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

async function runToEnd(file: string, args: string[], cwd: string, identity: Identity | undefined) {
  const child = spawn(file, args, { cwd, stdio: ["ignore", "pipe", "pipe"], ...identity });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  if (code !== 0)
    throw new Error(`${path.basename(file)} ${args.join(" ")} failed (exit ${code}):\n${output}`);
}

/** True when `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
