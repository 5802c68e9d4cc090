import { z } from "zod";
import { OUTPUT_FORMATS } from "./vocabulary.js";

/**
 * The public API's requests and answers (`/v1`), and the unauthenticated
 * routes every node serves (health, problem types).
 */

const number = (description: string) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/)
    .meta({ description });
const flag = (description: string) => z.enum(["true", "false"]).meta({ description });

/**
 * `POST /v1/resize` options, as the query string carries them. The node
 * checks each against its own limits (`GET /v1/formats` lists them) and
 * answers `bad-option` naming the option, the value and what it expects.
 */
export const ResizeQuery = z
  .object({
    w: number("Width in CSS pixels, 1 … limits.maxOutputDimension").optional(),
    h: number("Height in CSS pixels, 1 … limits.maxOutputDimension").optional(),
    fit: z.enum(["cover", "contain", "fill", "inside", "outside"]).optional(),
    position: z
      .string()
      .meta({
        description:
          "centre, north, northeast, … northwest (or top, top-right, …), attention, entropy; default centre",
      })
      .optional(),
    format: z
      .enum([...OUTPUT_FORMATS, "auto"])
      .optional()
      .meta({ description: "auto: from Accept (with Vary: Accept); default: the input's format" }),
    q: number("Quality 1-100").optional(),
    dpr: number("Device pixel ratio 1-4, multiplies w and h").optional(),
    enlarge: flag("Upscale beyond the input size; default false").optional(),
    background: z
      .string()
      .meta({ description: "Hex colour (ff0000, %23ff000080) or white, black, transparent" })
      .optional(),
    strip: flag("false keeps EXIF/XMP metadata; default true").optional(),
    blur: number("Gaussian sigma 0.3-100").optional(),
    sharpen: number("Sigma 0.5-10").optional(),
    animated: flag("Keep every frame of a GIF/WebP; default false").optional(),
  })
  .strict();

export const Formats = z
  .object({
    input: z.array(z.string()),
    output: z.array(z.string()),
    options: z.array(z.string()),
    fits: z.array(z.string()),
    limits: z.object({
      maxInputBytes: z.number().meta({ description: "The caller's own limit" }),
      maxInputPixels: z.number(),
      maxOutputDimension: z.number(),
      maxFrames: z.number(),
      processingTimeoutMs: z.number(),
      maxDpr: z.number(),
      maxBlurSigma: z.number(),
      maxSharpenSigma: z.number(),
    }),
  })
  .meta({ id: "Formats", description: "What this node accepts and produces for the caller, and its limits" });
export type Formats = z.infer<typeof Formats>;

export const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });

export const Readiness = z
  .looseObject({
    status: z.enum(["ready", "not-ready"]),
    ready: z.boolean(),
    reasons: z
      .array(z.string())
      .meta({ description: "Why it is not ready: starting, draining, saturated, …" }),
  })
  .meta({ id: "Readiness" });

export const ProblemTypeDoc = z
  .looseObject({ type: z.string(), status: z.number().int(), title: z.string() })
  .meta({ id: "ProblemType", description: "What a problem type means" });
