import { createHash } from "node:crypto";
import type { ResizeSpec } from "../image/spec.js";

/** Bump when the pipeline's output for the same input and spec changes. */
const PIPELINE_VERSION = "1";

/**
 * A strong validator known before processing: the same bytes and the same
 * resolved spec always give the same image, so a client holding this ETag
 * can be answered 304 without queueing anything.
 */
export function etagFor(input: Buffer, spec: ResizeSpec): string {
  const hash = createHash("sha256");
  hash.update(input);
  hash.update(PIPELINE_VERSION);
  hash.update(JSON.stringify(spec, Object.keys(spec).sort()));
  hash.update(JSON.stringify(spec.limits));
  return `"${hash.digest("base64url").slice(0, 27)}"`;
}

export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}
