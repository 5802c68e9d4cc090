import type { ImageLimits } from "../config/schema.js";
import { chooseOutputFormat } from "./negotiate.js";
import { badOption, type ResizeOptions } from "./options.js";
import { framesToDecode, type Probe } from "./probe.js";
import type { ResizeSpec } from "./spec.js";

export interface Plan {
  spec: ResizeSpec;
  variesByAccept: boolean;
}

/** Resolves options against the input's header into the spec a worker runs. */
export function planResize(
  options: ResizeOptions,
  probe: Probe,
  accept: string | undefined,
  limits: ImageLimits,
): Plan {
  const pages = framesToDecode(probe, options.animated, limits);
  const animated = pages > 1;
  const { format, variesByAccept } = chooseOutputFormat(options.format, accept, { ...probe, animated });
  if (animated && format !== "gif" && format !== "webp") {
    throw badOption("format", format, "gif, webp or auto with animated=true (other formats hold one frame)");
  }
  const spec: ResizeSpec = {
    inputFormat: probe.format,
    outputFormat: format,
    width: options.w === undefined ? undefined : Math.round(options.w * options.dpr),
    height: options.h === undefined ? undefined : Math.round(options.h * options.dpr),
    fit: options.fit,
    position: options.position,
    quality: options.q,
    enlarge: options.enlarge,
    background: options.background,
    strip: options.strip,
    blur: options.blur,
    sharpen: options.sharpen,
    pages,
    limits: {
      maxInputPixels: limits.maxInputPixels,
      maxOutputDimension: limits.maxOutputDimension,
      timeoutMs: limits.processingTimeoutMs,
    },
  };
  return { spec, variesByAccept };
}
