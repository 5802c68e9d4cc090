import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Database } from "../../src/db/database.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { UsageArchive, utcDay } from "../../src/usage/archive.js";
import { InvalidMeterRecordError, UsageMeter } from "../../src/usage/meter.js";
import type { MeterRecord } from "../../src/usage/model.js";
import { UsageSpool } from "../../src/usage/spool/usage-spool.js";
import { solidImage } from "../helpers/images.js";
import { type RunningNode, startNode } from "../helpers/node.js";

interface OutcomeRow {
  outcome: string;
  requests: number;
  bytes_in: number;
  bytes_out: number;
  pixels_in: number;
  pixels_out: number;
}

async function rollupsByOutcome(db: Database, tenant: string): Promise<Record<string, OutcomeRow>> {
  const rows = await db.query<OutcomeRow>(
    `SELECT outcome, sum(requests)::bigint AS requests, sum(bytes_in)::bigint AS bytes_in, sum(bytes_out)::bigint AS bytes_out,
            sum(pixels_in)::bigint AS pixels_in, sum(pixels_out)::bigint AS pixels_out
     FROM usage_rollups WHERE granularity = 'day' AND tenant_id = $1 GROUP BY outcome`,
    [tenant],
  );
  return Object.fromEntries(rows.map((r) => [r.outcome, r]));
}

async function flushed(n: RunningNode): Promise<void> {
  expect(await n.node.usage.flush(15_000)).toBe(true);
}

const FAST_FLUSH = { usage: { flushIntervalMs: 50, confirmIntervalMs: 20 } };

describe("usage metering on a running node", () => {
  it("meters every answered request of a tenant, success or failure, with its bytes and pixels", async () => {
    const n = await startNode(FAST_FLUSH);
    const sizes: [number, number][] = [
      [300, 200],
      [640, 480],
      [120, 90],
    ];
    let bytesIn = 0;
    let bytesOut = 0;
    let pixelsIn = 0;
    let pixelsOut = 0;
    const ids: string[] = [];
    for (const [w, h] of sizes) {
      const image = await solidImage(w, h);
      const res = await n.post("/v1/resize?w=50&format=png", image);
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      ids.push(res.headers.get("x-request-id") as string);
      bytesIn += image.length;
      bytesOut += body.length;
      pixelsIn += w * h;
      pixelsOut += Number(res.headers.get("x-image-width")) * Number(res.headers.get("x-image-height"));
    }
    const bad = await n.post("/v1/resize?w=-5", await solidImage(10, 10));
    expect(bad.status).toBe(400);
    const broken = await n.post("/v1/resize?w=5", Buffer.from("not an image at all"));
    expect(broken.status).toBe(415);
    const unauthenticated = await fetch(`${n.url}/v1/resize?w=5`, { method: "POST", body: Buffer.from("x") });
    expect(unauthenticated.status).toBe(401);
    await flushed(n);

    const rollups = await rollupsByOutcome(n.node.adapters.db, n.tenant);
    expect(rollups.ok).toMatchObject({
      requests: 3,
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      pixels_in: pixelsIn,
      pixels_out: pixelsOut,
    });
    // The 401 has no tenant to bill; the 400 and the 415 are this tenant's.
    expect(rollups.client_error?.requests).toBe(2);
    const day = new Date().toISOString().slice(0, 10);
    const archived = await n.node.usage.archive.read(n.tenant, day);
    expect(archived.map((r) => r.id)).toEqual(expect.arrayContaining(ids));
    expect(archived).toHaveLength(5);
    expect(archived.find((r) => r.id === ids[1])).toMatchObject({
      status: 200,
      inFormat: "jpeg",
      outFormat: "png",
      inPixels: 640 * 480,
    });
    expect(archived.every((r) => r.cpuMs >= 0 && r.key?.startsWith("key_"))).toBe(true);
    expect(await n.metric("imgfleet_usage_spool_bytes")).toBe(0);
  });

  it("bills the worker's CPU of a resize, and of a job the worker failed, from the resize's own measurement", async () => {
    const n = await startNode(FAST_FLUSH);
    const photo = await solidImage(2400, 1800);
    const resized = await n.post("/v1/resize?w=1200&format=webp", photo);
    expect(resized.status).toBe(200);
    // Decodable header, truncated body: the probe accepts it, the worker spends CPU and fails.
    const truncated = (await solidImage(1600, 1200)).subarray(0, 2000);
    const failed = await n.post("/v1/resize?w=100", truncated);
    expect(failed.status).toBe(422);
    await flushed(n);
    const archived = await n.node.usage.archive.read(n.tenant, utcDay(Date.now()));
    const record = (res: Response) => archived.find((r) => r.id === res.headers.get("x-request-id"));
    expect(record(resized)).toMatchObject({ status: 200, inBytes: photo.length, outFormat: "webp" });
    expect(record(resized)?.cpuMs).toBeGreaterThan(0);
    expect(record(resized)?.processMs).toBeGreaterThan(0);
    expect(record(failed)).toMatchObject({
      status: 422,
      inBytes: truncated.length,
      outBytes: 0,
      inFormat: "jpeg",
    });
    expect(record(failed)?.cpuMs).toBeGreaterThan(0);
    const [row] = await n.node.adapters.db.query<{ cpu_ms: number }>(
      `SELECT sum(cpu_ms)::float8 AS cpu_ms FROM usage_rollups WHERE granularity = 'day' AND tenant_id = $1 AND outcome = 'ok'`,
      [n.tenant],
    );
    expect(row?.cpu_ms).toBeGreaterThan(0);
  });

  it("seals a batch on the size boundary at once, and on the time boundary later", async () => {
    const n = await startNode({ usage: { maxBatchRecords: 3, flushIntervalMs: 1500 } });
    const image = await solidImage(40, 30);
    for (let i = 0; i < 7; i++) expect((await n.post("/v1/resize?w=10", image)).status).toBe(200);
    expect(await n.metric("imgfleet_usage_batches_sealed_total")).toBe(2);
    expect(await n.metric("imgfleet_usage_records_buffered")).toBe(1);
    await vi.waitFor(async () => expect(await n.metric("imgfleet_usage_batches_sealed_total")).toBe(3), {
      timeout: 10_000,
      interval: 100,
    });
    await flushed(n);
    expect((await rollupsByOutcome(n.node.adapters.db, n.tenant)).ok?.requests).toBe(7);
  });

  it("meters a refused caller to its tenant: a 429 over the rate limit is a client error of that tenant", async () => {
    const n = await startNode(FAST_FLUSH);
    const limited = (await (
      await n.admin("POST", "/tenants", { name: "limited", ratePerSecond: 0.001, burst: 1 })
    ).json()) as { id: string };
    const key = (await (await n.admin("POST", `/tenants/${limited.id}/keys`, {})).json()) as {
      secret: string;
    };
    const image = await solidImage(40, 30);
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        (await n.post("/v1/resize?w=10", image, { authorization: `Bearer ${key.secret}` })).status,
      );
    expect(statuses).toEqual([200, 429, 429]);
    await flushed(n);
    const rollups = await rollupsByOutcome(n.node.adapters.db, limited.id);
    expect(rollups.ok?.requests).toBe(1);
    expect(rollups.client_error?.requests).toBe(2);
  });

  it("answers 503 metering-unavailable while the spool is full and the aggregator away, then serves again once it drains", async () => {
    const n = await startNode({
      usage: { flushIntervalMs: 20, spool: { maxBytes: 65_536, segmentBytes: 8192 } },
    });
    await n.node.usage.aggregator.stop();
    const image = await solidImage(20, 20);
    let refused: Response | undefined;
    for (let i = 0; i < 2000 && !refused; i++) {
      // A bad option: answered at once, metered all the same.
      const res = await n.post("/v1/resize?w=0", image);
      if (res.status === 503) refused = res;
      else expect(res.status).toBe(400);
    }
    expect(refused, "the spool never filled").toBeDefined();
    const problem = (await (refused as Response).json()) as { detail: string };
    expect(problem).toMatchObject({
      type: "/problems/metering-unavailable",
      status: 503,
      reason: "spool-full",
    });
    expect(problem.detail).toMatch(/usage spool is full/);
    expect(Number((refused as Response).headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await n.metric("imgfleet_usage_spool_bytes")).toBeGreaterThanOrEqual(65_536);
    expect((await n.post("/v1/resize?w=10", image)).status).toBe(503);

    n.node.usage.aggregator.start();
    await vi.waitFor(async () => expect((await n.post("/v1/resize?w=10", image)).status).toBe(200), {
      timeout: 15_000,
      interval: 200,
    });
  });

  it("with onFull: serve, keeps serving past the bound and counts the records it could not keep", async () => {
    const n = await startNode({
      usage: { flushIntervalMs: 20, spool: { maxBytes: 65_536, segmentBytes: 8192, onFull: "serve" } },
    });
    await n.node.usage.aggregator.stop();
    const image = await solidImage(20, 20);
    for (let i = 0; i < 600; i++) expect((await n.post("/v1/resize?w=0", image)).status).toBe(400);
    expect(await n.metric("imgfleet_usage_records_dropped_total", { reason: "spool-full" })).toBeGreaterThan(
      0,
    );
  });

  it("meters requests of an open node (auth.mode none) to the anonymous tenant", async () => {
    const n = await startNode({ ...FAST_FLUSH, auth: { mode: "none" } });
    const res = await fetch(`${n.url}/v1/resize?w=10`, {
      method: "POST",
      body: await solidImage(40, 30),
      headers: { "content-type": "image/jpeg" },
    });
    expect(res.status).toBe(200);
    await flushed(n);
    expect((await rollupsByOutcome(n.node.adapters.db, "anonymous")).ok?.requests).toBe(1);
  });

  it("archives raw records under usage.archiveDir when it is set (a directory the control nodes share)", async () => {
    const shared = mkdtempSync(join(tmpdir(), "imgfleet-shared-archive-"));
    onTestFinished(() => rmSync(shared, { recursive: true, force: true }));
    const n = await startNode({ usage: { ...FAST_FLUSH.usage, archiveDir: shared } });
    const res = await n.post("/v1/resize?w=20&format=png", await solidImage(40, 30));
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id");
    await flushed(n);
    const records = await new UsageArchive(shared, 30).read(n.tenant, utcDay(Date.now()));
    expect(records.map((r) => r.id)).toContain(requestId);
  });
});

describe("the meter's guard", () => {
  const record = (): MeterRecord => ({
    id: "req-1",
    tenant: "ten_a",
    key: "key_a",
    at: Date.now(),
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

  it("refuses a billed request that reaches it without its CPU, and journals one that has it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "imgfleet-meter-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const spool = await UsageSpool.open({
      dir,
      node: "n1",
      segmentBytes: 65_536,
      maxBytes: 1 << 20,
      fsync: "seal",
    });
    onTestFinished(() => spool.close());
    const meter = new UsageMeter({
      spool,
      settings: { ...loadConfig({ env: {} }).usage, maxBatchRecords: 100, flushIntervalMs: 60_000 },
      metrics: createMetrics().usage,
      logger: pino({ level: "silent" }),
      onSealed: () => {},
    });
    const { cpuMs: _cpu, ...withoutCpu } = record();
    // @ts-expect-error a record without cpuMs does not compile ...
    expect(() => meter.record(withoutCpu)).toThrow(InvalidMeterRecordError);
    // ... and one whose CPU went missing at run time is refused by name.
    expect(() => meter.record({ ...record(), cpuMs: undefined as unknown as number })).toThrow(/cpuMs/);
    expect(() => meter.record({ ...record(), cpuMs: Number.NaN })).toThrow(/cpuMs/);
    expect(spool.openRecords).toBe(0);
    meter.record(record());
    expect(spool.openRecords).toBe(1);
  });
});
