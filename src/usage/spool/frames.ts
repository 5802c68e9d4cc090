/**
 * The spool's on-disk frames: `u32 BE payload length | u32 BE crc32(payload) | payload`,
 * the payload being UTF-8 JSON. A batch is an "o" frame, its "r" frames, then an "s" frame.
 */
import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import type { MeterRecord } from "../model.js";

export const HEADER_BYTES = 8;
/** A length beyond this is taken for corruption rather than a frame. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

export interface OpenFrame {
  t: "o";
  b: string;
  at: number;
}
export interface RecordFrame {
  t: "r";
  r: MeterRecord;
}
export interface SealFrame {
  t: "s";
  b: string;
  n: number;
  at: number;
}
export type Frame = OpenFrame | RecordFrame | SealFrame;

/** Why the bytes at an offset are not a frame. */
export type FrameError = "torn" | "length" | "crc" | "json";

export type Decoded = { frame: Frame; end: number } | { error: FrameError };

export function encodeFrame(frame: Frame): Buffer {
  const payload = Buffer.from(JSON.stringify(frame), "utf8");
  if (payload.length > MAX_PAYLOAD_BYTES) throw new RangeError(`spool frame of ${payload.length} bytes`);
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  payload.copy(out, HEADER_BYTES);
  return out;
}

/** Decodes the frame at `offset` of `buf`; `buf` ends where the data ends (the end of the file or range). */
export function decodeFrame(buf: Buffer, offset: number): Decoded {
  if (buf.length - offset < HEADER_BYTES) return { error: "torn" };
  const length = buf.readUInt32BE(offset);
  if (length > MAX_PAYLOAD_BYTES) return { error: "length" };
  const end = offset + HEADER_BYTES + length;
  if (end > buf.length) return { error: "torn" };
  const payload = buf.subarray(offset + HEADER_BYTES, end);
  if (crc32(payload) !== buf.readUInt32BE(offset + 4)) return { error: "crc" };
  const frame = parseFrame(payload);
  return frame ? { frame, end } : { error: "json" };
}

function parseFrame(payload: Buffer): Frame | null {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch {
    return null;
  }
  return isFrame(value) ? value : null;
}

function isFrame(value: unknown): value is Frame {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  switch (v.t) {
    case "o":
      return typeof v.b === "string" && typeof v.at === "number";
    case "r":
      return typeof v.r === "object" && v.r !== null && typeof (v.r as { id?: unknown }).id === "string";
    case "s":
      return typeof v.b === "string" && typeof v.n === "number" && typeof v.at === "number";
    default:
      return false;
  }
}

export type Scanned = { frame: Frame; start: number; end: number } | { error: FrameError; start: number };

const CHUNK_BYTES = 1024 * 1024;

/** Reads a segment's frames in order, a chunk at a time, stopping at the end or at the first bad frame. */
export class FrameScanner {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  private pos = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly size: number,
  ) {}

  /** The next frame, the first bad one (after which it returns null), or null at the end. */
  async next(): Promise<Scanned | null> {
    const start = this.pos;
    if (start >= this.size) return null;
    await this.fill(start, HEADER_BYTES);
    const at = start - this.bufStart;
    if (this.buf.length - at >= HEADER_BYTES) {
      const length = this.buf.readUInt32BE(at);
      if (length <= MAX_PAYLOAD_BYTES) await this.fill(start, HEADER_BYTES + length);
    }
    const decoded = decodeFrame(this.buf, start - this.bufStart);
    if ("error" in decoded) {
      this.pos = this.size;
      return { error: decoded.error, start };
    }
    this.pos = this.bufStart + decoded.end;
    return { frame: decoded.frame, start, end: this.pos };
  }

  /** Makes the buffer hold [pos, pos + n), or up to the end of the file when that is nearer. */
  private async fill(pos: number, n: number): Promise<void> {
    const want = Math.min(n, this.size - pos);
    const bufEnd = this.bufStart + this.buf.length;
    if (pos >= this.bufStart && pos + want <= bufEnd) return;
    const length = Math.min(Math.max(want, CHUNK_BYTES), this.size - pos);
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.file.read(buf, 0, length, pos);
    this.buf = buf.subarray(0, bytesRead);
    this.bufStart = pos;
  }
}

/** Decodes one whole batch (its "o", "r" and "s" frames) read back from `offset` of its segment. */
export function decodeBatch(
  buf: Buffer,
  id: string,
  offset: number,
): { sealedAt: number; records: MeterRecord[] } {
  const frames: Frame[] = [];
  for (let at = 0; at < buf.length; ) {
    const decoded = decodeFrame(buf, at);
    if ("error" in decoded) throw new Error(`usage batch ${id}: ${decoded.error} frame at ${offset + at}`);
    frames.push(decoded.frame);
    at = decoded.end;
  }
  const [first, ...rest] = frames;
  const last = rest.pop();
  const records = rest.flatMap((f) => (f.t === "r" ? [f.r] : []));
  const whole = first?.t === "o" && first.b === id && last?.t === "s" && last.b === id;
  if (!whole || records.length !== rest.length || last.n !== records.length) {
    throw new Error(`usage batch ${id}: the ${buf.length} bytes at ${offset} are not that batch`);
  }
  return { sealedAt: last.at, records };
}
