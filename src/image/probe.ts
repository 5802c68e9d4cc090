import type { Metadata } from "sharp";
import type { ImageLimits, InputFormat } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import { FOREIGN_FORMAT_NAMES, sniffFormat } from "./formats.js";
import { type Header, readHeader } from "./header.js";
import { countJpegScans } from "./jpeg-scans.js";
import { inspectSvg } from "./svg/svg-document.js";

/**
 * Scans a JPEG may have. libjpeg's own progressive script writes 10, mozjpeg
 * about as many, and the most a valid progression can hold without repeating
 * a coefficient's bits is a few hundred only in theory. Each scan is one pass
 * over every block of the image: 20,000 empty scans in 700 KB hold a core for
 * tens of seconds. A hundred leaves every real encoder room and bounds the
 * work at ~0.3 s for a 50 MP image.
 */
export const MAX_JPEG_SCANS = 100;

export interface Probe {
  format: InputFormat;
  width: number;
  height: number;
  /** Frames in the file (1 for still images). */
  pages: number;
  hasAlpha: boolean;
}

/**
 * Reads only the header: format from the magic bytes, then dimensions and
 * frame count, and rejects what must never reach a decoder (unknown or
 * disallowed formats, pixel bombs, active SVG).
 */
export async function probeImage(input: Buffer, limits: ImageLimits): Promise<Probe> {
  if (input.length === 0)
    throw new ProblemError("empty-body", "the request body is empty; send the image bytes");
  const sniffed = sniffFormat(input);
  if (!sniffed) {
    throw new ProblemError("unsupported-format", "the body is not an image in any format we know", {
      extras: { accepted: limits.inputFormats },
    });
  }
  if (sniffed.kind === "foreign" || !limits.inputFormats.includes(sniffed.format)) {
    const name = sniffed.kind === "foreign" ? FOREIGN_FORMAT_NAMES[sniffed.format] : sniffed.format;
    throw new ProblemError(
      "unsupported-format",
      `${name} input is not accepted here; send one of ${limits.inputFormats.join(", ")}`,
      {
        extras: { format: sniffed.format, accepted: limits.inputFormats },
      },
    );
  }
  if (sniffed.format === "svg") await checkSvgDocument(input, limits);
  const { width, height, pages, hasAlpha } =
    readHeader(sniffed.format, input) ?? (await headerFromLibvips(input));
  if (width <= 0 || height <= 0)
    throw new ProblemError("corrupt-image", "the image header declares no dimensions");
  if (sniffed.format === "jpeg") rejectScanBomb(input);
  if (width * height > limits.maxInputPixels) {
    throw new ProblemError(
      "too-many-pixels",
      `the image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} MP); at most ${(limits.maxInputPixels / 1e6).toFixed(1)} MP are accepted`,
      { extras: { width, height, maxPixels: limits.maxInputPixels } },
    );
  }
  return { format: sniffed.format, width, height, pages, hasAlpha };
}

/** For the rarer formats (TIFF, AVIF, HEIF, SVG) and odd headers: libvips, loaded on first use. */
async function headerFromLibvips(input: Buffer): Promise<Header> {
  const { default: sharp } = await import("sharp");
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (cause) {
    throw new ProblemError(
      "corrupt-image",
      `the image header could not be read: ${(cause as Error).message}`,
      { cause },
    );
  }
  return {
    width: meta.width ?? 0,
    height: meta.pageHeight ?? meta.height ?? 0,
    pages: meta.pages ?? 1,
    hasAlpha: meta.hasAlpha ?? false,
  };
}

/** Refused before any decoder sees it: the cost of a JPEG grows with its scans, not its bytes. */
function rejectScanBomb(input: Buffer): void {
  const scans = countJpegScans(input, MAX_JPEG_SCANS);
  if (scans <= MAX_JPEG_SCANS) return;
  throw new ProblemError(
    "too-many-scans",
    `the JPEG has more than ${MAX_JPEG_SCANS} scans (a photo has about ten); re-encode it, for example as baseline JPEG`,
    { extras: { maxScans: MAX_JPEG_SCANS } },
  );
}

/**
 * librsvg fetches nothing, but an SVG is refused unless it is self-contained by
 * construction (src/image/svg); the raster images it embeds pass the same
 * header checks as an upload of their own (format, pixels, JPEG scans).
 */
async function checkSvgDocument(input: Buffer, limits: ImageLimits): Promise<void> {
  for (const image of await inspectSvg(input)) {
    await probeImage(image.bytes, { ...limits, inputFormats: [image.format] }).catch((error: unknown) => {
      if (!(error instanceof ProblemError)) throw error;
      throw new ProblemError(error.code, `an image embedded in the SVG is refused: ${error.message}`, {
        extras: { ...error.extras, format: "svg", embedded: image.format },
        cause: error,
      });
    });
  }
}

/** Frames the worker will decode, after checking the animated-output limits. */
export function framesToDecode(probe: Probe, animated: boolean, limits: ImageLimits): number {
  if (!animated || probe.pages <= 1) return 1;
  if (probe.pages > limits.maxFrames) {
    throw new ProblemError(
      "too-many-frames",
      `the animation has ${probe.pages} frames; at most ${limits.maxFrames} are kept with animated=true (omit it to get the first frame)`,
      { extras: { frames: probe.pages, maxFrames: limits.maxFrames } },
    );
  }
  const total = probe.width * probe.height * probe.pages;
  if (total > limits.maxInputPixels) {
    throw new ProblemError(
      "too-many-pixels",
      `the animation has ${probe.pages} frames of ${probe.width}×${probe.height}, ${(total / 1e6).toFixed(1)} MP in all; at most ${(limits.maxInputPixels / 1e6).toFixed(1)} MP are accepted`,
      { extras: { frames: probe.pages, maxPixels: limits.maxInputPixels } },
    );
  }
  return probe.pages;
}
