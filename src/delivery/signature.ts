import { createHmac, timingSafeEqual } from "node:crypto";
import { ProblemError } from "../errors/problem.js";

/**
 * imgproxy's URL signature: URL-safe Base64 (unpadded) of HMAC-SHA256 keyed
 * by the hex-decoded key, over the hex-decoded salt followed by the path
 * after the signature, leading `/` included.
 */

/** One key/salt pair of a tenant; several are active at once during a rotation. */
export interface SigningKey {
  id: string;
  /** Hex, as imgproxy's IMGPROXY_KEY. */
  key: string;
  /** Hex, as imgproxy's IMGPROXY_SALT. */
  salt: string;
}

const HEX = /^(?:[0-9a-f]{2})+$/i;
const DIGEST_BYTES = 32;
/** 32 bytes of URL-safe Base64 without padding. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

/** Throws when a key or salt is not hex: Buffer.from(…, "hex") would quietly drop what follows a bad digit. */
export function assertSigningKey(pair: SigningKey): void {
  for (const part of ["key", "salt"] as const) {
    if (!HEX.test(pair[part]))
      throw new Error(`signing key ${pair.id}: ${part} must be hex (an even number of digits)`);
  }
}

function digest(path: string, pair: SigningKey): Buffer {
  const hmac = createHmac("sha256", Buffer.from(pair.key, "hex"));
  hmac.update(Buffer.from(pair.salt, "hex"));
  // imgproxy re-adds a missing leading slash; so do we, so both sign the same bytes.
  hmac.update(path.startsWith("/") ? path : `/${path}`);
  return hmac.digest();
}

/** The signature of `path` (everything after the signature segment, leading `/` included). */
export function signPath(path: string, pair: SigningKey): string {
  assertSigningKey(pair);
  return digest(path, pair).toString("base64url");
}

/**
 * The key that signed `path`, or undefined. Every key is tried and compared
 * in constant time, so neither the answer's timing nor its order reveals
 * which key or how many bytes matched.
 */
export function verifySignature(
  signature: string,
  path: string,
  keys: readonly SigningKey[],
): SigningKey | undefined {
  const given = SIGNATURE.test(signature) ? Buffer.from(signature, "base64url") : Buffer.alloc(DIGEST_BYTES);
  const wellFormed = SIGNATURE.test(signature);
  let match: SigningKey | undefined;
  for (const pair of keys) {
    if (!HEX.test(pair.key) || !HEX.test(pair.salt)) continue;
    const equal = timingSafeEqual(given, digest(path, pair));
    if (equal && wellFormed && match === undefined) match = pair;
  }
  return match;
}

export interface SignaturePolicy {
  keys: readonly SigningKey[];
  /** The tenant accepts unsigned URLs (never by default): any signature segment passes. */
  acceptUnsigned: boolean;
}

/** Throws `invalid-signature` (403) unless the request is signed by an active key or the tenant accepts unsigned URLs. */
export function checkSignature(
  request: { signature: string; signedPath: string },
  policy: SignaturePolicy,
): SigningKey | undefined {
  if (policy.acceptUnsigned) return undefined;
  const key = verifySignature(request.signature, request.signedPath, policy.keys);
  if (key) return key;
  throw new ProblemError(
    "invalid-signature",
    policy.keys.length === 0
      ? "this account has no active signing key and does not accept unsigned URLs; create a signing key and sign the URL"
      : "the signature does not match the path under any of this account's active signing keys",
  );
}
