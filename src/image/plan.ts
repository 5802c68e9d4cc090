import type { ImageLimits } from "../config/schema.js";
import { ALL_AUTO_CHOICES, type AutoChoices, chooseOutputFormat } from "./negotiate.js";
import { badOption, type ResizeOptions } from "./options.js";
import { framesToDecode, type Probe } from "./probe.js";
import type { ResizeSpec } from "./spec.js";
import { NODE_POLICY, type TenantPolicy } from "./tenant-policy.js";

export interface Plan {
  spec: ResizeSpec;
  variesByAccept: boolean;
}

/** libvips rasterises SVG at 72 DPI by default; 2400 DPI bounds the work a tiny viewBox can ask for. */
const SVG_BASE_DPI = 72;
const SVG_MAX_DPI = 2400;

/** Resolves options against the input's header into the spec a worker runs. */
export function planResize(
  options: ResizeOptions,
  probe: Probe,
  accept: string | undefined,
  limits: ImageLimits,
  policy: TenantPolicy = NODE_POLICY,
  /** What `format=auto` may choose for this caller (from feature flags). */
  choices: AutoChoices = ALL_AUTO_CHOICES,
): Plan {
  const pages = framesToDecode(probe, options.animated, limits);
  const animated = pages > 1;
  const { format, variesByAccept } = chooseOutputFormat(
    options.format,
    accept,
    { ...probe, animated },
    policy.outputFormats,
    choices,
  );
  if (animated && format !== "gif" && format !== "webp") {
    throw badOption("format", format, "gif, webp or auto with animated=true (other formats hold one frame)");
  }
  const width = options.w === undefined ? undefined : Math.round(options.w * options.dpr);
  const height = options.h === undefined ? undefined : Math.round(options.h * options.dpr);
  const spec: ResizeSpec = {
    inputFormat: probe.format,
    outputFormat: format,
    width,
    height,
    fit: options.fit,
    position: options.position,
    quality: options.q,
    enlarge: options.enlarge,
    background: options.background,
    strip: options.strip,
    blur: options.blur,
    sharpen: options.sharpen,
    pages,
    density: probe.format === "svg" ? svgDensity(width, height, probe) : undefined,
    limits: {
      maxInputPixels: limits.maxInputPixels,
      maxOutputDimension: limits.maxOutputDimension,
      timeoutMs: limits.processingTimeoutMs,
    },
  };
  return { spec, variesByAccept };
}

/** A vector is drawn at the size asked for, not drawn small and enlarged. */
function svgDensity(width: number | undefined, height: number | undefined, probe: Probe): number {
  const scale = Math.max(1, (width ?? 0) / probe.width, (height ?? 0) / probe.height);
  return Math.min(SVG_MAX_DPI, Math.ceil(SVG_BASE_DPI * scale));
}
