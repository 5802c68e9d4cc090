import type { FileHandle } from "node:fs/promises";
import { crc32, deflateRawSync } from "node:zlib";

/**
 * Gzip members that say how long they are. Each member carries its total
 * length in a gzip extra field (subfield "IF", RFC 1952 §2.3.1.1), which
 * every gzip reader skips, so `zcat` reads a file of them as one stream,
 * while a torn member at the end of a file (a crash mid-append) can be found
 * by walking the lengths and cut off before the next append.
 */
const HEADER_BYTES = 10;
const EXTRA_BYTES = 2 + 8; // XLEN, then SI1 SI2 LEN(2) and a u32 length
const TRAILER_BYTES = 8;
const FLAG_EXTRA = 0x04;
const OS_UNKNOWN = 0xff;

export function encodeMember(data: Buffer): Buffer {
  const deflated = deflateRawSync(data);
  const total = HEADER_BYTES + EXTRA_BYTES + deflated.length + TRAILER_BYTES;
  const out = Buffer.alloc(total);
  out.set([0x1f, 0x8b, 0x08, FLAG_EXTRA, 0, 0, 0, 0, 0, OS_UNKNOWN], 0);
  out.writeUInt16LE(8, HEADER_BYTES);
  out.set([0x49, 0x46], HEADER_BYTES + 2); // "IF": imgfleet member length
  out.writeUInt16LE(4, HEADER_BYTES + 4);
  out.writeUInt32LE(total, HEADER_BYTES + 6);
  deflated.copy(out, HEADER_BYTES + EXTRA_BYTES);
  out.writeUInt32LE(crc32(data), total - TRAILER_BYTES);
  out.writeUInt32LE(data.length % 2 ** 32, total - 4);
  return out;
}

/** The length of the file's prefix made of whole members: where a torn or foreign tail begins. */
export async function wholeMembersLength(file: FileHandle): Promise<number> {
  const { size } = await file.stat();
  const head = Buffer.alloc(HEADER_BYTES + EXTRA_BYTES);
  let offset = 0;
  while (offset < size) {
    const { bytesRead } = await file.read(head, 0, head.length, offset);
    const length = bytesRead === head.length ? memberLength(head) : null;
    if (length === null || offset + length > size) break;
    offset += length;
  }
  return offset;
}

function memberLength(head: Buffer): number | null {
  const ours =
    head[0] === 0x1f &&
    head[1] === 0x8b &&
    head[3] === FLAG_EXTRA &&
    head.readUInt16LE(HEADER_BYTES) === 8 &&
    head[HEADER_BYTES + 2] === 0x49 &&
    head[HEADER_BYTES + 3] === 0x46;
  if (!ours) return null;
  const length = head.readUInt32LE(HEADER_BYTES + 6);
  return length >= HEADER_BYTES + EXTRA_BYTES + TRAILER_BYTES ? length : null;
}
