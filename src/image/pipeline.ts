import sharp, { type Sharp } from "sharp";
import type { WireProblem } from "../errors/problem.js";
import type { OutputFormat } from "./formats.js";
import type { OutputInfo, ResizeSpec } from "./spec.js";

export interface ResizeResult {
  data: Buffer;
  info: OutputInfo;
}

/** Defaults written down: AVIF effort 3 keeps an 800 px encode interactive (effort 4, sharp's default, ~2× slower). */
const ENCODER_DEFAULTS = {
  jpeg: { quality: 80 },
  png: { compressionLevel: 6 },
  webp: { quality: 80, effort: 4 },
  avif: { quality: 50, effort: 3 },
  gif: {},
} as const;

/**
 * The image pipeline: a pure function of bytes and spec over sharp. EXIF
 * orientation is always applied; colour is converted to sRGB through the
 * embedded ICC profile; metadata is stripped unless `strip` is false.
 */
export async function resizeImage(input: Buffer, spec: ResizeSpec): Promise<ResizeResult> {
  const image = sharp(input, {
    limitInputPixels: spec.limits.maxInputPixels,
    failOn: "truncated",
    sequentialRead: true,
    pages: spec.pages,
    animated: spec.pages > 1,
    ...(spec.density ? { density: spec.density } : {}),
  }).autoOrient();
  applyGeometry(image, spec);
  if (spec.blur !== undefined) image.blur(spec.blur);
  if (spec.sharpen !== undefined) image.sharpen({ sigma: spec.sharpen });
  if (needsFlatten(spec)) image.flatten({ background: spec.background ?? "#ffffff" });
  if (!spec.strip) image.withMetadata();
  encode(image, spec.outputFormat, spec.quality);
  image.timeout({ seconds: Math.max(1, Math.ceil(spec.limits.timeoutMs / 1000)) });
  const { data, info } = await image.toBuffer({ resolveWithObject: true }).catch((cause: unknown) => {
    throw new ImageRunError(cause);
  });
  const pages = Math.max(1, info.pageHeight ? Math.round(info.height / info.pageHeight) : 1);
  return {
    data,
    info: {
      format: spec.outputFormat,
      width: info.width,
      height: info.pageHeight ?? info.height,
      bytes: data.length,
      pages,
    },
  };
}

function applyGeometry(image: Sharp, spec: ResizeSpec): void {
  const { maxOutputDimension: max } = spec.limits;
  if (spec.width === undefined && spec.height === undefined) {
    // No size asked: keep the input size, but never write beyond the output limit.
    image.resize({ width: max, height: max, fit: "inside", withoutEnlargement: true });
    return;
  }
  image.resize({
    width: spec.width,
    height: spec.height,
    fit: spec.fit,
    position: spec.position,
    withoutEnlargement: !spec.enlarge,
    // contain pads with transparency unless told otherwise; JPEG has no alpha, so white
    // (sharp flattens before resizing, so the padding must already be the final colour).
    background: spec.background ?? (spec.outputFormat === "jpeg" ? "#ffffff" : "#00000000"),
  });
}

/** JPEG has no alpha; an explicit background also flattens. */
function needsFlatten(spec: ResizeSpec): boolean {
  return spec.outputFormat === "jpeg" || (spec.background !== undefined && spec.fit !== "contain");
}

function encode(image: Sharp, format: OutputFormat, quality: number | undefined): void {
  const q = quality === undefined ? {} : { quality };
  switch (format) {
    case "jpeg":
      image.jpeg({ ...ENCODER_DEFAULTS.jpeg, ...q });
      return;
    case "png":
      image.png({ ...ENCODER_DEFAULTS.png, ...(quality === undefined ? {} : { palette: true, quality }) });
      return;
    case "webp":
      image.webp({ ...ENCODER_DEFAULTS.webp, ...q });
      return;
    case "avif":
      image.avif({ ...ENCODER_DEFAULTS.avif, ...q });
      return;
    case "gif":
      image.gif({});
      return;
  }
}

/**
 * A failure while libvips ran over the client's bytes (decoding, processing,
 * encoding them). Building the pipeline from a validated spec fails only on
 * our bugs; running it fails on what the client sent, so the two are told
 * apart by where they happen, not by libvips' wording.
 */
export class ImageRunError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "ImageRunError";
  }
}

const RUN_FAILURES: [RegExp, WireProblem["code"], string][] = [
  [/pixel limit/i, "too-many-pixels", "the image exceeds the pixel limit"],
  [/timeout/i, "timeout", "processing exceeded the per-image time limit"],
  [/unsupported image format/i, "unsupported-format", "the image format is not supported"],
  [/too large for the|exceeds.*(dimension|size)/i, "bad-option", "the output is too large for its format"],
  [
    /premature|truncat|corrupt|invalid|bad |not a |unable to|read error|load|decode|vips|png|jpeg|gif|webp|heif|tiff|svg/i,
    "corrupt-image",
    "the image could not be decoded",
  ],
];

/**
 * Maps a libvips/sharp failure to a problem a client can act on. A failure
 * while running over the client's bytes is the client's (4xx, `corrupt-image`
 * when nothing more precise fits); one while building the pipeline is ours (500).
 */
export function classifySharpError(error: unknown): WireProblem {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.trim().split("\n")[0];
  if (!(error instanceof ImageRunError)) return { code: "internal", detail: `resize failed: ${line}` };
  for (const [pattern, code, summary] of RUN_FAILURES) {
    if (pattern.test(message)) return { code, detail: `${summary}: ${line}` };
  }
  return { code: "corrupt-image", detail: `the image could not be processed: ${line}` };
}
