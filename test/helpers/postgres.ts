import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type net from "node:net";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe } from "vitest";
import type { Database } from "../../src/db/database.js";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { PostgresDatabase } from "../../src/db/postgres-database.js";
import { freePort } from "../../src/dev/ports.js";
import {
  findPostgresBinDir,
  type PostgresServer,
  startPostgresServer,
} from "../../src/dev/postgres-server.js";
import { isCI } from "./ci.js";

/**
 * Real, throwaway PostgreSQL servers for tests: each one a fresh cluster in a
 * temporary directory on a free port, trusting local connections, tuned for
 * speed over durability (fsync off). Starting one is `src/dev/postgres-server.ts`;
 * this file adds what only tests need: the SKIPPED/CI rule, and making sure a
 * test process that dies takes its servers with it.
 */

export type { PostgresServer };
/** A port nothing listens on right now (the OS picks it; another process could take it before we do). */
export { freePort };

const SKIPPED_LINE =
  "\n*** SKIPPED: PostgreSQL suites — initdb not found; install the Debian package 'postgresql' ***\n";

export const hasPostgres = findPostgresBinDir() !== undefined;
if (!hasPostgres) {
  // CI installs the package (.ci/run): a missing server there is a broken setup, not a reason to skip.
  if (isCI()) {
    throw new Error(
      "PostgreSQL is required in CI but initdb was found neither on PATH nor in /usr/lib/postgresql/*/bin",
    );
  }
  console.warn(SKIPPED_LINE);
}

/** Postmasters of this test process, by pid, with their watchdogs. */
const running = new Map<number, ChildProcess>();
let exitHookInstalled = false;

/** A test process that dies (uncaught error, process.exit) takes its servers with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    // Immediate shutdown: nothing in a throwaway cluster is worth a checkpoint.
    for (const pid of running.keys()) {
      try {
        process.kill(pid, "SIGQUIT");
      } catch {
        // Already gone.
      }
    }
  });
}

/** Starts a fresh server; `stop` shuts it down and deletes its files. */
export async function startPostgres(): Promise<PostgresServer> {
  if (!hasPostgres) throw new Error(SKIPPED_LINE.trim());
  installExitHook();
  return startPostgresServer({
    onSpawn(pid, dir) {
      running.set(pid, startWatchdog(pid, dir));
    },
    onRelease(pid) {
      // Our own shutdown follows; the watchdog must not race it to the directory.
      running.get(pid)?.kill("SIGKILL");
      running.delete(pid);
    },
  });
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
