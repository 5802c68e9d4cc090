import type { InputFormat } from "../config/schema.js";

/** What the header says, before any decoding. */
export interface Header {
  width: number;
  height: number;
  /** Frames (1 for still images). */
  pages: number;
  hasAlpha: boolean;
}

/**
 * Reads dimensions, frame count and alpha of JPEG, PNG, GIF and WebP from
 * their bytes in JavaScript, so the API process never loads libvips for
 * them (it costs ~7% of that process's CPU and tens of MB per node).
 * Returns undefined when unsure; the caller then asks libvips.
 */
export function readHeader(format: InputFormat, bytes: Buffer): Header | undefined {
  try {
    switch (format) {
      case "jpeg":
        return jpegHeader(bytes);
      case "png":
        return pngHeader(bytes);
      case "gif":
        return gifHeader(bytes);
      case "webp":
        return webpHeader(bytes);
      default:
        return undefined;
    }
  } catch {
    // Ran off the end of a truncated header: let libvips judge it.
    return undefined;
  }
}

/** Start-of-frame markers carry the dimensions (not DHT C4, JPG C8, DAC CC). */
const JPEG_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegHeader(b: Buffer): Header | undefined {
  let at = 2;
  while (at + 9 < b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1] as number;
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    if (JPEG_SOF.has(marker)) {
      const height = b.readUInt16BE(at + 5);
      const width = b.readUInt16BE(at + 7);
      return width > 0 && height > 0 ? { width, height, pages: 1, hasAlpha: false } : undefined;
    }
    at += 2 + b.readUInt16BE(at + 2);
  }
  return undefined;
}

function pngHeader(b: Buffer): Header | undefined {
  if (b.toString("latin1", 12, 16) !== "IHDR") return undefined;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const colourType = b[25];
  let hasAlpha = colourType === 4 || colourType === 6;
  // A tRNS chunk before the image data also gives transparency.
  for (let at = 8; !hasAlpha && at + 8 <= b.length; ) {
    const length = b.readUInt32BE(at);
    const type = b.toString("latin1", at + 4, at + 8);
    if (type === "IDAT" || type === "IEND") break;
    if (type === "tRNS") hasAlpha = true;
    at += 12 + length;
  }
  return { width, height, pages: 1, hasAlpha };
}

function gifHeader(b: Buffer): Header | undefined {
  const width = b.readUInt16LE(6);
  const height = b.readUInt16LE(8);
  let at = 13 + colourTableBytes(b[10] as number);
  let pages = 0;
  while (at < b.length) {
    const block = b[at];
    if (block === 0x3b) break;
    if (block === 0x2c) {
      pages++;
      at += 10 + colourTableBytes(b[at + 9] as number) + 1;
      at = skipSubBlocks(b, at);
    } else if (block === 0x21) {
      at = skipSubBlocks(b, at + 2);
    } else {
      return undefined;
    }
  }
  // libvips decodes GIF as RGBA.
  return { width, height, pages: Math.max(1, pages), hasAlpha: true };
}

function colourTableBytes(packed: number): number {
  return packed & 0x80 ? 3 * 2 ** ((packed & 0x07) + 1) : 0;
}

function skipSubBlocks(b: Buffer, start: number): number {
  let at = start;
  while (at < b.length) {
    const size = b[at] as number;
    at += 1 + size;
    if (size === 0) break;
  }
  return at;
}

function webpHeader(b: Buffer): Header | undefined {
  const chunk = b.toString("latin1", 12, 16);
  if (chunk === "VP8 ") {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return undefined;
    return {
      width: b.readUInt16LE(26) & 0x3fff,
      height: b.readUInt16LE(28) & 0x3fff,
      pages: 1,
      hasAlpha: false,
    };
  }
  if (chunk === "VP8L") {
    if (b[20] !== 0x2f) return undefined;
    const bits = b.readUInt32LE(21);
    return {
      width: (bits & 0x3fff) + 1,
      height: ((bits >> 14) & 0x3fff) + 1,
      pages: 1,
      hasAlpha: ((bits >> 28) & 1) === 1,
    };
  }
  if (chunk === "VP8X") {
    const flags = b[20] as number;
    const width = b.readUIntLE(24, 3) + 1;
    const height = b.readUIntLE(27, 3) + 1;
    const animated = (flags & 0x02) !== 0;
    return { width, height, pages: animated ? countWebpFrames(b) : 1, hasAlpha: (flags & 0x10) !== 0 };
  }
  return undefined;
}

function countWebpFrames(b: Buffer): number {
  let frames = 0;
  for (let at = 12; at + 8 <= b.length; ) {
    if (b.toString("latin1", at, at + 4) === "ANMF") frames++;
    const size = b.readUInt32LE(at + 4);
    at += 8 + size + (size & 1);
  }
  return Math.max(1, frames);
}
