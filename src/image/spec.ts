import type { InputFormat } from "../config/schema.js";
import type { OutputFormat } from "./formats.js";
import type { Fit, Position } from "./options.js";

/**
 * Everything a worker needs to resize one image: validated options resolved
 * against the input's header. Small and serialisable: it travels in the job
 * message; the bytes travel separately.
 */
export interface ResizeSpec {
  inputFormat: InputFormat;
  outputFormat: OutputFormat;
  /** Target size in device pixels (w × dpr); undefined keeps the aspect ratio or the input size. */
  width?: number | undefined;
  height?: number | undefined;
  fit: Fit;
  position: Position;
  quality?: number | undefined;
  enlarge: boolean;
  background?: string | undefined;
  strip: boolean;
  blur?: number | undefined;
  sharpen?: number | undefined;
  /** Vector input only: rasterise at this DPI so the target size needs no upscaling. */
  density?: number | undefined;
  /** Frames to decode: 1 unless animated output was asked for. */
  pages: number;
  limits: {
    maxInputPixels: number;
    maxOutputDimension: number;
    timeoutMs: number;
  };
}

/** What a worker reports about the image it wrote. */
export interface OutputInfo {
  format: OutputFormat;
  width: number;
  height: number;
  bytes: number;
  pages: number;
}
