import { z } from "zod";
import { INPUT_FORMATS } from "../config/schema.js";
import { OUTPUT_FORMATS } from "../image/formats.js";
import { FITS, POSITION_ALIASES } from "../image/options.js";
import type { ResizeSpec } from "../image/spec.js";
import { checkWire, type SameKeys, stamped, type WireOrigin, type WireRead } from "../wire/wire.js";
import type { JobMessage } from "./job-queue.js";

const positive = z.number().finite().positive();

/**
 * The resize spec as a worker accepts it. Strict: a field this version does
 * not know is an option it cannot honour, so the job is refused rather than
 * answered with an image that silently ignores it (during a rolling upgrade,
 * an old worker refuses a new option; the request fails instead of lying).
 */
export const ResizeSpecWire = z.strictObject({
  inputFormat: z.enum(INPUT_FORMATS),
  outputFormat: z.enum(OUTPUT_FORMATS),
  width: positive.optional(),
  height: positive.optional(),
  fit: z.enum(FITS),
  position: z.enum(Object.values(POSITION_ALIASES) as [ResizeSpec["position"], ...ResizeSpec["position"][]]),
  quality: positive.optional(),
  enlarge: z.boolean(),
  background: z.string().max(16).optional(),
  strip: z.boolean(),
  blur: positive.optional(),
  sharpen: positive.optional(),
  density: positive.optional(),
  pages: z.number().int().positive(),
  limits: z.strictObject({
    maxInputPixels: positive,
    maxOutputDimension: positive,
    timeoutMs: positive,
  }),
});

/**
 * A job message as read from the queue (version 1). Beyond the spec,
 * unknown fields are tolerated and dropped: they can only be hints a newer
 * API node adds (a trace id), never something the job depends on.
 */
export const JobMessageWire = z.object({
  id: z.string().min(1).max(200),
  tenant: z.string().min(1).nullable(),
  spec: ResizeSpecWire,
  input: z.object({
    node: z.string().min(1),
    key: z.string().min(1),
    bytes: z.number().int().nonnegative(),
    url: z.string().url().optional(),
  }),
  deadline: z.number().int().nonnegative(),
  enqueuedAt: z.number().int().nonnegative(),
  priorAttempts: z.number().int().nonnegative().max(100).optional(),
});
// Compile-time check: what the schema yields is a JobMessage.
const _fits: z.ZodType<JobMessage, z.input<typeof JobMessageWire>> = JobMessageWire;
const _specKeys: SameKeys<ResizeSpec, z.infer<typeof ResizeSpecWire>> = true;
const _limitKeys: SameKeys<ResizeSpec["limits"], z.infer<typeof ResizeSpecWire>["limits"]> = true;
void [_fits, _specKeys, _limitKeys];

export function encodeJobMessage(message: JobMessage): string {
  return JSON.stringify(stamped(message));
}

export function decodeJobMessage(data: Uint8Array | string, origin: WireOrigin): WireRead<JobMessage> {
  return checkWire(JobMessageWire, data, origin);
}
