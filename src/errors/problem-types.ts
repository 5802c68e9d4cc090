import { PROBLEMS_PREFIX } from "../contract/paths.js";

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
  "invalid-body": { status: 400, title: "The request body is not valid" },
  unauthenticated: { status: 401, title: "An API key is required" },
  "invalid-api-key": { status: 401, title: "The API key is not valid" },
  "api-key-expired": { status: 401, title: "The API key has expired" },
  "api-key-revoked": { status: 401, title: "The API key has been revoked" },
  "session-expired": { status: 401, title: "The console session has ended" },
  "missing-scope": { status: 403, title: "The API key lacks a required scope" },
  "wrong-key-type": { status: 403, title: "This kind of key cannot be used here" },
  "tenant-suspended": { status: 403, title: "The account is suspended" },
  "format-not-allowed": { status: 403, title: "The output format is not enabled for this account" },
  "csrf-failed": { status: 403, title: "The request lacks a valid CSRF token" },
  "not-found": { status: 404, title: "No such resource" },
  "method-not-allowed": { status: 405, title: "The path does not accept this method" },
  "request-timeout": { status: 408, title: "The request did not arrive in time" },
  "upload-too-slow": { status: 408, title: "The upload arrived too slowly" },
  conflict: { status: 409, title: "The request conflicts with existing data" },
  "too-large": { status: 413, title: "Input image is too large" },
  "unsupported-media-type": { status: 415, title: "Unsupported Content-Type" },
  "unsupported-format": { status: 415, title: "Unsupported image format" },
  "corrupt-image": { status: 422, title: "The image could not be decoded" },
  "too-many-pixels": { status: 422, title: "The image has too many pixels" },
  "too-many-frames": { status: 422, title: "The image has too many frames" },
  "too-many-scans": { status: 422, title: "The JPEG has too many scans" },
  "rate-limited": { status: 429, title: "Too many requests" },
  "too-many-in-flight": { status: 429, title: "Too many requests in progress" },
  "staging-share-exceeded": { status: 429, title: "The account holds its whole share of upload staging" },
  "sign-in-rate-limited": { status: 429, title: "Too many sign-in attempts" },
  "auth-rate-limited": { status: 429, title: "Too many failed authentication attempts" },
  internal: { status: 500, title: "Internal error" },
  "worker-crashed": { status: 502, title: "An image worker crashed" },
  overloaded: { status: 503, title: "The service is overloaded" },
  "shutting-down": { status: 503, title: "The node is shutting down" },
  "database-unavailable": { status: 503, title: "The management database is unavailable" },
  "identity-not-ready": { status: 503, title: "The node has not loaded its API keys yet" },
  "queue-unavailable": { status: 503, title: "The job queue is unavailable for a moment" },
  "metering-unavailable": { status: 503, title: "Usage cannot be recorded right now" },
  "storage-full": { status: 503, title: "A disk this request needs is full" },
  "flags-unavailable": { status: 503, title: "Feature flags cannot be read or changed right now" },
  "console-not-built": { status: 503, title: "The web console has not been built" },
  // Images by URL (GET deliveries): the URL, its signature, and the tenant's source origin.
  "unsupported-option": { status: 400, title: "The processing option is not supported" },
  "invalid-signature": { status: 403, title: "The URL signature is not valid" },
  "url-expired": { status: 404, title: "The signed URL has expired" },
  "source-not-allowed": { status: 403, title: "The source URL is not allowed for this account" },
  "source-forbidden": { status: 403, title: "The source address is refused" },
  "source-not-found": { status: 404, title: "The source image was not found" },
  "source-too-large": { status: 422, title: "The source image is too large" },
  "source-error": { status: 502, title: "The source origin failed" },
  "source-timeout": { status: 504, title: "The source origin did not answer in time" },
  timeout: { status: 504, title: "The request took too long" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEM_TYPES;

/** Codes that once existed; kept so nobody gives them a new meaning. */
export const RETIRED_PROBLEM_CODES: readonly string[] = [];

/** Problem types are relative URIs served by every node at `/problems/<code>`. */
export const PROBLEM_TYPE_PREFIX = `${PROBLEMS_PREFIX}/`;

export function problemTypeUri(code: ProblemCode): string {
  return `${PROBLEM_TYPE_PREFIX}${code}`;
}

export function isProblemCode(value: string): value is ProblemCode {
  return Object.hasOwn(PROBLEM_TYPES, value);
}
