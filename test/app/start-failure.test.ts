import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, hasPostgres, usePostgres } from "../helpers/postgres.js";

const ROOT = join(import.meta.dirname, "../..");
const FIXTURE = join(import.meta.dirname, "fixtures/start-that-fails.ts");
/** Starting a node with a worker process on a loaded two-core machine takes seconds; exiting after it, less. */
const EXIT_WITHIN_MS = 60_000;
/** Past the kill, so a process that would not exit fails on its exit code, not on the test's time limit. */
const TEST_TIMEOUT_MS = EXIT_WITHIN_MS + 30_000;

interface Run {
  /** Null when the process had to be killed: something kept it alive after the failed start. */
  code: number | null;
  events: { event: string; code?: string | null; message?: string; workerPids?: number[] }[];
  stderr: string;
}

/** Runs the fixture in its own process and waits for it to exit by itself. */
function startThatFails(dataDir: string, overrides: unknown): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", FIXTURE, dataDir, JSON.stringify(overrides)],
      { cwd: ROOT, timeout: EXIT_WITHIN_MS, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        const events = stdout
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as Run["events"][number]);
        resolve({ code, events, stderr });
      },
    );
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "imgfleet-start-failure-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function occupiedPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => server.close());
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("a node whose start fails part-way", () => {
  it(
    "stops its worker processes, database and timers and frees the data directory when its port is taken",
    async () => {
      const dataDir = tempDataDir();
      const port = await occupiedPort();
      const run = await startThatFails(dataDir, { server: { host: "127.0.0.1", port } });
      const [created, failed] = run.events;
      expect(created?.event, run.stderr).toBe("created");
      expect(created?.workerPids).toHaveLength(1);
      expect(failed).toMatchObject({ event: "failed", code: "EADDRINUSE" });
      // Said with the address and what to do.
      expect(failed?.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is already in use .*--port`));
      // The process ended by itself: no listener, timer, socket or child process held it.
      expect(run.code).toBe(0);
      for (const pid of created?.workerPids ?? []) expect(isAlive(pid)).toBe(false);
      expect(existsSync(join(dataDir, "imgfleet.pid"))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  describe.skipIf(!hasPostgres)("in a fleet role", () => {
    const postgresUrl = usePostgres();

    it(
      "closes its PostgreSQL pool and frees the data directory when NATS cannot be reached",
      async () => {
        const dataDir = tempDataDir();
        const natsPort = await freePort();
        const run = await startThatFails(dataDir, {
          roles: ["api"],
          database: { url: postgresUrl(), connectTimeoutMs: 2000 },
          fleet: {
            nats: { servers: [`nats://127.0.0.1:${natsPort}`], connectTimeoutMs: 500, connectAttempts: 1 },
            clusterSecret: "a".repeat(32),
          },
        });
        expect(run.events, run.stderr).toEqual([expect.objectContaining({ event: "failed" })]);
        expect(run.events[0]?.message).toMatch(/nats|connect|ECONNREFUSED/i);
        // An open pg pool or NATS reconnect timer would keep the process alive until it is killed.
        expect(run.code).toBe(0);
        expect(existsSync(join(dataDir, "imgfleet.pid"))).toBe(false);
      },
      TEST_TIMEOUT_MS,
    );
  });
});
