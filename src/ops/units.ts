/**
 * Series values in words a person reads at a glance: `340 ms`, `2.5%`,
 * `480 MB`, `12 s` / `5.2 min`. Pure (no imports), so the CLI shares it.
 */

interface Scale {
  divisor: number;
  suffix: string;
}

const MB = 2 ** 20;

/** The scale that suits `reference` (a value, or a band's mean) in `unit`. */
function scaleFor(unit: string, reference: number): Scale {
  const r = Math.abs(reference);
  switch (unit) {
    case "ratio":
      return { divisor: 0.01, suffix: "%" };
    case "bytes":
      if (r >= 2 ** 30) return { divisor: 2 ** 30, suffix: " GB" };
      if (r >= MB) return { divisor: MB, suffix: " MB" };
      if (r >= 1024) return { divisor: 1024, suffix: " KB" };
      return { divisor: 1, suffix: " B" };
    case "s":
      if (r >= 172_800) return { divisor: 86_400, suffix: " days" };
      if (r >= 7200) return { divisor: 3600, suffix: " h" };
      if (r >= 120) return { divisor: 60, suffix: " min" };
      return { divisor: 1, suffix: " s" };
    case "ms":
      return r >= 10_000 ? { divisor: 1000, suffix: " s" } : { divisor: 1, suffix: " ms" };
    default:
      return { divisor: 1, suffix: ` ${unit}` };
  }
}

/** Two or three significant figures, no trailing zeros: 340, 12.3, 0.35, 0. */
export function shortNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  const digits =
    a >= 100 || a === 0 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : Math.min(6, 1 - Math.floor(Math.log10(a)));
  return String(Number(n.toFixed(digits)));
}

/** `340 ms`, `2.5%`, `480 MB`, `5.2 min`, `12 req/s`. */
export function formatValue(unit: string, value: number): string {
  const s = scaleFor(unit, value);
  return `${shortNumber(value / s.divisor)}${s.suffix}`;
}

/** `80 ± 20 ms`: both numbers in the mean's scale. */
export function formatBand(unit: string, mean: number, stddev: number): string {
  const s = scaleFor(unit, Math.max(Math.abs(mean), stddev));
  return `${shortNumber(mean / s.divisor)} ± ${shortNumber(stddev / s.divisor)}${s.suffix}`;
}

const BARS = "▁▂▃▄▅▆▇█";

/**
 * A one-line chart of `values`, at most `width` characters (averaging
 * neighbours when there are more values); flat series sit on the bottom bar.
 */
export function sparkline(values: readonly number[], width = 60): string {
  if (values.length === 0) return "";
  const columns = Math.min(width, values.length);
  const buckets = Array.from({ length: columns }, (_, i) => {
    const from = Math.floor((i * values.length) / columns);
    const to = Math.max(from + 1, Math.floor(((i + 1) * values.length) / columns));
    const slice = values.slice(from, to);
    return slice.reduce((a, b) => a + b, 0) / slice.length;
  });
  const low = Math.min(...buckets);
  const high = Math.max(...buckets);
  const span = high - low;
  return buckets
    .map((v) => BARS[span === 0 ? 0 : Math.round(((v - low) / span) * (BARS.length - 1))] ?? BARS[0])
    .join("");
}
