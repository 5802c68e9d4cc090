import { duration } from "./format.js";

/** What the charts need of a history point (GET /admin/v1/metrics/:series). */
export interface HistoryPoint {
  at: string;
  value: number;
  resolution: "raw" | "hour";
}

export interface LineData {
  /** Epoch seconds, ascending. */
  x: number[];
  /** Null where there were no samples: uPlot breaks the line there (spanGaps false). */
  y: (number | null)[];
}

/** Two points further apart than this many expected spacings have a gap between them. */
const GAP_SPACINGS = 2.5;
const HOUR_S = 3600;

/**
 * The points as a line, with a null between two points that are further
 * apart than the history's spacing allows, so a period without samples is
 * drawn as a gap and not as a straight line across it. The spacing is 2.5
 * times the usual distance between raw samples (the sample interval, or the
 * median distance when samples are sparser, e.g. after the interval was
 * raised), and 2.5 hours around hourly means.
 */
export function lineWithGaps(points: readonly HistoryPoint[], sampleIntervalMs: number): LineData {
  const at = points.map((p) => Date.parse(p.at) / 1000);
  const rawSpacing = Math.max(sampleIntervalMs / 1000, medianRawSpacing(points, at));
  const x: number[] = [];
  const y: (number | null)[] = [];
  points.forEach((p, i) => {
    const prev = points[i - 1];
    const t = at[i] ?? 0;
    const prevT = at[i - 1] ?? t;
    if (prev) {
      const spacing = p.resolution === "hour" || prev.resolution === "hour" ? HOUR_S : rawSpacing;
      if (t - prevT > GAP_SPACINGS * spacing) {
        x.push((prevT + t) / 2);
        y.push(null);
      }
    }
    x.push(t);
    y.push(p.value);
  });
  return { x, y };
}

function medianRawSpacing(points: readonly HistoryPoint[], at: readonly number[]): number {
  const deltas: number[] = [];
  for (let i = 1; i < points.length; i++)
    if (points[i]?.resolution === "raw" && points[i - 1]?.resolution === "raw")
      deltas.push((at[i] ?? 0) - (at[i - 1] ?? 0));
  deltas.sort((a, b) => a - b);
  return deltas[Math.floor(deltas.length / 2)] ?? 0;
}

/**
 * A value is current while it comes from one of the last two sampling
 * rounds; older, it is shown with its age ("45 s ago"). Null when current.
 */
export function ageIfStale(at: string | number, now: number, sampleIntervalMs: number): string | null {
  const age = now - new Date(at).getTime();
  return age > 2 * sampleIntervalMs ? `${duration(age)} ago` : null;
}

/** The selected range as the chart's x range (epoch seconds). */
export function rangeSeconds(since: string, until: string): [number, number] {
  return [Date.parse(since) / 1000, Date.parse(until) / 1000];
}

export interface PeriodAxis {
  /** Tick positions (epoch seconds): the start of each period, UTC. */
  splits: number[];
  /** The label of a tick: "Dec 7" for days, "14:00" for hours (UTC, like the usage periods). */
  label: (x: number) => string;
  /** Seconds in one period: a bar spans most of it. */
  periodS: number;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * The whole calendar period a usage report belongs to (UTC), in epoch
 * seconds: by day, the month holding `from`; by hour, the day holding it.
 * The report ends now; the chart still spans the month (or day), so the
 * days to come are visibly empty rather than stretched over.
 */
export function calendarRange(from: string, granularity: "day" | "hour"): [number, number] {
  const d = new Date(from);
  const start =
    granularity === "day"
      ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
      : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const end =
    granularity === "day"
      ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
      : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return [start / 1000, end / 1000];
}

/**
 * Ticks on period boundaries (UTC days or hours) across `range`: usage is
 * counted per UTC period, so a day's bar sits between its midnight ticks
 * rather than on one.
 */
export function periodAxis(range: [number, number], granularity: "day" | "hour"): PeriodAxis {
  const periodS = granularity === "day" ? 86_400 : HOUR_S;
  const [start, end] = range;
  const splits: number[] = [];
  for (let t = start; t <= end; t += periodS) splits.push(t);
  const label = (x: number) => {
    const d = new Date(x * 1000);
    return granularity === "day"
      ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`
      : `${String(d.getUTCHours()).padStart(2, "0")}:00`;
  };
  return { splits, label, periodS };
}

/** A usage row's bar position: the middle of its period, so the bar fills its day (or hour). */
export function periodMiddle(periodStart: string, periodS: number): number {
  return Date.parse(periodStart) / 1000 + periodS / 2;
}
