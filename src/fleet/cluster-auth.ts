import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** How far a request's clock may be from ours: covers clock skew and a slow network, not replays. */
export const MAX_SKEW_MS = 30_000;
/** Nonces remembered to refuse replays within the skew window; a bound, not an expectation. */
const MAX_NONCES = 200_000;

export const HEADERS = {
  timestamp: "x-imgfleet-timestamp",
  nonce: "x-imgfleet-nonce",
  signature: "x-imgfleet-signature",
} as const;

export type ClusterAuthFailure = "missing" | "stale" | "replayed" | "signature" | "busy";

function bodyHash(body: Uint8Array | undefined): string {
  return createHash("sha256")
    .update(body ?? new Uint8Array(0))
    .digest("hex");
}

function mac(secret: string, method: string, path: string, timestamp: string, nonce: string, hash: string) {
  return createHmac("sha256", secret).update(`${method}\n${path}\n${timestamp}\n${nonce}\n${hash}`).digest();
}

/**
 * Headers that authenticate one internal request between nodes: an HMAC of
 * the method, path, time, a fresh nonce and the body's hash, keyed by the
 * cluster secret. Not a session: every request signs itself.
 */
export function signRequest(
  secret: string,
  method: string,
  path: string,
  body?: Uint8Array,
  now = Date.now(),
): Record<string, string> {
  const timestamp = String(now);
  const nonce = randomBytes(16).toString("base64url");
  const signature = mac(secret, method, path, timestamp, nonce, bodyHash(body)).toString("base64url");
  return { [HEADERS.timestamp]: timestamp, [HEADERS.nonce]: nonce, [HEADERS.signature]: signature };
}

/**
 * Checks internal requests: signature in constant time, timestamp within
 * the skew, and a nonce not seen before within that window (replay-safe).
 */
export class ClusterVerifier {
  /** Nonce → when it stops mattering (its timestamp + skew). Insertion order ≈ expiry order. */
  readonly #nonces = new Map<string, number>();

  constructor(
    private readonly secret: string,
    private readonly now: () => number = Date.now,
  ) {}

  verify(
    method: string,
    path: string,
    headers: Record<string, string | string[] | undefined>,
    body?: Uint8Array,
  ): ClusterAuthFailure | null {
    const timestamp = one(headers[HEADERS.timestamp]);
    const nonce = one(headers[HEADERS.nonce]);
    const signature = one(headers[HEADERS.signature]);
    if (!timestamp || !nonce || !signature) return "missing";
    const at = Number(timestamp);
    const now = this.now();
    if (!Number.isFinite(at) || Math.abs(now - at) > MAX_SKEW_MS) return "stale";
    const expected = mac(this.secret, method, path, timestamp, nonce, bodyHash(body));
    const given = Buffer.from(signature, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "signature";
    this.#forgetExpired(now);
    if (this.#nonces.has(nonce)) return "replayed";
    if (this.#nonces.size >= MAX_NONCES) return "busy";
    this.#nonces.set(nonce, at + MAX_SKEW_MS);
    return null;
  }

  #forgetExpired(now: number): void {
    for (const [nonce, until] of this.#nonces) {
      if (until > now) break;
      this.#nonces.delete(nonce);
    }
  }
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
