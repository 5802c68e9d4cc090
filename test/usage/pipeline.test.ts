import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Database } from "../../src/db/database.js";
import { migrate } from "../../src/db/migrate.js";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { UsageAggregator } from "../../src/usage/aggregator.js";
import { UsageArchive } from "../../src/usage/archive.js";
import { MemoryUsageLog } from "../../src/usage/memory-usage-log.js";
import { UsageMeter } from "../../src/usage/meter.js";
import type { MeterRecord, UsageBatch } from "../../src/usage/model.js";
import { UsageShipper } from "../../src/usage/shipper.js";
import { UsageSpool } from "../../src/usage/spool/usage-spool.js";
import type { UsageLog } from "../../src/usage/usage-log.js";

const logger = pino({ level: "silent" });

/**
 * A transport that acknowledges every batch but silently loses every other new one, as a broker
 * losing acknowledged writes would — and, like JetStream, still drops a repeat of a dedupe id it has
 * acknowledged, so only a re-ship under a fresh dedupe id gets through.
 */
class LossyUsageLog implements UsageLog {
  #seen = 0;
  readonly #acknowledged = new Set<string>();
  lost = 0;
  constructor(private readonly inner: UsageLog) {}
  async publish(batch: UsageBatch, dedupeId = batch.id): Promise<void> {
    if (this.#acknowledged.has(dedupeId)) return;
    this.#acknowledged.add(dedupeId);
    if (this.#seen++ % 2 === 0) {
      this.lost++;
      return;
    }
    await this.inner.publish(batch, dedupeId);
  }
  consume(handle: (batch: UsageBatch) => Promise<void>) {
    return this.inner.consume(handle);
  }
  close() {
    return this.inner.close();
  }
}

function record(i: number, tenant = "ten_a"): MeterRecord {
  return {
    id: `req-${i}`,
    tenant,
    key: "key_a",
    at: Date.now(),
    op: "resize",
    status: i % 10 === 0 ? 400 : 200,
    inBytes: 1000 + i,
    outBytes: 100 + i,
    inPixels: 10_000,
    outPixels: 2_500,
    inFormat: "jpeg",
    outFormat: "webp",
    queueMs: 1,
    processMs: 4,
    cpuMs: 3,
  };
}

async function totals(db: Database) {
  const [row] = await db.query<{ requests: number; bytes_in: number; bytes_out: number }>(
    `SELECT coalesce(sum(requests), 0)::bigint AS requests, coalesce(sum(bytes_in), 0)::bigint AS bytes_in,
            coalesce(sum(bytes_out), 0)::bigint AS bytes_out
     FROM usage_rollups WHERE granularity = 'hour'`,
  );
  const [day] = await db.query<{ requests: number }>(
    "SELECT coalesce(sum(requests), 0)::bigint AS requests FROM usage_rollups WHERE granularity = 'day'",
  );
  return { ...row, dayRequests: day?.requests };
}

async function setup(options: { lossy?: boolean; maxBatchRecords?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "imgfleet-pipeline-"));
  const db = await PgliteDatabase.open(`memory://${dir}`);
  await migrate(db);
  const metrics = createMetrics().usage;
  const memory = new MemoryUsageLog({ capacity: 64 });
  const log = options.lossy ? new LossyUsageLog(memory) : memory;
  const archive = new UsageArchive(join(dir, "archive"), 30);
  const aggregator = new UsageAggregator({ db, log, archive, metrics, logger });
  const settings = loadConfig({
    env: {},
    overrides: { usage: { maxBatchRecords: options.maxBatchRecords ?? 5, flushIntervalMs: 60_000 } },
  }).usage;
  const openSpool = () =>
    UsageSpool.open({
      dir: join(dir, "spool"),
      node: "n1",
      maxBytes: 2 ** 30,
      segmentBytes: 2048,
      fsync: "never",
    });
  const spool = await openSpool();
  const newShipper = (s: UsageSpool) =>
    new UsageShipper({ spool: s, log, db, metrics, logger, confirmIntervalMs: 20, reshipAfterMs: 200 });
  const shipper = newShipper(spool);
  const meter = new UsageMeter({ spool, settings, metrics, logger, onSealed: (b) => shipper.offer(b) });
  onTestFinished(async () => {
    await shipper.stop();
    await aggregator.stop();
    await spool.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, db, metrics, log, aggregator, archive, spool, shipper, meter, openSpool, newShipper };
}

describe("usage pipeline: spool → shipper → usage log → aggregator", () => {
  it("counts a batch delivered twice once, and says so in the duplicates metric", async () => {
    const { db, aggregator, meter, spool, metrics } = await setup({ maxBatchRecords: 100 });
    for (let i = 1; i <= 7; i++) meter.record(record(i));
    const batch = spool.seal() as UsageBatch;
    await aggregator.apply(batch);
    await aggregator.apply(batch);
    await aggregator.apply(await spool.readBatch(spool.pending()[0] as never));
    expect(await totals(db)).toMatchObject({ requests: 7, dayRequests: 7 });
    expect((await metrics.duplicatesIgnored.get()).values[0]?.value).toBe(2);
  });

  it("loses no usage through a transport that drops acknowledged batches: unconfirmed batches ship again", async () => {
    const { db, aggregator, meter, spool, shipper, log, metrics } = await setup({ lossy: true });
    aggregator.start();
    shipper.start();
    const records = Array.from({ length: 50 }, (_, i) => record(i + 1));
    for (const r of records) meter.record(r);
    meter.seal();
    await vi.waitFor(() => expect(spool.pending()).toEqual([]), { timeout: 15_000, interval: 50 });
    expect(await totals(db)).toMatchObject({
      requests: 50,
      dayRequests: 50,
      bytes_in: records.reduce((s, r) => s + r.inBytes, 0),
      bytes_out: records.reduce((s, r) => s + r.outBytes, 0),
    });
    expect((log as LossyUsageLog).lost).toBeGreaterThan(0);
    expect((await metrics.batchesReshipped.get()).values[0]?.value).toBeGreaterThan(0);
    // Every segment went once its batches were committed.
    expect(spool.bytes).toBe(0);
  });

  it("keeps spool segments until the database has committed their batches, however long the aggregator is away", async () => {
    const { aggregator, meter, spool, shipper } = await setup();
    shipper.start();
    for (let i = 1; i <= 20; i++) meter.record(record(i));
    meter.seal();
    for (let i = 0; i < 5; i++) await shipper.round();
    expect(spool.pending()).toHaveLength(4);
    const held = spool.bytes;
    expect(held).toBeGreaterThan(0);
    aggregator.start();
    await vi.waitFor(() => expect(spool.bytes).toBe(0), { timeout: 10_000, interval: 50 });
  });

  it("after a restart, ships only what the database has not committed, and counts a replayed spool once", async () => {
    const { db, aggregator, meter, spool, openSpool, newShipper } = await setup();
    for (let i = 1; i <= 10; i++) meter.record(record(i));
    meter.seal();
    // Committed, but the node died before it could delete the segments.
    for (const ref of spool.pending()) await aggregator.apply(await spool.readBatch(ref));
    await spool.close();
    const reopened = await openSpool();
    expect(reopened.pending()).toHaveLength(2);
    aggregator.start();
    const shipper = newShipper(reopened);
    await shipper.round();
    expect(reopened.pending()).toEqual([]);
    expect(await totals(db)).toMatchObject({ requests: 10, dayRequests: 10 });
    await reopened.close();
  });

  it("archives every record once, retrievable per tenant and day", async () => {
    const { aggregator, meter, shipper, spool, archive } = await setup();
    aggregator.start();
    shipper.start();
    for (let i = 1; i <= 12; i++) meter.record(record(i, i % 2 ? "ten_a" : "ten_b"));
    meter.seal();
    await vi.waitFor(() => expect(spool.pending()).toEqual([]), { timeout: 10_000, interval: 50 });
    const day = new Date().toISOString().slice(0, 10);
    const a = await archive.read("ten_a", day);
    const b = await archive.read("ten_b", day);
    expect(a.map((r) => r.id).sort()).toEqual(["req-1", "req-11", "req-3", "req-5", "req-7", "req-9"]);
    expect(b).toHaveLength(6);
  });
});
