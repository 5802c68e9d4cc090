import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe } from "vitest";
import type { Database } from "../../src/db/database.js";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { PostgresDatabase } from "../../src/db/postgres-database.js";

/**
 * Real, throwaway PostgreSQL servers for tests: each one a fresh cluster in a
 * temporary directory on a free port, trusting local connections, tuned for
 * speed over durability (fsync off).
 */

const SKIPPED_LINE =
  "\n*** SKIPPED: PostgreSQL suites — initdb not found; install the Debian package 'postgresql' ***\n";
const STARTUP_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** Another process may take the free port between our probe and the server's bind. */
const PORT_ATTEMPTS = 3;
const STDERR_TAIL_CHARS = 4_000;
const USER = "imgfleet";

/** A directory holding both `initdb` and `postgres`: first on PATH, else Debian's newest major version. */
function findBinDir(): string | undefined {
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

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const binDir = findBinDir();
export const hasPostgres = binDir !== undefined;
if (!hasPostgres) {
  // CI installs the package (.ci/run): a missing server there is a broken setup, not a reason to skip.
  if (process.env.CI === "true") {
    throw new Error(
      "PostgreSQL is required in CI but initdb was found neither on PATH nor in /usr/lib/postgresql/*/bin",
    );
  }
  console.warn(SKIPPED_LINE);
}

export interface PostgresServer {
  /** `postgres://imgfleet@127.0.0.1:<port>/postgres`, no password (trust authentication). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

interface Identity {
  uid: number;
  gid: number;
}

/**
 * initdb and postgres refuse to run as root, and CI runs as root: then both run
 * as the `postgres` user the Debian package creates. Node's own uid/gid spawn
 * options rather than runuser/su, so the signals `stop` sends reach the
 * postmaster itself, not a wrapper that translates them.
 */
function serverIdentity(): Identity | undefined {
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

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A test process that dies (uncaught error, process.exit) takes its servers with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    // Immediate shutdown: nothing in a throwaway cluster is worth a checkpoint.
    for (const child of running) child.kill("SIGQUIT");
  });
}

/** Starts a fresh server; `stop` shuts it down and deletes its files. */
export async function startPostgres(): Promise<PostgresServer> {
  if (!binDir) throw new Error(SKIPPED_LINE.trim());
  const identity = serverIdentity();
  const dir = await mkdtemp(path.join(os.tmpdir(), "imgfleet-pg-"));
  try {
    if (identity) await chown(dir, identity.uid, identity.gid);
    const dataDir = path.join(dir, "data");
    await runToEnd(
      path.join(binDir, "initdb"),
      ["-D", dataDir, "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
      dir,
      identity,
    );
    return await launchOnFreePort(binDir, dir, dataDir, identity);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launchOnFreePort(
  bin: string,
  dir: string,
  dataDir: string,
  identity: Identity | undefined,
): Promise<PostgresServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(bin, dir, dataDir, port, identity);
    } catch (err) {
      const lostPortRace = err instanceof Error && /could not bind|already in use/i.test(err.message);
      if (!lostPortRace || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

async function launch(
  bin: string,
  dir: string,
  dataDir: string,
  port: number,
  identity: Identity | undefined,
): Promise<PostgresServer> {
  const args = ["-D", dataDir, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1"];
  for (const setting of ["fsync=off", "full_page_writes=off", "synchronous_commit=off"])
    args.push("-c", setting);
  const child = spawn(path.join(bin, "postgres"), args, {
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
    ...identity,
  });
  const stderr = tail(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const spawnFailed = new Promise<never>((_, reject) => child.once("error", reject));
  spawnFailed.catch(() => {});
  // Neither the server nor its log pipe should keep a finished test process alive: the exit hook ends it.
  child.unref();
  running.add(child);
  installExitHook();
  const watchdog = child.pid === undefined ? undefined : startWatchdog(child.pid, dir);
  const url = `postgres://${USER}@127.0.0.1:${port}/postgres`;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      running.delete(child);
      // Our own shutdown below; the watchdog must not race it to the directory.
      watchdog?.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT");
        if (!(await within(exited, SHUTDOWN_TIMEOUT_MS))) {
          child.kill("SIGKILL");
          await exited;
        }
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    await Promise.race([
      spawnFailed,
      exited.then(() => {
        throw new Error(`postgres exited while starting on port ${port}:\n${stderr()}`);
      }),
      waitUntilAccepting(url),
    ]);
  } catch (err) {
    running.delete(child);
    watchdog?.kill("SIGKILL");
    // A child that never started (spawn error) never exits either.
    if (child.pid !== undefined) {
      child.kill("SIGKILL");
      await within(exited, SHUTDOWN_TIMEOUT_MS);
    }
    throw err;
  }
  return { url, port, stop: () => stop() };
}

/**
 * A process outside ours that outlives a SIGKILLed test process (no 'exit'
 * hook runs then): it blocks reading a pipe from us, and when the pipe closes
 * it shuts the server down and deletes the directory.
 */
function startWatchdog(pid: number, dir: string): ChildProcess {
  const script = `read -r _ || true
kill -QUIT "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$1" 2>/dev/null
rm -rf "$2"`;
  const watchdog = spawn("sh", ["-c", script, "watchdog", String(pid), dir], {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
  });
  watchdog.on("error", () => {});
  watchdog.unref();
  (watchdog.stdin as net.Socket | null)?.unref();
  return watchdog;
}

/** The last few KB of the server's log, for the error when it does not start. */
function tail(child: ChildProcess): () => string {
  let text = "";
  const stream = child.stderr as net.Socket | null;
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk: string) => {
    text = (text + chunk).slice(-STDERR_TAIL_CHARS);
  });
  stream?.unref();
  return () => text;
}

async function waitUntilAccepting(url: string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (err) {
      last = err;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`PostgreSQL at ${url} did not accept connections within ${STARTUP_TIMEOUT_MS} ms`, {
    cause: last,
  });
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

/** A port nothing listens on right now (the OS picks it; another process could take it before we do). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
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

/** One server shared by the tests of the enclosing describe (or file): started in beforeAll, stopped after all. */
export function usePostgres(): () => string {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    server = await startPostgres();
    return () => server?.stop();
  });
  return () => {
    if (!server) throw new Error("the shared PostgreSQL server has not started");
    return server.url;
  };
}

/** Test settings for the pg adapter: small pool, short timeouts. */
export function postgresOptions(url: string) {
  return { url, poolMax: 4, connectTimeoutMs: 5_000, statementTimeoutMs: 30_000 };
}

/** A new, empty database on the server at `serverUrl`, so tests sharing a server share no tables. */
export async function createDatabase(serverUrl: string): Promise<string> {
  const name = `t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface DatabaseAdapter {
  name: "pglite" | "postgres";
  /** A fresh, empty database; the caller closes it. */
  open(): Promise<Database>;
}

const openPglite = () => PgliteDatabase.open("memory://");

/**
 * Every adapter available here (pglite always, postgres when installed), for
 * suites that loop themselves. Call it while collecting a suite: the postgres
 * server starts on the first `open` and stops after the enclosing describe.
 */
export function databaseAdapters(): DatabaseAdapter[] {
  const adapters: DatabaseAdapter[] = [{ name: "pglite", open: openPglite }];
  if (!hasPostgres) return adapters;
  let server: Promise<PostgresServer> | undefined;
  afterAll(async () => {
    await (await server?.catch(() => undefined))?.stop();
  });
  adapters.push({
    name: "postgres",
    open: async () => {
      server ??= startPostgres();
      const { url } = await server;
      return PostgresDatabase.open(postgresOptions(await createDatabase(url)));
    },
  });
  return adapters;
}

/**
 * Runs `body` once per adapter, as `<name> [pglite]` and `<name> [postgres]`.
 * `open` gives a fresh, empty database; every one opened is closed after each
 * test, so open in beforeEach or in the test, not in beforeAll.
 */
export function describeDatabases(name: string, body: (open: () => Promise<Database>) => void): void {
  describe(`${name} [pglite]`, () => {
    body(closedAfterEach(openPglite));
  });
  (hasPostgres ? describe : describe.skip)(`${name} [postgres]`, () => {
    const serverUrl = usePostgres();
    body(
      closedAfterEach(async () => PostgresDatabase.open(postgresOptions(await createDatabase(serverUrl())))),
    );
  });
}

function closedAfterEach(open: () => Promise<Database>): () => Promise<Database> {
  const opened: Database[] = [];
  // Registered before the body's own hooks, so it runs after them (vitest runs after-hooks in reverse).
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close()));
  });
  return async () => {
    const db = await open();
    opened.push(db);
    return db;
  };
}
