import type { InputFormat } from "../config/schema.js";

// The formats a node writes are the API contract's words (src/contract/vocabulary.ts).
import { OUTPUT_FORMATS, type OutputFormat } from "../contract/vocabulary.js";

export { OUTPUT_FORMATS, type OutputFormat };

export const MIME_TYPES: Record<OutputFormat, string> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
};

/** Formats we recognise but never decode, named so the client learns what it sent. */
export type ForeignFormat = "jp2" | "jxl" | "bmp" | "ico" | "pdf" | "psd";

export const FOREIGN_FORMAT_NAMES: Record<ForeignFormat, string> = {
  jp2: "JPEG 2000",
  jxl: "JPEG XL",
  bmp: "BMP",
  ico: "ICO",
  pdf: "PDF",
  psd: "Photoshop PSD",
};

export type Sniffed = { kind: "image"; format: InputFormat } | { kind: "foreign"; format: ForeignFormat };

const ascii = (bytes: Buffer, start: number, end: number) => bytes.toString("latin1", start, end);

/**
 * The real format from the first bytes, never from a Content-Type header or a
 * file name. Returns undefined when the bytes are no image we know.
 */
export function sniffFormat(bytes: Buffer): Sniffed | undefined {
  if (bytes.length < 4) return undefined;
  const image = (format: InputFormat): Sniffed => ({ kind: "image", format });
  const foreign = (format: ForeignFormat): Sniffed => ({ kind: "foreign", format });
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return image("jpeg");
  if (bytes.readUInt32BE(0) === 0x89504e47) return image("png");
  if (ascii(bytes, 0, 4) === "GIF8") return image("gif");
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return image("webp");
  if (ascii(bytes, 0, 4) === "II*\0" || ascii(bytes, 0, 4) === "MM\0*") return image("tiff");
  if (ascii(bytes, 4, 8) === "ftyp") return sniffIsoBrand(ascii(bytes, 8, 12), image, foreign);
  if (bytes.readUInt32BE(0) === 0x0000000c && ascii(bytes, 4, 8) === "jP  ") return foreign("jp2");
  if (bytes[0] === 0xff && bytes[1] === 0x4f && bytes[2] === 0xff && bytes[3] === 0x51) return foreign("jp2");
  if (bytes[0] === 0xff && bytes[1] === 0x0a) return foreign("jxl");
  if (ascii(bytes, 4, 12) === "JXL \r\n\x87\n") return foreign("jxl");
  if (ascii(bytes, 0, 2) === "BM") return foreign("bmp");
  if (bytes.readUInt32BE(0) === 0x00000100) return foreign("ico");
  if (ascii(bytes, 0, 5) === "%PDF-") return foreign("pdf");
  if (ascii(bytes, 0, 4) === "8BPS") return foreign("psd");
  if (looksLikeSvg(bytes)) return image("svg");
  return undefined;
}

function sniffIsoBrand(
  brand: string,
  image: (f: InputFormat) => Sniffed,
  foreign: (f: ForeignFormat) => Sniffed,
): Sniffed | undefined {
  if (brand === "avif" || brand === "avis") return image("avif");
  if (["heic", "heix", "hevc", "hevx", "mif1", "msf1"].includes(brand)) return image("heif");
  if (brand === "jp2 " || brand === "jpx ") return foreign("jp2");
  return undefined;
}

function looksLikeSvg(bytes: Buffer): boolean {
  const head = bytes
    .toString("utf8", 0, Math.min(bytes.length, 4096))
    .replace(/^\uFEFF/, "")
    .trimStart();
  if (!head.startsWith("<")) return false;
  return /<svg[\s>]/i.test(head);
}

export function isOutputFormat(format: string): format is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(format);
}
