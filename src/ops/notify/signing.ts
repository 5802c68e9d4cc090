import { createHmac, timingSafeEqual } from "node:crypto";

/** The header that carries the signature of a notification. */
export const SIGNATURE_HEADER = "x-imgfleet-signature";

/** A receiver should refuse signatures older than this (replays of a captured delivery). */
export const DEFAULT_TOLERANCE_S = 300;

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the time is
 * signed with the body, so a captured delivery cannot be replayed later
 * with a fresh time. Same shape as Stripe's, so receivers have examples.
 */
export function signatureHeader(secret: string, body: string, atS: number): string {
  return `t=${atS},v1=${hmacHex(secret, `${atS}.${body}`)}`;
}

/**
 * What a receiver does (docs/alerts.md shows it in a few lines): parse the
 * header, refuse a stale `t`, recompute the HMAC over `<t>.<raw body>` and
 * compare in constant time. The body must be the bytes as received, before
 * any JSON parsing.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string | undefined,
  options: { nowS?: number; toleranceS?: number } = {},
): boolean {
  if (!header) return false;
  const parts = new Map(
    header.split(",").map((part) => {
      const at = part.indexOf("=");
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1");
  if (!Number.isSafeInteger(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const nowS = options.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(nowS - t) > (options.toleranceS ?? DEFAULT_TOLERANCE_S)) return false;
  return timingSafeEqual(Buffer.from(v1, "hex"), Buffer.from(hmacHex(secret, `${t}.${body}`), "hex"));
}

function hmacHex(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text).digest("hex");
}
