import type { ImageLimits } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import { sourceMatcher } from "./allowed-sources.js";
import { type DeliveryRequest, parseDeliveryPath } from "./imgproxy-url.js";
import { type DeliveryOptions, type Presets, resolveDeliveryOptions } from "./processing-options.js";
import { checkSignature, type SigningKey } from "./signature.js";

/** What a tenant has set up for deliveries by URL (carried to every node like its API keys). */
export interface DeliveryEnvelope {
  /** Active key/salt pairs; a revoked pair is simply absent. */
  signingKeys: readonly SigningKey[];
  /** Never by default. */
  acceptUnsigned: boolean;
  /** URL prefixes (see allowed-sources.ts). */
  sources: readonly string[];
  presets: Presets;
}

export interface InterpretedDelivery {
  request: DeliveryRequest;
  options: DeliveryOptions;
  /** The key that signed the URL; undefined when the tenant accepts unsigned URLs. */
  key: SigningKey | undefined;
  /** For the source fetcher: asked of the source and of every redirect target. */
  isAllowedSource: (url: URL) => boolean;
}

/**
 * Everything about a delivery URL that needs no network: parse it, check its
 * signature first (as imgproxy does, so an unsigned URL learns nothing about
 * options or sources), resolve its options into POST /v1/resize's, and check
 * its source against the tenant's allowed sources.
 */
export function interpretDeliveryPath(
  rawPath: string,
  envelope: DeliveryEnvelope,
  context: { limits: ImageLimits; now: Date },
): InterpretedDelivery {
  const request = parseDeliveryPath(rawPath);
  const key = checkSignature(request, {
    keys: envelope.signingKeys,
    acceptUnsigned: envelope.acceptUnsigned,
  });
  const options = resolveDeliveryOptions(request, { ...context, presets: envelope.presets });
  const isAllowedSource = sourceMatcher(envelope.sources);
  if (!isAllowedSource(new URL(request.source))) {
    throw new ProblemError(
      "source-not-allowed",
      envelope.sources.length === 0
        ? "this account has no allowed sources yet; add the source's URL prefix"
        : `${request.source} is not under any of this account's allowed sources`,
      { extras: { url: request.source } },
    );
  }
  return { request, options, key, isAllowedSource };
}
