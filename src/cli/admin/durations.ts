/** Seconds per unit. Months and years are left out: their length varies, so "30d" says what it means. */
const UNIT_SECONDS = { w: 604_800, d: 86_400, h: 3_600, m: 60, s: 1 } as const;

type Unit = keyof typeof UNIT_SECONDS;

/** One or more `<integer><unit>` parts, largest first by convention (`1h30m`), nothing else. */
const DURATION = /^(?:\d+[wdhms])+$/;
const PART = /(\d+)([wdhms])/g;

/** Thrown for text that is not a duration or a date-time; the command adds the flag's name. */
export class DurationError extends Error {
  override readonly name = "DurationError";
}

export function isDuration(text: string): boolean {
  return DURATION.test(text.trim().toLowerCase());
}

/**
 * Parses `30d`, `12h`, `15m`, `3600s`, `1w` or combinations such as `1h30m`
 * into whole seconds. A bare number is refused rather than guessed at:
 * "--grace 60" could mean seconds or minutes, and a wrong guess is silent.
 * `0` alone is allowed, since zero has no unit.
 */
export function parseDuration(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === "0") return 0;
  if (!DURATION.test(t)) {
    const hint = /^\d+$/.test(t) ? ` (add a unit: ${t}s, ${t}m, ${t}h or ${t}d)` : "";
    throw new DurationError(`'${text}' is not a duration such as 30d, 12h, 15m or 3600s${hint}`);
  }
  let seconds = 0;
  for (const [, amount, unit] of t.matchAll(PART)) {
    seconds += Number(amount) * UNIT_SECONDS[unit as Unit];
  }
  if (!Number.isSafeInteger(seconds)) throw new DurationError(`'${text}' is too long a duration`);
  return seconds;
}

/**
 * A point in time as an ISO 8601 string with an offset (what the admin API
 * accepts). Takes an ISO date-time or a bare date (midnight UTC); with
 * `orAgo`, also a duration back from now (`--since 24h`).
 */
export function parseInstant(text: string, orAgo = false, now = Date.now()): string {
  const t = text.trim();
  if (orAgo && isDuration(t)) return new Date(now - parseDuration(t) * 1000).toISOString();
  // Date.parse takes a bare date as UTC midnight and a date-time without offset as local time,
  // which is what a person typing either means.
  const ms = /^\d{4}-\d{2}-\d{2}/.test(t) ? Date.parse(t) : Number.NaN;
  if (Number.isNaN(ms)) {
    const expected = orAgo
      ? "a duration such as 24h or a date-time such as 2026-01-31T00:00:00Z"
      : "a date-time such as 2027-01-31T00:00:00Z";
    throw new DurationError(`'${text}' is not ${expected}`);
  }
  return new Date(ms).toISOString();
}
