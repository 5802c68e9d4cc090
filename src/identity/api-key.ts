import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import { SORTABLE_ID, sortableId } from "./ids.js";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** 32 random bytes need 43 base62 characters (62^43 > 2^256). */
const SECRET_LENGTH = 43;
/** CRC-32 fits in 6 base62 characters (62^6 > 2^32). */
const CHECKSUM_LENGTH = 6;
export const API_KEY_PREFIX = "imf";
const KEY_SHAPE = new RegExp(
  `^${API_KEY_PREFIX}_([0-9a-z]{26})_([0-9A-Za-z]{${SECRET_LENGTH}})([0-9A-Za-z]{${CHECKSUM_LENGTH}})$`,
);

/** A freshly made key: the token is shown once; only the hash is stored. */
export interface NewApiKey {
  id: string;
  token: string;
  secretSha256: string;
}

export type ParsedApiKey =
  | { ok: true; id: string; secret: string }
  | { ok: false; reason: "shape" | "checksum" };

/**
 * `imf_<keyid>_<secret><checksum>`: the key id is public and sortable, the
 * secret is 32 random bytes in base62, and a CRC-32 of everything before it
 * catches a mistyped or truncated key before any lookup.
 */
export function generateApiKey(): NewApiKey {
  const keyPart = sortableId();
  const secret = toBase62(randomBytes(32), SECRET_LENGTH);
  const body = `${API_KEY_PREFIX}_${keyPart}_${secret}`;
  return { id: `key_${keyPart}`, token: body + checksumOf(body), secretSha256: hashSecret(secret) };
}

export function parseApiKey(token: string): ParsedApiKey {
  const match = KEY_SHAPE.exec(token);
  if (!match) return { ok: false, reason: "shape" };
  const [, keyPart = "", secret = "", checksum = ""] = match;
  if (!SORTABLE_ID.test(keyPart)) return { ok: false, reason: "shape" };
  const body = `${API_KEY_PREFIX}_${keyPart}_${secret}`;
  if (checksumOf(body) !== checksum) return { ok: false, reason: "checksum" };
  return { ok: true, id: `key_${keyPart}`, secret };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Compares in constant time so the response time tells nothing about how much of a guess was right. */
export function secretMatches(secret: string, storedSha256Hex: string): boolean {
  const given = createHash("sha256").update(secret).digest();
  const stored = Buffer.from(storedSha256Hex, "hex");
  return stored.length === given.length && timingSafeEqual(given, stored);
}

function checksumOf(body: string): string {
  return toBase62(Buffer.from(crc32(body).toString(16).padStart(8, "0"), "hex"), CHECKSUM_LENGTH);
}

function toBase62(bytes: Buffer, width: number): string {
  let n = BigInt(`0x${bytes.toString("hex") || "0"}`);
  let out = "";
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(width, "0");
}
