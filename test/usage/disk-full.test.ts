import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { createNode, type ImgfleetNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import type { MeterRecord } from "../../src/usage/model.js";
import { UsageSpool } from "../../src/usage/spool/usage-spool.js";
import { solidImage } from "../helpers/images.js";
import { adminCall } from "../helpers/node.js";

/*
 * A real full disk: the node's data directory is a small tmpfs, filled with
 * a file while the node runs, then freed. Mounting needs root, which CI has
 * (.ci/run runs as root); elsewhere the suite is skipped loudly, and under
 * CI=true it fails instead.
 */
const IS_ROOT = process.getuid?.() === 0;
if (!IS_ROOT) {
  if (process.env.CI) throw new Error("the disk-full suite needs root to mount a tmpfs, and CI runs as root");
  console.warn("SKIPPED test/usage/disk-full.test.ts: mounting a tmpfs needs root");
}

/** A fresh PGlite is some 40 MB; the rest is room for a few requests before the filler takes it all. */
const TMPFS_SIZE = "96m";
const TEST_TIMEOUT_MS = 240_000;
/** Readiness comes back within a probe or two (1 s each); this allows for a loaded CI machine. */
const RECOVERY_WITHIN_MS = 60_000;

interface LogLine {
  level: number;
  msg: string;
  time: number;
  status?: number;
  problem?: string;
  repeats?: number;
}

function mountTmpfs(size = TMPFS_SIZE): string {
  const dir = mkdtempSync(join(tmpdir(), "imgfleet-disk-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  onTestFinished(() => {
    execFileSync("umount", ["-l", dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Writes until the filesystem refuses a byte more. */
function fill(file: string): void {
  const fd = openSync(file, "w");
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function startOn(dataDir: string, lines: LogLine[]): Promise<{ node: ImgfleetNode; url: string }> {
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      server: { port: 0, host: "127.0.0.1" },
      workers: { count: 1 },
      auth: { tenantDefaults: { ratePerSecond: 10_000, burst: 10_000, maxInFlight: 1000 } },
      usage: { flushIntervalMs: 50, confirmIntervalMs: 20 },
    },
  });
  const node = await createNode(config, { logger });
  onTestFinished(async () => void (await node.stop()));
  return { node, url: await node.listen() };
}

async function readiness(url: string): Promise<{ status: number; reasons: string[] }> {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { reasons?: string[] };
  return { status: res.status, reasons: body.reasons ?? [] };
}

async function problemOf(res: Response): Promise<{ type?: string; path?: string }> {
  return (await res.json()) as { type?: string; path?: string };
}

async function okRequests(node: ImgfleetNode, tenant: string): Promise<number> {
  const [row] = await node.adapters.db.query<{ n: number | null }>(
    `SELECT sum(requests)::bigint AS n FROM usage_rollups
     WHERE granularity = 'day' AND tenant_id = $1 AND outcome = 'ok'`,
    [tenant],
  );
  return Number(row?.n ?? 0);
}

describe.skipIf(!IS_ROOT)("a node whose disk fills and is freed while it runs", () => {
  it(
    "says not ready with the path, answers 503 storage-full (never 500, never an unbilled 200), logs the cause once per interval, and recovers by itself",
    async () => {
      const mount = mountTmpfs();
      const dataDir = join(mount, "data");
      mkdirSync(dataDir);
      const lines: LogLine[] = [];
      const { node, url } = await startOn(dataDir, lines);
      const adminKey = node.identity.bootstrapKey?.secret as string;
      const admin = (method: string, path: string, body?: unknown) =>
        adminCall(url, adminKey, method, path, body);
      const tenant = ((await (await admin("POST", "/tenants", { name: "payer" })).json()) as { id: string })
        .id;
      const key = (await (await admin("POST", `/tenants/${tenant}/keys`, { scopes: ["resize"] })).json()) as {
        secret: string;
      };
      const image = await solidImage(64, 48);
      const resize = () =>
        fetch(`${url}/v1/resize?w=32&format=png`, {
          method: "POST",
          body: image,
          headers: { "content-type": "image/png", authorization: `Bearer ${key.secret}` },
        });
      let served = 0;
      expect((await resize()).status).toBe(200);
      served += 1;
      expect((await readiness(url)).status).toBe(200);

      // The disk fills.
      const filler = join(mount, "filler");
      fill(filler);
      const fullSince = Date.now();
      const nearlyFull = await readiness(url);
      expect(nearlyFull.status).toBe(503);
      expect(nearlyFull.reasons.join("; ")).toContain(dataDir);

      // Requests: a few may still fit in the spool file's last page (and are billed); then every one is refused.
      const statuses: number[] = [];
      let refusedInARow = 0;
      for (let i = 0; i < 500 && refusedInARow < 30; i++) {
        const res = await resize();
        statuses.push(res.status);
        if (res.status === 200) {
          served += 1;
          refusedInARow = 0;
          await res.arrayBuffer();
          continue;
        }
        refusedInARow += 1;
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
        expect(res.headers.get("etag")).toBeNull();
        const problem = await problemOf(res);
        expect(problem.type).toBe("/problems/storage-full");
      }
      expect(refusedInARow).toBe(30);
      const refused = statuses.filter((s) => s === 503).length;

      const full = await readiness(url);
      expect(full.status).toBe(503);
      expect(full.reasons.join("; ")).toContain(
        `disk full: the usage spool cannot write ${join(dataDir, "usage", "spool")}`,
      );

      // Admin writes: some may still fit in a table's last page; the first that does not is a 503, never a 500.
      const adminStatuses: number[] = [];
      for (let i = 0; i < 300; i++) {
        const res = await admin("POST", "/tenants", { name: `while-full-${i}` });
        adminStatuses.push(res.status);
        if (res.status === 201) continue;
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
        expect((await problemOf(res)).type).toBe("/problems/storage-full");
        break;
      }
      expect(adminStatuses.at(-1)).toBe(503);
      // A checkpoint on a full disk is a PostgreSQL PANIC: PGlite aborts, and stays answerable as storage-full.
      await expect(node.adapters.db.exec("CHECKPOINT")).rejects.toThrow(/disk|full|space/i);
      for (const [method, path, body] of [
        ["GET", "/tenants", undefined],
        ["POST", "/tenants", { name: "after-panic" }],
      ] as const) {
        const res = await admin(method, path, body);
        expect(res.status, `${method} ${path}`).toBe(503);
        expect((await problemOf(res)).type).toBe("/problems/storage-full");
      }
      const dbDown = await readiness(url);
      expect(dbDown.reasons.join("; ")).toContain(
        `the embedded database cannot write ${join(dataDir, "pglite")}`,
      );

      // Logs: the cause once (per 10 s interval, with a count), not one error line per refused request.
      const whileFull = lines.filter((l) => l.time >= fullSince);
      const spoolErrors = whileFull.filter(
        (l) => l.level >= 50 && l.msg.startsWith("could not write the usage spool"),
      );
      const intervals = Math.ceil((Date.now() - fullSince) / 10_000);
      expect(spoolErrors.length).toBeGreaterThanOrEqual(1);
      expect(spoolErrors.length).toBeLessThanOrEqual(intervals + 1);
      expect(spoolErrors[0]?.msg).toContain("disk full");
      const refusalLines = whileFull.filter((l) => l.problem === "storage-full");
      expect(refusalLines.length).toBe(refused + adminStatuses.filter((s) => s === 503).length + 2);
      for (const line of refusalLines) expect(line.level, line.msg).toBe(40);
      const errorLines = whileFull.filter((l) => l.level >= 50);
      expect(errorLines.length, errorLines.map((l) => l.msg).join("\n")).toBeLessThanOrEqual(
        2 * (intervals + 1),
      );
      // Readiness probes: a line when it changes, not an error line per probe.
      const notReady = whileFull.filter((l) => l.msg.startsWith("not ready: "));
      expect(notReady.length).toBeGreaterThanOrEqual(1);
      expect(notReady.length).toBeLessThanOrEqual(4);
      expect(whileFull.filter((l) => l.msg.startsWith("GET /readyz") && l.level > 20)).toEqual([]);

      // Space returns: ready again without a restart, and everything works.
      rmSync(filler);
      const deadline = Date.now() + RECOVERY_WITHIN_MS;
      let again = await readiness(url);
      while (again.status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        again = await readiness(url);
      }
      expect(again).toEqual({ status: 200, reasons: [] });
      expect((await resize()).status).toBe(200);
      served += 1;
      expect((await admin("POST", "/tenants", { name: "after-recovery" })).status).toBe(201);
      expect((await admin("GET", "/tenants")).status).toBe(200);

      // Usage equals the 200s served: none unbilled, none billed twice.
      expect(await node.usage.flush(RECOVERY_WITHIN_MS)).toBe(true);
      expect(await okRequests(node, tenant)).toBe(served);
    },
    TEST_TIMEOUT_MS,
  );
});

describe.skipIf(!IS_ROOT)("the usage spool on a disk that fills", () => {
  /** A record some 3 KB long, so that frames straddle the filesystem's 4 KiB pages. */
  const record = (i: number): MeterRecord => ({
    id: `req-${String(i).padStart(4, "0")}-${"x".repeat(3000)}`,
    tenant: "ten_a",
    key: "key_a",
    at: 1_700_000_000_000,
    op: "resize",
    status: 200,
    inBytes: 10,
    outBytes: 5,
    inPixels: 100,
    outPixels: 25,
    inFormat: "jpeg",
    outFormat: "webp",
    queueMs: 1,
    processMs: 3,
    cpuMs: 2.5,
  });

  it("cuts off the part of a frame a short write left, so the file stays valid and keeps every record it accepted", async () => {
    const mount = mountTmpfs("1m");
    const dir = join(mount, "spool");
    const options = { dir, node: "n1", maxBytes: 1 << 30, segmentBytes: 1 << 30, fsync: "always" } as const;
    const spool = await UsageSpool.open(options);
    const accepted: string[] = [];
    const append = (i: number) => {
      spool.append(record(i));
      accepted.push(record(i).id);
    };
    append(0);
    const filler = join(mount, "filler");
    fill(filler);
    const failures: Error[] = [];
    for (let i = 1; i < 100 && failures.length < 3; i++) {
      try {
        append(i);
      } catch (error) {
        failures.push(error as Error);
      }
    }
    // The page the last frame started in took part of the next: a short write, taken for a full disk.
    expect(failures.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(["ENOSPC", "ENOSPC", "ENOSPC"]);
    expect(failures.map((e) => e.message).join("\n")).toMatch(/short write to the usage spool/);
    const [segment] = readdirSync(dir).filter((name) => name.endsWith(".spool"));
    expect(statSync(join(dir, segment as string)).size).toBe(spool.bytes);

    rmSync(filler);
    append(1000);
    expect(spool.seal()?.records.map((r) => r.id)).toEqual(accepted);
    await spool.close();
    const reopened = await UsageSpool.open(options);
    onTestFinished(() => reopened.close());
    expect(reopened.recovery.truncatedBytes).toBe(0);
    const [batch] = reopened.pending();
    const read = await reopened.readBatch(batch as NonNullable<typeof batch>);
    expect(read.records.map((r) => r.id)).toEqual(accepted);
  });
});
