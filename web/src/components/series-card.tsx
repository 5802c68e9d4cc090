import { useMemo } from "preact/hooks";
import type { MetricsOverview, SeriesHistory } from "../../../src/contract/admin.js";
import { get, query } from "../api.js";
import { duration, formatValue } from "../format.js";
import { freshWindowMs } from "../health.js";
import { setParams } from "../router.js";
import { ageIfStale, lineWithGaps, rangeSeconds } from "../series-data.js";
import { Chart } from "./chart.js";

export type Summary = MetricsOverview["items"][number];

export const RANGES: Record<string, number> = {
  "1h": 3_600_000,
  "6h": 6 * 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
};
export const DEFAULT_RANGE = "1h";

/** Automatic refreshes: often enough to see a change, never a burden on the node. */
export const REFRESH_MS = 15_000;
/** The sampler's default interval, until GET /metrics has said the real one. */
export const DEFAULT_SAMPLE_INTERVAL_MS = 15_000;

/** One page's window: every chart on it spans exactly this, whatever its data covers. */
export interface Window {
  since: string;
  until: string;
}

/** The selected range ending now, the same for every card on the page. */
export function windowOf(range: string, now = Date.now()): Window {
  const spanMs = RANGES[range] ?? RANGES[DEFAULT_RANGE] ?? 3_600_000;
  return { since: new Date(now - spanMs).toISOString(), until: new Date(now).toISOString() };
}

/** One series over the window (the fleet's, or one node's). */
export function loadHistory(
  name: string,
  window: Window,
  poll: boolean,
  node?: string,
): Promise<SeriesHistory> {
  return get<SeriesHistory>(`/metrics/${name}${query({ node, since: window.since, until: window.until })}`, {
    poll,
  });
}

export function RangePicker({ range }: { range: string }) {
  return (
    <fieldset class="segmented">
      <legend class="sr-only">Time range</legend>
      {Object.keys(RANGES).map((r) => (
        <button
          type="button"
          key={r}
          aria-pressed={r === range}
          onClick={() => setParams({ range: r === DEFAULT_RANGE ? null : r })}
        >
          {r}
        </button>
      ))}
    </fieldset>
  );
}

interface SeriesCardProps {
  history: SeriesHistory;
  sampleIntervalMs: number;
  /** The fleet's current value in words, from GET /metrics; without it, from the history. */
  summary?: Summary;
  title?: string;
}

/** One series: its chart over the window with the baseline band, its last value with its age, in words. */
export function SeriesCard({ history, sampleIntervalMs, summary, title }: SeriesCardProps) {
  const lines = useMemo(
    () => [{ label: history.title, ...lineWithGaps(history.points, sampleIntervalMs) }],
    [history, sampleIntervalMs],
  );
  const xRange = useMemo(() => rangeSeconds(history.since, history.until), [history]);
  const last = history.points.at(-1) ?? null;
  const now = Date.now();
  const sentence = sentenceOf(history, summary, sampleIntervalMs, now);
  const outside =
    last !== null &&
    history.band !== null &&
    (last.value > history.band.high || last.value < history.band.low);
  return (
    <article class="card series" data-series={history.name}>
      <header>
        <h2>{title ?? history.title}</h2>
        <LastValue history={history} outside={outside} now={now} sampleIntervalMs={sampleIntervalMs} />
      </header>
      <p class="sentence" data-testid={`sentence-${history.name}`}>
        {sentence}
      </p>
      {history.points.length === 0 ? (
        <p class="empty">No samples in this range yet.</p>
      ) : (
        <Chart
          lines={lines}
          unit={history.unit}
          band={history.band}
          xRange={xRange}
          label={`${history.title}: ${sentence}`}
        />
      )}
    </article>
  );
}

function LastValue({
  history,
  outside,
  now,
  sampleIntervalMs,
}: {
  history: SeriesHistory;
  outside: boolean;
  now: number;
  sampleIntervalMs: number;
}) {
  const last = history.points.at(-1);
  if (!last) return <span class="value">—</span>;
  const age = ageIfStale(last.at, now, sampleIntervalMs);
  return (
    <span class={`value ${outside ? "outside" : ""}`}>
      {formatValue(history.unit, last.value)}
      {age ? (
        <span class="age" data-testid={`age-${history.name}`}>
          {" "}
          · {age}
        </span>
      ) : null}
    </span>
  );
}

/**
 * The series in words, agreeing with the value beside it: the server's
 * sentence while it has a current value; otherwise the last value with its
 * age ("p99 latency was 216 ms 5 min ago; no sample since").
 */
export function sentenceOf(
  h: SeriesHistory,
  summary: Summary | undefined,
  sampleIntervalMs: number,
  now: number,
): string {
  if (summary && summary.fleet.value !== null) return summary.fleet.sentence;
  const last = h.points.at(-1);
  if (!last) return `${h.label}: no sample in this range`;
  const age = ageIfStale(last.at, now, sampleIntervalMs);
  if (age) return `${h.label} was ${formatValue(h.unit, last.value)} ${age}; no sample since`;
  const b = h.baseline;
  const usually = b
    ? `usually ${formatValue(h.unit, b.mean)} ± ${formatValue(h.unit, b.stddev)}`
    : "no baseline yet";
  return `${h.label} is ${formatValue(h.unit, last.value)}; ${usually}`;
}

export function noRecentSample(sampleIntervalMs: number): string {
  return `no sample in the last ${duration(freshWindowMs(sampleIntervalMs))}`;
}
