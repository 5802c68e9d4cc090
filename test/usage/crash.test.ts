import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { type ArchivedRecord, UsageArchive, utcDay } from "../../src/usage/archive.js";
import { type CliServer, startCliServer } from "../helpers/cli-server.js";
import { solidImage } from "../helpers/images.js";
import { adminCall, readMetric } from "../helpers/node.js";

const CYCLES = 6;
const CLIENTS = 4;
/** Batches seal every few requests and ship at once, so a random kill lands in flush, shipping or aggregation. */
const FAST_PIPELINE = {
  IMGFLEET_USAGE__FLUSH_INTERVAL_MS: "30",
  IMGFLEET_USAGE__MAX_BATCH_RECORDS: "4",
  IMGFLEET_USAGE__CONFIRM_INTERVAL_MS: "10",
  IMGFLEET_USAGE__RESHIP_AFTER_MS: "1000",
  IMGFLEET_USAGE__SPOOL__SEGMENT_BYTES: "4096",
  IMGFLEET_LOG__LEVEL: "info",
};

interface Seen {
  tenant: string;
  status: number;
  inBytes: number;
  outBytes: number;
}

/** Clients that send resizes until told to stop, noting what they saw answered and what was cut off. */
async function load(server: CliServer, keys: Map<string, string>, cycle: number, stop: { now: boolean }) {
  const images = await Promise.all([solidImage(120, 80), solidImage(300, 200), solidImage(64, 64, "png")]);
  const answered = new Map<string, Seen>();
  const cut = new Set<string>();
  const tenants = [...keys.keys()];
  const client = async (c: number) => {
    for (let n = 0; !stop.now; n++) {
      const id = `crash-${cycle}-${c}-${n}`;
      const tenant = tenants[n % tenants.length] as string;
      const image = images[(n + c) % images.length] as Buffer;
      // One in ten is refused for a bad option: failures are billed as failures.
      const query = n % 10 === 9 ? "w=0" : "w=40&format=webp";
      try {
        const res = await fetch(`${server.url}/v1/resize?${query}`, {
          method: "POST",
          body: image,
          headers: {
            authorization: `Bearer ${keys.get(tenant)}`,
            "content-type": "image/jpeg",
            "x-request-id": id,
          },
        });
        const body = Buffer.from(await res.arrayBuffer());
        answered.set(id, {
          tenant,
          status: res.status,
          // A 429 is refused before the upload is read: no bytes came in.
          inBytes: res.status === 429 ? 0 : image.length,
          outBytes: res.status === 200 ? body.length : 0,
        });
      } catch {
        cut.add(id);
        return;
      }
    }
  };
  const running = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  return { answered, cut, running };
}

async function archivedRecords(dataDir: string, tenants: string[]): Promise<ArchivedRecord[]> {
  const archive = new UsageArchive(join(dataDir, "usage", "archive"), 30);
  const days = new Set([utcDay(Date.now() - 3_600_000), utcDay(Date.now())]);
  const all: ArchivedRecord[] = [];
  for (const tenant of tenants) for (const day of days) all.push(...(await archive.read(tenant, day)));
  return all;
}

describe("usage survives crashes", () => {
  it("after repeated SIGKILLs at random points, rollups hold exactly the requests clients saw answered, each once", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-crash-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const args = ["--data-dir", dataDir, "--workers", "1"];
    let server = await startCliServer(args, FAST_PIPELINE);
    const adminKey = server.adminKey as string;
    const keys = new Map<string, string>();
    for (const name of ["crash-a", "crash-b"]) {
      const tenant = (await (await adminCall(server.url, adminKey, "POST", "/tenants", { name })).json()) as {
        id: string;
      };
      const key = await adminCall(server.url, adminKey, "POST", `/tenants/${tenant.id}/keys`, {});
      keys.set(tenant.id, ((await key.json()) as { secret: string }).secret);
    }

    const answered = new Map<string, Seen>();
    const cut = new Set<string>();
    const recoveries: string[] = [];
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      if (cycle > 1) server = await startCliServer(args, FAST_PIPELINE);
      recoveries.push(...server.logs.filter((l) => l.includes("sealed the batch that was open")));
      const stop = { now: false };
      const run = await load(server, keys, cycle, stop);
      await new Promise((r) => setTimeout(r, 400 + Math.random() * 1200));
      server.child.kill("SIGKILL");
      await server.exited;
      stop.now = true;
      await run.running;
      for (const [id, seen] of run.answered) answered.set(id, seen);
      for (const id of run.cut) cut.add(id);
    }

    // A last, clean start ships and aggregates whatever the kills left in the spool.
    server = await startCliServer(args, FAST_PIPELINE);
    recoveries.push(...server.logs.filter((l) => l.includes("sealed the batch that was open")));
    for (let i = 0; i < 300; i++) {
      const pending =
        (await readMetric(server.url, "imgfleet_usage_spool_bytes")) +
        (await readMetric(server.url, "imgfleet_usage_records_buffered"));
      if (pending === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await readMetric(server.url, "imgfleet_usage_spool_bytes")).toBe(0);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);

    const tenants = [...keys.keys()];
    const archived = await archivedRecords(dataDir, tenants);
    const archivedIds = archived.map((r) => r.id);
    const summary = `${answered.size} answered, ${cut.size} cut off by kills, ${archived.length} archived, ${recoveries.length} open batches recovered at restart`;
    // Each answered request exactly once; a request cut off by a kill at most once; nothing else.
    expect(new Set(archivedIds).size, summary).toBe(archivedIds.length);
    for (const id of answered.keys()) expect(archivedIds, `${id} was answered; ${summary}`).toContain(id);
    for (const id of archivedIds) expect(answered.has(id) || cut.has(id), `${id} unknown`).toBe(true);
    for (const r of archived) {
      const seen = answered.get(r.id);
      if (seen)
        expect([r.tenant, r.status, r.inBytes, r.outBytes]).toEqual([
          seen.tenant,
          seen.status,
          seen.inBytes,
          seen.outBytes,
        ]);
    }

    // The rollups hold exactly what the archive holds: count, bytes and pixels, per tenant and outcome.
    const db = await PgliteDatabase.open(join(dataDir, "pglite"));
    onTestFinished(() => db.close());
    const rows = await db.query<{
      tenant_id: string;
      outcome: string;
      requests: number;
      bytes_in: number;
      bytes_out: number;
      pixels_in: number;
      pixels_out: number;
    }>(
      `SELECT tenant_id, outcome, sum(requests)::bigint AS requests, sum(bytes_in)::bigint AS bytes_in,
                sum(bytes_out)::bigint AS bytes_out, sum(pixels_in)::bigint AS pixels_in, sum(pixels_out)::bigint AS pixels_out
         FROM usage_rollups WHERE granularity = 'day' GROUP BY tenant_id, outcome ORDER BY tenant_id, outcome`,
    );
    const expected = new Map<
      string,
      { requests: number; bytes_in: number; bytes_out: number; pixels_in: number; pixels_out: number }
    >();
    for (const r of archived) {
      const outcome = r.status < 400 ? "ok" : r.status < 500 ? "client_error" : "server_error";
      const key = `${r.tenant}/${outcome}`;
      const e = expected.get(key) ?? { requests: 0, bytes_in: 0, bytes_out: 0, pixels_in: 0, pixels_out: 0 };
      e.requests++;
      e.bytes_in += r.inBytes;
      e.bytes_out += r.outBytes;
      e.pixels_in += r.inPixels;
      e.pixels_out += r.outPixels;
      expected.set(key, e);
    }
    const actual = Object.fromEntries(
      rows.map(({ tenant_id, outcome, ...sums }) => [`${tenant_id}/${outcome}`, sums]),
    );
    expect(actual, summary).toEqual(Object.fromEntries(expected));
    expect(answered.size, summary).toBeGreaterThan(CYCLES * 10);
    console.info(`usage crash test: ${summary}`);
  }, 240_000);
});
