import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it, onTestFinished } from "vitest";
import { UsageArchive, utcDay } from "../../src/usage/archive.js";
import { groupRecords, type MeterRecord, type UsageBatch } from "../../src/usage/model.js";

const DAY = 86_400_000;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "imgfleet-archive-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function record(id: string, tenant: string, at: number): MeterRecord {
  return {
    id,
    tenant,
    key: "key_a",
    at,
    op: "resize",
    status: 200,
    inBytes: 10,
    outBytes: 5,
    inPixels: 100,
    outPixels: 25,
    inFormat: "jpeg",
    outFormat: "png",
    queueMs: 0.5,
    processMs: 3,
    cpuMs: 2.5,
  };
}

function batch(id: string, records: MeterRecord[]): UsageBatch {
  return { id, node: "n1", sealedAt: Date.now(), groups: groupRecords(records), records };
}

describe("usage archive", () => {
  const t0 = Date.UTC(2026, 10, 29, 23, 59, 0);

  it("keeps one gzipped NDJSON file per tenant per UTC day that zcat reads as a whole", async () => {
    const dir = tempDir();
    const archive = new UsageArchive(dir, 90);
    await archive.write(batch("ub_1", [record("r1", "ten_a", t0), record("r2", "ten_b", t0 + 120_000)]));
    await archive.write(batch("ub_2", [record("r3", "ten_a", t0 + 30_000)]));
    const fileA = join(dir, "ten_a", "2026-11-29.ndjson.gz");
    expect(existsSync(fileA)).toBe(true);
    expect(existsSync(join(dir, "ten_b", "2026-11-30.ndjson.gz"))).toBe(true);
    // Two appended members read as one stream by an ordinary gzip reader.
    const lines = gunzipSync(readFileSync(fileA)).toString().trim().split("\n");
    expect(lines.map((l) => JSON.parse(l).id)).toEqual(["r1", "r3"]);
    const zcat = execFileSync("gzip", ["-dc", fileA]).toString().trim().split("\n");
    expect(zcat).toEqual(lines);
    expect((await archive.read("ten_a", "2026-11-29")).map((r) => [r.id, r.b])).toEqual([
      ["r1", "ub_1"],
      ["r3", "ub_2"],
    ]);
    expect(await archive.read("ten_a", "2026-11-28")).toEqual([]);
  });

  it("reads a batch archived twice (a crash before it was marked archived) once, but keeps distinct requests that share an id", async () => {
    const dir = tempDir();
    const archive = new UsageArchive(dir, 90);
    const twice = batch("ub_1", [record("same-id", "ten_a", t0), record("same-id", "ten_a", t0 + 1)]);
    await archive.write(twice);
    await new UsageArchive(dir, 90).write(twice);
    const read = await archive.read("ten_a", utcDay(t0));
    expect(read).toHaveLength(2);
    expect(read.map((r) => r.at)).toEqual([t0, t0 + 1]);
  });

  it("cuts off a member torn by a crash mid-append before appending the next, losing nothing whole", async () => {
    const dir = tempDir();
    await new UsageArchive(dir, 90).write(batch("ub_1", [record("r1", "ten_a", t0)]));
    const file = join(dir, "ten_a", `${utcDay(t0)}.ndjson.gz`);
    const whole = statSync(file).size;
    // Half of a member, as a crash mid-write leaves it.
    const torn = readFileSync(file).subarray(0, Math.floor(whole / 2));
    appendFileSync(file, torn);
    const reader = new UsageArchive(dir, 90);
    expect((await reader.read("ten_a", utcDay(t0))).map((r) => r.id)).toEqual(["r1"]);
    // A new process appends: the torn tail goes first, so the whole file stays readable by gzip.
    await new UsageArchive(dir, 90).write(batch("ub_2", [record("r2", "ten_a", t0)]));
    expect(gunzipSync(readFileSync(file)).toString().trim().split("\n")).toHaveLength(2);
    expect((await reader.read("ten_a", utcDay(t0))).map((r) => r.id)).toEqual(["r1", "r2"]);
  });

  it("sweeps days past the retention and keeps the rest", async () => {
    const dir = tempDir();
    const archive = new UsageArchive(dir, 7);
    const now = Date.UTC(2026, 10, 30, 12);
    for (const daysAgo of [0, 6, 7, 30]) {
      await archive.write(batch(`ub_${daysAgo}`, [record(`r${daysAgo}`, "ten_a", now - daysAgo * DAY)]));
    }
    await archive.write(batch("ub_old_b", [record("rb", "ten_b", now - 40 * DAY)]));
    expect(await archive.sweep(now)).toBe(3);
    expect((await archive.read("ten_a", utcDay(now - 6 * DAY))).map((r) => r.id)).toEqual(["r6"]);
    expect(await archive.read("ten_a", utcDay(now - 7 * DAY))).toEqual([]);
    expect(existsSync(join(dir, "ten_b"))).toBe(false);
    expect(await archive.sweep(now)).toBe(0);
  });

  it("refuses a tenant id that is not a plain file name", async () => {
    const archive = new UsageArchive(tempDir(), 7);
    await expect(archive.write(batch("ub_x", [record("r", "../etc", t0)]))).rejects.toThrow(/tenant id/);
  });
});
