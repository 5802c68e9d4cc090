import { randomBytes } from "node:crypto";

/** Crockford's base32, lower case: no i, l, o or u to misread. */
const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * A ULID-shaped id: 48 bits of milliseconds then 80 random bits, 26
 * characters. Sorts by creation time, reveals nothing sequential, and is
 * safe in URLs, KV keys and the API key format.
 */
export function sortableId(now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = BASE32[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = randomBytes(10);
  let rest = "";
  // 80 bits = 16 characters of 5 bits each.
  let acc = 0n;
  for (const byte of random) acc = (acc << 8n) | BigInt(byte);
  for (let i = 0; i < 16; i++) {
    rest = BASE32[Number(acc & 31n)] + rest;
    acc >>= 5n;
  }
  return time + rest;
}

export const SORTABLE_ID = /^[0-9a-hjkmnp-tv-z]{26}$/;

export type IdPrefix = "ten" | "key" | "aud";

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${sortableId()}`;
}

export function isId(prefix: IdPrefix, value: string): boolean {
  return value.startsWith(`${prefix}_`) && SORTABLE_ID.test(value.slice(prefix.length + 1));
}
