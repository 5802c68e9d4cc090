/**
 * The usage spool: an append-only local journal of metered requests that survives a SIGKILL at any
 * moment once `append` has returned. Records are framed into batches (see frames.ts) in segment files;
 * the caller seals batches, a shipper sends them on, and segments whose batches are all committed are
 * deleted. Only the open batch's records are held in memory; sealed batches are indexed by position.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { sortableId } from "../../identity/ids.js";
import { groupRecords, type MeterRecord, type UsageBatch } from "../model.js";
import { decodeBatch, encodeFrame, type Frame } from "./frames.js";
import { type RecoveredSpool, recoverSpool, segmentName, syncDir } from "./segments.js";
import type { BatchRef, SpoolOptions, SpoolRecovery } from "./spool-types.js";

export type { BatchRef, SpoolOptions, SpoolRecovery } from "./spool-types.js";

interface Segment {
  seq: number;
  size: number;
  /** Sealed batches in it not yet committed. */
  pending: number;
}

interface OpenBatch {
  id: string;
  openedAt: number;
  start: number;
  records: MeterRecord[];
}

export class UsageSpool {
  readonly recovery: SpoolRecovery;
  private readonly segments = new Map<number, Segment>();
  private readonly index = new Map<string, BatchRef>();
  private readonly now: () => number;
  private current: Segment | null = null;
  private fd: number | null = null;
  private batch: OpenBatch | null = null;
  private nextSeq: number;
  private totalBytes = 0;
  private closed = false;
  /** Cutting a failed write back failed too: the file must be cut to the segment's size before the next append. */
  private torn = false;

  private constructor(
    private readonly options: SpoolOptions,
    recovered: RecoveredSpool,
  ) {
    this.now = options.now ?? Date.now;
    this.recovery = recovered.recovery;
    this.nextSeq = recovered.nextSeq;
    for (const { seq, size, batches } of recovered.segments) {
      this.current = { seq, size, pending: batches.length };
      this.segments.set(seq, this.current);
      this.totalBytes += size;
      for (const ref of batches) this.index.set(ref.id, ref);
    }
  }

  /** Creates the directory, scans and repairs every segment, and indexes the sealed batches. */
  static async open(options: SpoolOptions): Promise<UsageSpool> {
    const { dir, fsync, now = Date.now } = options;
    return new UsageSpool(options, await recoverSpool({ dir, fsync, now }));
  }

  /**
   * Journals one record (opening a batch if none is open); durable against a process crash on return.
   * Throws when the record could not be written whole (a full disk among others): then nothing of it
   * is left in the file, and the caller must not answer as if it were billed.
   */
  append(record: MeterRecord): void {
    const batch = this.batch ?? this.openBatch();
    this.write({ t: "r", r: record }, this.options.fsync === "always");
    batch.records.push(record);
  }

  /** Seals the open batch; null when none is open. */
  seal(): UsageBatch | null {
    const batch = this.batch;
    const segment = this.current;
    if (!batch || !segment) return null;
    if (batch.records.length === 0) return this.dropEmptyBatch(batch, segment);
    const { id, start } = batch;
    const sealedAt = this.now();
    const records = batch.records.length;
    // Synced before the batch counts as sealed: a seal that failed is cut off, and the batch stays open.
    this.write({ t: "s", b: id, n: records, at: sealedAt }, this.options.fsync !== "never");
    this.batch = null;
    const ref = { id, segment: segment.seq, start, end: segment.size, sealedAt, records };
    this.index.set(ref.id, ref);
    segment.pending += 1;
    return this.toBatch(id, sealedAt, batch.records);
  }

  get openRecords(): number {
    return this.batch?.records.length ?? 0;
  }

  get openSince(): number | null {
    return this.batch?.openedAt ?? null;
  }

  /** Sealed batches not yet committed, oldest first. */
  pending(): BatchRef[] {
    return [...this.index.values()].map((ref) => ({ ...ref }));
  }

  /** Reads a sealed batch back from its segment. */
  async readBatch(ref: BatchRef): Promise<UsageBatch> {
    const file = await open(join(this.options.dir, segmentName(ref.segment)), "r");
    const buf = Buffer.alloc(ref.end - ref.start);
    try {
      const { bytesRead } = await file.read(buf, 0, buf.length, ref.start);
      const { sealedAt, records } = decodeBatch(buf.subarray(0, bytesRead), ref.id, ref.start);
      return this.toBatch(ref.id, sealedAt, records);
    } finally {
      await file.close();
    }
  }

  /** Forgets these batches (unknown ids are ignored) and deletes the segments left with no pending batch. */
  async markCommitted(ids: Iterable<string>): Promise<{ deletedSegments: number }> {
    for (const id of ids) {
      const ref = this.index.get(id);
      if (!ref) continue;
      this.index.delete(id);
      const segment = this.segments.get(ref.segment);
      if (segment) segment.pending -= 1;
    }
    const inUse = this.batch ? this.current : null;
    const done = [...this.segments.values()].filter((s) => s.pending === 0 && s !== inUse);
    for (const segment of done) this.forget(segment);
    await Promise.all(done.map((s) => rm(join(this.options.dir, segmentName(s.seq)), { force: true })));
    if (done.length > 0 && this.options.fsync !== "never") syncDir(this.options.dir);
    return { deletedSegments: done.length };
  }

  /** The directory of the segment files. */
  get dir(): string {
    return this.options.dir;
  }

  /** Total size of the segment files. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** At the bound; `append` still works, the caller is expected to refuse new work. */
  get full(): boolean {
    return this.totalBytes >= this.options.maxBytes;
  }

  oldestPendingSealedAt(): number | null {
    for (const ref of this.index.values()) return ref.sealedAt;
    return null;
  }

  /** Closes the file; seals nothing (an open batch is sealed by the next `open`). */
  async close(): Promise<void> {
    this.closed = true;
    this.closeFd();
  }

  private openBatch(): OpenBatch {
    const segment = this.segmentForBatch();
    const openedAt = this.now();
    const id = `ub_${sortableId(openedAt)}`;
    const start = segment.size;
    this.write({ t: "o", b: id, at: openedAt }, false);
    this.batch = { id, openedAt, start, records: [] };
    return this.batch;
  }

  /** The current segment, or a new one when there is none or it has reached `segmentBytes`. */
  private segmentForBatch(): Segment {
    if (this.closed) throw new Error("the usage spool is closed");
    if (this.current && this.current.size < this.options.segmentBytes) return this.current;
    this.closeFd();
    const seq = this.nextSeq++;
    this.fd = openSync(join(this.options.dir, segmentName(seq)), "a");
    if (this.options.fsync !== "never") syncDir(this.options.dir);
    this.current = { seq, size: 0, pending: 0 };
    this.segments.set(seq, this.current);
    return this.current;
  }

  /**
   * Appends one frame with one write (and an fsync when `sync`). A failed or short write, or a failed
   * sync, is cut off again so that the file ends on a whole frame and later frames stay readable; the
   * error is thrown. A short write is taken for a full disk (ENOSPC), which is what it almost always is.
   */
  private write(frame: Frame, sync: boolean): void {
    const segment = this.current;
    if (!segment || this.closed) throw new Error("the usage spool is closed");
    this.fd ??= openSync(join(this.options.dir, segmentName(segment.seq)), "a");
    this.repairTornTail(segment);
    const bytes = encodeFrame(frame);
    try {
      const written = writeSync(this.fd, bytes);
      if (written !== bytes.length) throw shortWrite(written, bytes.length);
      if (sync) fsyncSync(this.fd);
    } catch (err) {
      this.cutBack(segment.size);
      throw err;
    }
    segment.size += bytes.length;
    this.totalBytes += bytes.length;
  }

  private cutBack(size: number): void {
    try {
      if (this.fd !== null) ftruncateSync(this.fd, size);
      this.torn = false;
    } catch {
      // The fd appends: a frame written after the torn bytes would be unreadable. Cut before the next one.
      this.torn = true;
    }
  }

  /** A previous cut-back failed: cut now, or refuse to append after a torn frame. */
  private repairTornTail(segment: Segment): void {
    if (!this.torn || this.fd === null) return;
    ftruncateSync(this.fd, segment.size);
    this.torn = false;
  }

  /** Only after a record's write failed right after its batch's "o" frame: the frame is cut off again. */
  private dropEmptyBatch(batch: OpenBatch, segment: Segment): null {
    this.cutBack(batch.start);
    this.totalBytes -= segment.size - batch.start;
    segment.size = batch.start;
    this.batch = null;
    return null;
  }

  private forget(segment: Segment): void {
    this.segments.delete(segment.seq);
    this.totalBytes -= segment.size;
    if (segment !== this.current) return;
    this.closeFd();
    this.current = null;
  }

  private closeFd(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  private toBatch(id: string, sealedAt: number, records: MeterRecord[]): UsageBatch {
    return { id, node: this.options.node, sealedAt, groups: groupRecords(records), records };
  }
}

function shortWrite(written: number, wanted: number): Error {
  const error = new Error(
    `short write to the usage spool (${written} of ${wanted} bytes): the disk is full; the partial frame was cut off`,
  );
  return Object.assign(error, { code: "ENOSPC" });
}
