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
  return { id: `key_${keyPart}`, token: apiKeyToken(keyPart, secret), secretSha256: hashSecret(secret) };
}

/** The token of a key id's sortable part and a secret, with its checksum. */
export function apiKeyToken(keyPart: string, secret: string): string {
  const body = `${API_KEY_PREFIX}_${keyPart}_${secret}`;
  return body + checksumOf(body);
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

/**
 * What a secret given with an unknown key id is checked against: the hash of
 * a random secret nobody holds, so the check never matches.
 */
const NO_SUCH_KEY_SHA256 = hashSecret(randomBytes(32).toString("base64url"));

/**
 * Compares in constant time so the response time tells nothing about how
 * much of a guess was right; and for a key id that does not exist (stored
 * undefined) it does the same hashing and comparing against a hash nobody
 * holds, so the time does not tell which key ids exist either.
 */
export function secretMatches(secret: string, storedSha256Hex: string | undefined): boolean {
  const given = createHash("sha256").update(secret).digest();
  const stored = Buffer.from(storedSha256Hex ?? NO_SUCH_KEY_SHA256, "hex");
  const equal = stored.length === given.length && timingSafeEqual(given, stored);
  return equal && storedSha256Hex !== undefined;
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
