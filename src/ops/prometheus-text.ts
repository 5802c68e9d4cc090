/** One sample line: `name{label="value",…} value`. */
export interface PromSample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** Label values a sample must have (others may be present). */
export type LabelMatch = Readonly<Record<string, string>>;

/**
 * A parsed exposition (Prometheus text format 0.0.4, as prom-client writes
 * it), indexed by sample name. Histograms stay as their `_bucket`, `_sum`
 * and `_count` samples; `# TYPE` lines are kept by family name.
 */
export class Exposition {
  readonly #byName = new Map<string, PromSample[]>();
  readonly types = new Map<string, string>();
  /** Lines that were neither comments nor samples: skipped, not fatal (a foreign exporter's quirk). */
  invalidLines = 0;

  add(sample: PromSample): void {
    const list = this.#byName.get(sample.name);
    if (list) list.push(sample);
    else this.#byName.set(sample.name, [sample]);
  }

  /** Every sample of `name` whose labels include `match`. */
  samples(name: string, match: LabelMatch = {}): PromSample[] {
    const all = this.#byName.get(name) ?? [];
    const wanted = Object.entries(match);
    if (wanted.length === 0) return all;
    return all.filter((s) => wanted.every(([k, v]) => s.labels[k] === v));
  }

  /** The value of the first matching sample; undefined when there is none. */
  value(name: string, match: LabelMatch = {}): number | undefined {
    return this.samples(name, match)[0]?.value;
  }

  /** The sum over matching samples; undefined when there is none (a counter never incremented has no labelled sample). */
  sum(name: string, match: LabelMatch = {}): number | undefined {
    const list = this.samples(name, match);
    return list.length === 0 ? undefined : list.reduce((total, s) => total + s.value, 0);
  }

  /**
   * The cumulative buckets of histogram `family` summed over every labelled
   * series matching `match` (e.g. all methods and statuses of one route),
   * sorted by upper bound; `+Inf` last. Empty when the histogram has no series.
   */
  buckets(family: string, match: LabelMatch = {}): Bucket[] {
    const byBound = new Map<number, number>();
    for (const s of this.samples(`${family}_bucket`, match)) {
      const le = parseNumber(s.labels.le ?? "");
      if (le === undefined) continue;
      byBound.set(le, (byBound.get(le) ?? 0) + s.value);
    }
    return [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  }

  get names(): string[] {
    return [...this.#byName.keys()];
  }
}

/** One cumulative histogram bucket: observations ≤ `le`. */
export interface Bucket {
  le: number;
  count: number;
}

/** Parses the text format. Never throws: malformed lines are counted in `invalidLines`. */
export function parsePrometheusText(text: string): Exposition {
  const out = new Exposition();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const type = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (type?.[1] && type[2]) out.types.set(type[1], type[2]);
      continue;
    }
    const sample = parseSampleLine(line);
    if (sample) out.add(sample);
    else out.invalidLines++;
  }
  return out;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** `name{a="x",b="y \"q\""} 1.5 [timestamp]`, or null when the line is not one. */
export function parseSampleLine(line: string): PromSample | null {
  const name = NAME.exec(line)?.[0];
  if (!name) return null;
  let rest = line.slice(name.length);
  let labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    const parsed = parseLabels(rest);
    if (!parsed) return null;
    labels = parsed.labels;
    rest = rest.slice(parsed.length);
  }
  // The value, then an optional timestamp in milliseconds (which we do not need).
  const fields = rest.trim().split(/\s+/);
  if (fields.length < 1 || fields.length > 2 || !/^\s/.test(rest)) return null;
  const value = parseNumber(fields[0] ?? "");
  return value === undefined ? null : { name, labels, value };
}

/** Parses `{…}` at the start of `text`; returns the labels and how many characters it took. */
function parseLabels(text: string): { labels: Record<string, string>; length: number } | null {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (text[i] === " " || text[i] === ",") i++;
    if (text[i] === "}") return { labels, length: i + 1 };
    const key = LABEL_NAME.exec(text.slice(i))?.[0];
    if (!key) return null;
    i += key.length;
    while (text[i] === " ") i++;
    if (text[i] !== "=" || text[i + 1] !== '"') return null;
    i += 2;
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) return null;
      if (c === '"') break;
      if (c === "\\") {
        const next = text[i + 1];
        value += next === "n" ? "\n" : (next ?? "");
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[key] = value;
    i++;
  }
}

/** Go's float syntax as Prometheus writes it, with `NaN`, `+Inf` and `-Inf`. */
export function parseNumber(text: string): number | undefined {
  switch (text) {
    case "NaN":
      return Number.NaN;
    case "+Inf":
    case "Inf":
      return Number.POSITIVE_INFINITY;
    case "-Inf":
      return Number.NEGATIVE_INFINITY;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}
