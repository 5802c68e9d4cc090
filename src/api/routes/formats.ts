import type { FastifyInstance } from "fastify";
import type { Config } from "../../config/schema.js";
import { OUTPUT_FORMATS } from "../../image/formats.js";
import { FITS, KNOWN_OPTIONS, MAX_BLUR_SIGMA, MAX_DPR, MAX_SHARPEN_SIGMA } from "../../image/options.js";

/** What this node accepts and produces, and its limits, so a client can check before uploading. */
export function formatsRoute(app: FastifyInstance, config: Readonly<Config>) {
  const { limits } = config;
  const body = {
    input: limits.inputFormats,
    output: [...OUTPUT_FORMATS, "auto"],
    options: KNOWN_OPTIONS,
    fits: FITS,
    limits: {
      maxInputBytes: limits.maxInputBytes,
      maxInputPixels: limits.maxInputPixels,
      maxOutputDimension: limits.maxOutputDimension,
      maxFrames: limits.maxFrames,
      processingTimeoutMs: limits.processingTimeoutMs,
      maxDpr: MAX_DPR,
      maxBlurSigma: MAX_BLUR_SIGMA,
      maxSharpenSigma: MAX_SHARPEN_SIGMA,
    },
  };
  app.get("/v1/formats", async () => body);
}
