import { SERIES, type SeriesName } from "../series.js";

/** Two significant digits are what a summary needs: "13 GB", "1.5 s", "0.12". */
function sig(value: number): string {
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(2)));
}

/** Decimal units, as disks are sold: "120 GB". */
export function bytes(value: number): string {
  const units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${sig(v)} ${units[i]}`;
}

/** "45 s", "12 min", "3.5 h", "9 days". */
export function seconds(value: number): string {
  if (value < 120) return `${sig(value)} s`;
  if (value < 7200) return `${sig(value / 60)} min`;
  if (value < 172_800) return `${sig(value / 3600)} h`;
  return `${sig(value / 86_400)} days`;
}

export function percent(ratio: number): string {
  return `${sig(ratio * 100)}%`;
}

/** A value of a series in its unit, for summaries. */
export function seriesValue(series: SeriesName, value: number): string {
  const unit = SERIES[series].unit;
  switch (unit) {
    case "bytes":
      return bytes(value);
    case "s":
      return seconds(value);
    case "ratio":
      return percent(value);
    default:
      return `${sig(value)} ${unit}`;
  }
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * A figure that passed its limit, rounded for people but never down onto the limit:
 * "waited 1 s (limit 1 s)" would read as no reason to alert. Rounding up keeps it past.
 */
export function pastLimit(value: number, limit: number, digits: number): number {
  if (value <= limit) return round(value, digits);
  const f = 10 ** digits;
  return Math.ceil(value * f) / f;
}
