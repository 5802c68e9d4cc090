import { randomBytes } from "node:crypto";

/** Crockford's base32, lower case: no i, l, o or u to misread. */
const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";

/** The random part's 80 bits. */
const RANDOM_MASK = (1n << 80n) - 1n;
/** The last id's time and random part, so that ids of one millisecond still sort in creation order. */
let last = { time: -1, random: 0n };

/**
 * A ULID-shaped id: 48 bits of milliseconds then 80 random bits, 26
 * characters. Sorts by creation time, reveals nothing sequential, and is
 * safe in URLs, KV keys and the API key format. Within one millisecond of
 * this process the random part grows by a random step instead of being
 * drawn anew, so two tenants created in the same millisecond still list in
 * the order they were created (pages are ordered by id).
 */
export function sortableId(now = Date.now()): string {
  const random =
    now === last.time ? (last.random + 1n + (randomBits(4) & 0xffffffffn)) & RANDOM_MASK : randomBits(10);
  last = { time: now, random };
  return base32(BigInt(now), 10) + base32(random, 16);
}

function randomBits(bytes: number): bigint {
  let value = 0n;
  for (const byte of randomBytes(bytes)) value = (value << 8n) | BigInt(byte);
  return value;
}

/** `value` as `length` base32 characters, most significant first. */
function base32(value: bigint, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) {
    text = BASE32[Number(value & 31n)] + text;
    value >>= 5n;
  }
  return text;
}

export const SORTABLE_ID = /^[0-9a-hjkmnp-tv-z]{26}$/;

export type IdPrefix = "ten" | "key" | "aud";

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${sortableId()}`;
}

export function isId(prefix: IdPrefix, value: string): boolean {
  return value.startsWith(`${prefix}_`) && SORTABLE_ID.test(value.slice(prefix.length + 1));
}
