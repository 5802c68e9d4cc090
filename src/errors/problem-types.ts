/**
 * The one registry of problem types (RFC 9457). Every error that can reach a
 * client or a log has a stable code here. `docs/errors.md` documents each
 * one; a test checks both directions. Codes are never reused or renamed: a
 * retired code moves to RETIRED_PROBLEM_CODES.
 */
export const PROBLEM_TYPES = {
  "bad-option": { status: 400, title: "Invalid resize option" },
  "empty-body": { status: 400, title: "The request has no image" },
  "bad-request": { status: 400, title: "Malformed request" },
  "not-found": { status: 404, title: "No such resource" },
  "too-large": { status: 413, title: "Input image is too large" },
  "unsupported-media-type": { status: 415, title: "Unsupported Content-Type" },
  "unsupported-format": { status: 415, title: "Unsupported image format" },
  "corrupt-image": { status: 422, title: "The image could not be decoded" },
  "too-many-pixels": { status: 422, title: "The image has too many pixels" },
  "too-many-frames": { status: 422, title: "The image has too many frames" },
  internal: { status: 500, title: "Internal error" },
  "worker-crashed": { status: 502, title: "An image worker crashed" },
  overloaded: { status: 503, title: "The service is overloaded" },
  "shutting-down": { status: 503, title: "The node is shutting down" },
  timeout: { status: 504, title: "The request took too long" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEM_TYPES;

/** Codes that once existed; kept so nobody gives them a new meaning. */
export const RETIRED_PROBLEM_CODES: readonly string[] = [];

/** Problem types are relative URIs served by every node at `/problems/<code>`. */
export const PROBLEM_TYPE_PREFIX = "/problems/";

export function problemTypeUri(code: ProblemCode): string {
  return `${PROBLEM_TYPE_PREFIX}${code}`;
}

export function isProblemCode(value: string): value is ProblemCode {
  return Object.hasOwn(PROBLEM_TYPES, value);
}
