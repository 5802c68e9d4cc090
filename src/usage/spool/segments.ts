/**
 * Segment files on disk: their names, and the scan and repair `UsageSpool.open` runs on each one
 * (truncate at the first bad frame, seal an unsealed batch, drop an empty one, delete an empty file).
 */
import { closeSync, fsyncSync, openSync } from "node:fs";
import { mkdir, open, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { encodeFrame, FrameScanner } from "./frames.js";
import type { BatchRef, SpoolOptions, SpoolRecovery } from "./spool-types.js";

const SEGMENT_NAME = /^seg-(\d{16})\.spool$/;

export function segmentName(seq: number): string {
  return `seg-${String(seq).padStart(16, "0")}.spool`;
}

/** Makes a created or deleted file's directory entry durable. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

interface OpenBatch {
  id: string;
  start: number;
  records: number;
}

interface SegmentScan {
  sealed: BatchRef[];
  /** The batch still open where the valid frames end. */
  open: OpenBatch | null;
  /** Where the last frame that decodes and fits the batch structure ends. */
  validEnd: number;
}

/**
 * Walks the frames of one segment. A frame that does not decode, or does not fit the structure
 * (a record or seal outside a batch, an open inside one, a seal naming another batch or count), ends the scan.
 */
async function scanSegment(path: string, seq: number, size: number): Promise<SegmentScan> {
  const file = await open(path, "r");
  const scan: SegmentScan = { sealed: [], open: null, validEnd: 0 };
  try {
    const scanner = new FrameScanner(file, size);
    for (let item = await scanner.next(); item && "frame" in item; item = await scanner.next()) {
      const { frame, start, end } = item;
      const open = scan.open;
      if (!open && frame.t === "o") scan.open = { id: frame.b, start, records: 0 };
      else if (open && frame.t === "r") open.records += 1;
      else if (open && frame.t === "s" && frame.b === open.id && frame.n === open.records) {
        scan.sealed.push({
          id: open.id,
          segment: seq,
          start: open.start,
          end,
          sealedAt: frame.at,
          records: open.records,
        });
        scan.open = null;
      } else break;
      scan.validEnd = end;
    }
  } finally {
    await file.close();
  }
  return scan;
}

export interface RecoveredSegment {
  seq: number;
  size: number;
  batches: BatchRef[];
}

type RepairOptions = Pick<SpoolOptions, "dir" | "fsync"> & { now: () => number };

/** Scans and repairs one segment; null when nothing was left of it and its file was deleted. */
async function recoverSegment(
  seq: number,
  options: RepairOptions,
  recovery: SpoolRecovery,
): Promise<RecoveredSegment | null> {
  const name = segmentName(seq);
  const path = join(options.dir, name);
  const file = await open(path, "r+");
  let changed = false;
  let scan: SegmentScan;
  let size: number;
  try {
    const before = (await file.stat()).size;
    scan = await scanSegment(path, seq, before);
    size = scan.validEnd;
    if (size < before) {
      await file.truncate(size);
      recovery.truncatedBytes += before - size;
      recovery.repairedSegments.push(name);
      changed = true;
    }
    const open = scan.open;
    if (open && open.records > 0) {
      const sealedAt = options.now();
      const frame = encodeFrame({ t: "s", b: open.id, n: open.records, at: sealedAt });
      await file.write(frame, 0, frame.length, size);
      size += frame.length;
      const ref = {
        id: open.id,
        segment: seq,
        start: open.start,
        end: size,
        sealedAt,
        records: open.records,
      };
      scan.sealed.push(ref);
      recovery.recoveredBatch = ref;
      changed = true;
    } else if (open) {
      size = open.start;
      await file.truncate(size);
      recovery.droppedEmptyBatch = true;
      changed = true;
    }
    if (changed && options.fsync !== "never") await file.sync();
  } finally {
    await file.close();
  }
  if (size > 0) return { seq, size, batches: scan.sealed };
  await unlink(path);
  if (options.fsync !== "never") syncDir(options.dir);
  return null;
}

export interface RecoveredSpool {
  /** Surviving segments, oldest first. */
  segments: RecoveredSegment[];
  /** One past the highest sequence found, deleted files included. */
  nextSeq: number;
  recovery: SpoolRecovery;
}

/** Creates the directory, then scans and repairs every segment in sequence order. */
export async function recoverSpool(options: RepairOptions): Promise<RecoveredSpool> {
  await mkdir(options.dir, { recursive: true });
  const seqs = (await readdir(options.dir))
    .map((name) => SEGMENT_NAME.exec(name)?.[1])
    .filter((seq): seq is string => seq !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const recovery: SpoolRecovery = {
    truncatedBytes: 0,
    repairedSegments: [],
    recoveredBatch: null,
    droppedEmptyBatch: false,
  };
  const segments: RecoveredSegment[] = [];
  for (const seq of seqs) {
    const segment = await recoverSegment(seq, options, recovery);
    if (segment) segments.push(segment);
  }
  return { segments, nextSeq: (seqs.at(-1) ?? 0) + 1, recovery };
}
