import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { crc32 } from "node:zlib";
import { beforeEach, describe, expect, it, onTestFinished } from "vitest";
import type { MeterRecord } from "../../src/usage/model.js";
import { type SpoolOptions, UsageSpool } from "../../src/usage/spool/usage-spool.js";

const ROOT = join(import.meta.dirname, "../..");
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const SEG1 = "seg-0000000000000001.spool";

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "imgfleet-spool-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function record(n: number, overrides: Partial<MeterRecord> = {}): MeterRecord {
  return {
    id: `req-${n}`,
    tenant: "ten_a",
    key: "key_a",
    at: T0 + n,
    op: "resize",
    status: 200,
    inBytes: 1000 + n,
    outBytes: 100 + n,
    inPixels: 10_000,
    outPixels: 2_500,
    inFormat: "jpeg",
    outFormat: "webp",
    queueMs: 1,
    processMs: 5,
    cpuMs: 4,
    ...overrides,
  };
}

let clock = T0;

async function openSpool(dir: string, overrides: Partial<SpoolOptions> = {}): Promise<UsageSpool> {
  const spool = await UsageSpool.open({
    dir,
    node: "node-1",
    maxBytes: 1 << 30,
    segmentBytes: 1 << 20,
    fsync: "seal",
    now: () => clock,
    ...overrides,
  });
  onTestFinished(() => spool.close());
  return spool;
}

function appendBatch(spool: UsageSpool, from: number, count: number) {
  for (let n = from; n < from + count; n++) spool.append(record(n));
  const batch = spool.seal();
  if (!batch) throw new Error("nothing sealed");
  return batch;
}

async function pendingRecordIds(spool: UsageSpool): Promise<string[][]> {
  const out: string[][] = [];
  for (const ref of spool.pending()) out.push((await spool.readBatch(ref)).records.map((r) => r.id));
  return out;
}

interface RawFrame {
  start: number;
  end: number;
  payload: { t: string; b?: string; n?: number; at?: number; r?: MeterRecord };
}

/** Parses a segment file by the documented format, independently of the spool's own decoder. */
function readFrames(file: string): RawFrame[] {
  const buf = readFileSync(file);
  const frames: RawFrame[] = [];
  for (let at = 0; at < buf.length; ) {
    const length = buf.readUInt32BE(at);
    const payload = buf.subarray(at + 8, at + 8 + length);
    expect(crc32(payload)).toBe(buf.readUInt32BE(at + 4));
    frames.push({ start: at, end: at + 8 + length, payload: JSON.parse(payload.toString("utf8")) });
    at += 8 + length;
  }
  return frames;
}

describe("UsageSpool", () => {
  beforeEach(() => {
    clock = T0;
  });

  it("seals a batch with its records and per tenant/minute/op/outcome groups, and reads it back", async () => {
    const dir = tempDir();
    const spool = await openSpool(dir);
    expect(spool.seal()).toBeNull();
    const records = [
      record(1),
      record(2, { status: 304 }),
      record(3, { status: 404 }),
      record(4, { tenant: "ten_b", at: T0 + 60_000 }),
      record(5, { at: T0 + 61_000, status: 503 }),
    ];
    clock = T0 + 5;
    for (const r of records) spool.append(r);
    expect([spool.openRecords, spool.openSince]).toEqual([5, T0 + 5]);
    clock = T0 + 2000;
    const batch = spool.seal();
    expect([spool.openRecords, spool.openSince]).toEqual([0, null]);
    expect(batch).toMatchObject({ node: "node-1", sealedAt: T0 + 2000, records });
    expect(batch?.id).toMatch(/^ub_[0-9a-z]{26}$/);
    const counters = (r: MeterRecord[]) => ({
      requests: r.length,
      bytesIn: r.reduce((s, x) => s + x.inBytes, 0),
      bytesOut: r.reduce((s, x) => s + x.outBytes, 0),
      pixelsIn: 10_000 * r.length,
      pixelsOut: 2_500 * r.length,
      cpuMs: 4 * r.length,
      processMs: 5 * r.length,
      queueMs: r.length,
    });
    const [r1, r2, r3, r4, r5] = records as [MeterRecord, MeterRecord, MeterRecord, MeterRecord, MeterRecord];
    expect(batch?.groups).toEqual([
      { tenant: "ten_a", minute: T0, op: "resize", outcome: "ok", ...counters([r1, r2]) },
      { tenant: "ten_a", minute: T0, op: "resize", outcome: "client_error", ...counters([r3]) },
      { tenant: "ten_b", minute: T0 + 60_000, op: "resize", outcome: "ok", ...counters([r4]) },
      { tenant: "ten_a", minute: T0 + 60_000, op: "resize", outcome: "server_error", ...counters([r5]) },
    ]);
    expect(spool.pending()).toEqual([
      { id: batch?.id, segment: 1, start: 0, end: spool.bytes, sealedAt: T0 + 2000, records: 5 },
    ]);
    expect(spool.oldestPendingSealedAt()).toBe(T0 + 2000);
    const [ref] = spool.pending();
    expect(ref && (await spool.readBatch(ref))).toEqual(batch);

    // The documented format: one "o", the records, one "s", each with its crc.
    expect(readdirSync(dir)).toEqual([SEG1]);
    const frames = readFrames(join(dir, SEG1)).map((f) => f.payload);
    expect(frames).toEqual([
      { t: "o", b: batch?.id, at: T0 + 5 },
      ...records.map((r) => ({ t: "r", r })),
      { t: "s", b: batch?.id, n: 5, at: T0 + 2000 },
    ]);
    expect(statSync(join(dir, SEG1)).size).toBe(spool.bytes);
  });

  it.each([
    ["after close()", true],
    ["after a crash (no close)", false],
  ])("finds the same pending batches on reopen %s", async (_, closeFirst) => {
    const dir = tempDir();
    const first = await openSpool(dir);
    const batches = [appendBatch(first, 0, 3), appendBatch(first, 3, 2)];
    const refs = first.pending();
    if (closeFirst) await first.close();
    const again = await openSpool(dir);
    expect(again.recovery).toEqual({
      truncatedBytes: 0,
      repairedSegments: [],
      recoveredBatch: null,
      droppedEmptyBatch: false,
    });
    expect(again.pending()).toEqual(refs);
    expect(again.bytes).toBe(first.bytes);
    for (const [i, ref] of again.pending().entries()) expect(await again.readBatch(ref)).toEqual(batches[i]);
  });

  it("rescans segments larger than its read chunk, frames straddling chunks and one frame larger than a chunk", async () => {
    const dir = tempDir();
    const first = await openSpool(dir, { segmentBytes: 1 << 30 });
    const wide = (n: number) => record(n, { inFormat: "x".repeat(n === 150 ? 2_500_000 : 4_999 + n) });
    for (let n = 0; n < 400; n++) {
      first.append(wide(n));
      if (n % 50 === 49) first.seal();
    }
    expect(first.bytes).toBeGreaterThan(4 << 20);
    const refs = first.pending();
    const again = await openSpool(dir);
    expect([again.recovery.truncatedBytes, again.recovery.recoveredBatch]).toEqual([0, null]);
    expect(again.pending()).toEqual(refs);
    const records = [];
    for (const ref of again.pending()) records.push(...(await again.readBatch(ref)).records);
    expect(records).toEqual(Array.from({ length: 400 }, (_, n) => wide(n)));
  });

  describe("a torn tail", () => {
    /** A sealed batch of 3 records, then an open one of 3 whose last record frame spans [lastStart, lastEnd). */
    async function template() {
      const dir = tempDir();
      const spool = await openSpool(dir);
      const sealed = appendBatch(spool, 0, 3);
      spool.append(record(3));
      spool.append(record(4));
      const lastStart = spool.bytes;
      spool.append(record(5));
      const lastEnd = spool.bytes;
      await spool.close();
      const openId = readFrames(join(dir, SEG1)).at(-4)?.payload.b;
      return { dir, sealed, lastStart, lastEnd, openId };
    }

    function copyOf(dir: string): string {
      const copy = tempDir();
      cpSync(dir, copy, { recursive: true });
      return copy;
    }

    it("is cut at any byte of the last frame; the records before it survive and appends work after", async () => {
      const t = await template();
      const cuts = [1, 4, 7, 8, 9, 20, t.lastEnd - t.lastStart - 1].map((d) => t.lastStart + d);
      for (const cut of cuts) {
        const dir = copyOf(t.dir);
        truncateSync(join(dir, SEG1), cut);
        const spool = await openSpool(dir);
        expect(spool.recovery).toMatchObject({ truncatedBytes: cut - t.lastStart, repairedSegments: [SEG1] });
        expect(spool.recovery.recoveredBatch).toMatchObject({ id: t.openId, records: 2 });
        expect(await pendingRecordIds(spool)).toEqual([
          ["req-0", "req-1", "req-2"],
          ["req-3", "req-4"],
        ]);
        const later = appendBatch(spool, 6, 2);
        const ref = spool.pending().at(-1);
        expect(ref && (await spool.readBatch(ref))).toEqual(later);
        await spool.close();
        const reopened = await openSpool(dir);
        expect(reopened.recovery.truncatedBytes).toBe(0);
        expect(await pendingRecordIds(reopened)).toEqual([
          ["req-0", "req-1", "req-2"],
          ["req-3", "req-4"],
          ["req-6", "req-7"],
        ]);
      }
    });

    it("loses nothing but the garbage appended after the last whole frame", async () => {
      const t = await template();
      const header = (length: number, crc: number) => {
        const b = Buffer.alloc(8);
        b.writeUInt32BE(length, 0);
        b.writeUInt32BE(crc, 4);
        return b;
      };
      const valid = Buffer.from(JSON.stringify({ t: "r", r: record(99) }));
      const garbage = [
        Buffer.from("\u0000\u0000\u0000"),
        Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]),
        Buffer.concat([header(0xffffffff, 0), Buffer.alloc(64)]),
        Buffer.concat([header(5, 12345), Buffer.from("hello")]),
        Buffer.concat([header(5, crc32(Buffer.from("{nope"))), Buffer.from("{nope")]),
        Buffer.concat([header(valid.length, (crc32(valid) ^ 1) >>> 0), valid]),
      ];
      for (const bytes of garbage) {
        const dir = copyOf(t.dir);
        appendFileSync(join(dir, SEG1), bytes);
        const spool = await openSpool(dir);
        expect(spool.recovery).toMatchObject({ truncatedBytes: bytes.length, repairedSegments: [SEG1] });
        expect(await pendingRecordIds(spool)).toEqual([
          ["req-0", "req-1", "req-2"],
          ["req-3", "req-4", "req-5"],
        ]);
      }
    });
  });

  it("seals an unsealed batch at open under its own id, and drops an empty one", async () => {
    const dir = tempDir();
    const spool = await openSpool(dir);
    appendBatch(spool, 0, 2);
    const openStart = spool.bytes;
    spool.append(record(2));
    spool.append(record(3));
    const openId = readFrames(join(dir, SEG1)).find((f) => f.start === openStart)?.payload.b;
    clock = T0 + 9000;
    const reopened = await openSpool(dir);
    expect(reopened.recovery).toMatchObject({
      truncatedBytes: 0,
      repairedSegments: [],
      droppedEmptyBatch: false,
    });
    expect(reopened.recovery.recoveredBatch).toMatchObject({ id: openId, records: 2, sealedAt: T0 + 9000 });
    expect(reopened.pending().map((r) => r.id)).toEqual([expect.any(String), openId]);
    expect(await pendingRecordIds(reopened)).toEqual([
      ["req-0", "req-1"],
      ["req-2", "req-3"],
    ]);

    // An "o" frame alone: the batch is dropped, and a segment left empty is deleted.
    const lone = tempDir();
    const one = await openSpool(lone);
    one.append(record(0));
    const [open] = readFrames(join(lone, SEG1));
    truncateSync(join(lone, SEG1), open?.end);
    const empty = await openSpool(lone);
    expect(empty.recovery).toMatchObject({
      droppedEmptyBatch: true,
      recoveredBatch: null,
      truncatedBytes: 0,
    });
    expect([empty.pending(), empty.bytes, readdirSync(lone)]).toEqual([[], 0, []]);

    // Behind a sealed batch, only the "o" frame goes.
    const behind = tempDir();
    const two = await openSpool(behind);
    appendBatch(two, 0, 1);
    const sealedEnd = two.bytes;
    two.append(record(1));
    truncateSync(join(behind, SEG1), readFrames(join(behind, SEG1)).at(-1)?.start);
    const kept = await openSpool(behind);
    expect(kept.recovery.droppedEmptyBatch).toBe(true);
    expect([kept.bytes, statSync(join(behind, SEG1)).size]).toEqual([sealedEnd, sealedEnd]);
    expect(await pendingRecordIds(kept)).toEqual([["req-0"]]);
  });

  it("rotates segments at segmentBytes and deletes only fully committed ones", async () => {
    const dir = tempDir();
    const segmentBytes = 1500;
    const spool = await openSpool(dir, { segmentBytes });
    for (let b = 0; b < 7; b++) appendBatch(spool, b * 2, 2);
    const refs = spool.pending();
    const sizes = new Map(readdirSync(dir).map((f) => [Number(f.slice(4, 20)), statSync(join(dir, f)).size]));
    const seqs = [...sizes.keys()];
    expect(seqs.length).toBeGreaterThan(2);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    for (const ref of refs) expect(ref.start).toBeLessThan(segmentBytes);
    for (const seq of seqs.slice(0, -1)) expect(sizes.get(seq)).toBeGreaterThanOrEqual(segmentBytes);
    expect(spool.bytes).toBe([...sizes.values()].reduce((a, b) => a + b, 0));
    const inSegment = (seq: number | undefined) => refs.filter((r) => r.segment === seq).map((r) => r.id);
    const [s1, s2] = seqs;
    expect(inSegment(s2).length).toBeGreaterThan(1);

    // The first segment whole, the second but one batch: only the first goes.
    const commit1 = [...inSegment(s1), ...inSegment(s2).slice(1), "ub_unknown"];
    expect(await spool.markCommitted(commit1)).toEqual({ deletedSegments: 1 });
    expect(readdirSync(dir).map((f) => Number(f.slice(4, 20)))).toEqual(seqs.slice(1));
    expect(spool.bytes).toBe([...sizes.values()].reduce((a, b) => a + b, 0) - (sizes.get(s1 ?? 0) ?? 0));
    expect(spool.pending().map((r) => r.id)).toEqual(
      refs.map((r) => r.id).filter((id) => !commit1.includes(id)),
    );

    // Everything, current segment included (no batch open in it).
    const rest = spool.pending().map((r) => r.id);
    expect(await spool.markCommitted(rest)).toEqual({ deletedSegments: seqs.length - 1 });
    expect([readdirSync(dir), spool.bytes, spool.pending(), spool.oldestPendingSealedAt()]).toEqual([
      [],
      0,
      [],
      null,
    ]);
    appendBatch(spool, 100, 1);
    expect(spool.pending()[0]?.segment).toBe(Math.max(...seqs) + 1);
    expect(readdirSync(dir).map((f) => Number(f.slice(4, 20)))).toEqual([Math.max(...seqs) + 1]);
  });

  it("keeps the current segment while a batch is open in it", async () => {
    const dir = tempDir();
    const spool = await openSpool(dir);
    const a = appendBatch(spool, 0, 1);
    spool.append(record(1));
    expect(await spool.markCommitted([a.id])).toEqual({ deletedSegments: 0 });
    expect(readdirSync(dir)).toEqual([SEG1]);
    const b = spool.seal();
    expect(b?.records.map((r) => r.id)).toEqual(["req-1"]);
    expect(await spool.markCommitted([b?.id ?? ""])).toEqual({ deletedSegments: 1 });
    expect(readdirSync(dir)).toEqual([]);
    appendBatch(spool, 2, 1);
    expect(readdirSync(dir)).toEqual(["seg-0000000000000002.spool"]);
  });

  it("is full at maxBytes, still takes appends, and is not full once commits delete segments", async () => {
    const dir = tempDir();
    const spool = await openSpool(dir, { maxBytes: 3000, segmentBytes: 1000 });
    let n = 0;
    while (!spool.full) {
      spool.append(record(n++));
      if (n % 3 === 0) spool.seal();
    }
    expect(spool.bytes).toBeGreaterThanOrEqual(3000);
    expect(spool.bytes - 3000).toBeLessThan(400);
    spool.append(record(n++));
    spool.seal();
    expect(spool.full).toBe(true);
    await spool.markCommitted(spool.pending().map((r) => r.id));
    expect([spool.full, spool.bytes]).toEqual([false, 0]);
  });

  it("truncates an older segment at a crc mismatch in its middle and reports it", async () => {
    const dir = tempDir();
    const first = await openSpool(dir);
    appendBatch(first, 0, 2);
    first.append(record(2));
    const corruptAt = first.bytes;
    first.append(record(3));
    first.append(record(4));
    first.seal();
    await first.close();
    const second = await openSpool(dir, { segmentBytes: 1 });
    appendBatch(second, 5, 2);
    expect(readdirSync(dir)).toEqual([SEG1, "seg-0000000000000002.spool"]);
    const idB = second.pending()[1]?.id;
    const sizeBefore = statSync(join(dir, SEG1)).size;
    await second.close();

    const bytes = readFileSync(join(dir, SEG1));
    // "req-3" becomes "sdq-3": still JSON, only the crc tells.
    const at = bytes.indexOf("req-3", corruptAt);
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(join(dir, SEG1), bytes);
    const third = await openSpool(dir);
    expect(third.recovery).toMatchObject({
      truncatedBytes: sizeBefore - corruptAt,
      repairedSegments: [SEG1],
    });
    expect(third.recovery.recoveredBatch).toMatchObject({ id: idB, segment: 1, records: 1 });
    expect(await pendingRecordIds(third)).toEqual([["req-0", "req-1"], ["req-2"], ["req-5", "req-6"]]);
    expect(readFrames(join(dir, SEG1)).at(-1)?.payload).toMatchObject({ t: "s", b: idB, n: 1 });
  });

  it("keeps exactly the records whose append returned when the process is SIGKILLed", async () => {
    const dir = tempDir();
    // The count goes out with writeSync(1), retried while the pipe is full: process.stdout would queue it
    // in memory instead, so a printed count could lag far behind the appends that had returned.
    const script = join(dir, "writer.mts");
    const spoolUrl = pathToFileURL(join(ROOT, "src/usage/spool/usage-spool.ts")).href;
    writeFileSync(
      script,
      `import { writeSync } from "node:fs";
import { UsageSpool } from ${JSON.stringify(spoolUrl)};
const pause = new Int32Array(new SharedArrayBuffer(4));
function report(text) {
  const bytes = Buffer.from(text);
  for (let done = 0; done < bytes.length; ) {
    try {
      done += writeSync(1, bytes, done);
    } catch (err) {
      if (err.code !== "EAGAIN") throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
const spool = await UsageSpool.open({ dir: process.argv[2], node: "child", maxBytes: 2 ** 30, segmentBytes: 16384, fsync: "never" });
const base = ${JSON.stringify(record(0))};
for (let i = 0; i < 1_000_000; i++) {
  spool.append({ ...base, id: "req-" + i });
  if (i % 37 === 36) spool.seal();
  report(i + 1 + "\\n");
}
`,
    );
    const spoolDir = join(dir, "spool");
    const child = spawn(process.execPath, ["--import", "tsx", script, spoolDir], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    const exited = once(child, "exit");
    let returned = 0;
    for await (const line of createInterface({ input: child.stdout })) {
      returned = Number(line);
      if (returned >= 3000 && !child.killed) child.kill("SIGKILL");
    }
    expect(await exited).toEqual([null, "SIGKILL"]);
    expect(returned).toBeGreaterThanOrEqual(3000);

    const spool = await openSpool(spoolDir);
    const ids = (await pendingRecordIds(spool)).flat();
    expect(new Set(ids).size).toBe(ids.length);
    // The one record after the last reported may or may not have been written before the kill.
    expect(ids.length === returned || ids.length === returned + 1).toBe(true);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => `req-${i}`));
  });
});
