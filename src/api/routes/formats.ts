import type { FastifyInstance } from "fastify";
import type { Config } from "../../config/schema.js";
import { PUBLIC_PREFIX } from "../../contract/paths.js";
import type { Formats } from "../../contract/public.js";
import type { Authenticator } from "../../identity/authenticator.js";
import { OUTPUT_FORMATS } from "../../image/formats.js";
import { FITS, KNOWN_OPTIONS, MAX_BLUR_SIGMA, MAX_DPR, MAX_SHARPEN_SIGMA } from "../../image/options.js";
import { effectiveMaxInputBytes } from "../../image/tenant-policy.js";

/** What this node accepts and produces, and its limits, so a client can check before uploading. */
export function formatsRoute(app: FastifyInstance, config: Readonly<Config>, authenticator: Authenticator) {
  const { limits } = config;
  const body = {
    input: limits.inputFormats,
    output: [...OUTPUT_FORMATS, "auto"],
    options: KNOWN_OPTIONS,
    fits: [...FITS],
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
  // Authenticated like every /v1 route; the answer shows the caller's own limits.
  app.get<{ Reply: Formats }>(`${PUBLIC_PREFIX}/formats`, async (request, reply) => {
    const principal = authenticator.authenticate(request.headers.authorization, "resize", request.ip);
    principal.release();
    reply.headers(principal.headers);
    const { outputFormats } = principal.policy;
    return {
      ...body,
      output: outputFormats ? [...outputFormats, "auto"] : body.output,
      limits: {
        ...body.limits,
        maxInputBytes: effectiveMaxInputBytes(principal.policy, limits.maxInputBytes),
      },
    };
  });
}
