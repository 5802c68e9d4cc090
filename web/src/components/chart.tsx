import { useEffect, useRef } from "preact/hooks";
import uPlot, { type AlignedData, type Axis, type Options, type Series } from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatValue } from "../format.js";
import type { PeriodAxis } from "../series-data.js";

export interface ChartLine {
  label: string;
  /** Epoch seconds, ascending. */
  x: number[];
  /** Null: no sample there, drawn as a gap. */
  y: (number | null)[];
}

interface ChartProps {
  /** Lines sharing one x axis (the first line's), drawn in order. */
  lines: ChartLine[];
  unit: string;
  /** The x range to show (epoch seconds): the selected range, whatever the data covers. */
  xRange: [number, number];
  /** The baseline band (mean ± stddev), drawn behind the lines. */
  band?: { low: number; high: number } | null;
  height?: number;
  /** Bars on period boundaries instead of a line (usage per day or hour). */
  periods?: PeriodAxis;
  /** Short text for screen readers: what the chart shows, in words. */
  label: string;
  alarm?: boolean;
}

interface Drawn {
  lines: ChartLine[];
  unit: string;
  xRange: [number, number];
  band: { low: number; high: number } | null;
  width: number;
  height: number;
  periods: PeriodAxis | undefined;
  alarm: boolean;
}

const COLOURS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2"];
const AXIS = { stroke: "#6b7280", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#e5e7eb" } };
/** The narrowest room a period tick's label gets before every other one is left out. */
const MIN_LABEL_PX = 52;

/**
 * A time series drawn with uPlot over exactly `xRange`, sized to its
 * container (so it fits 1280 px and a phone alike), with the baseline band
 * as a shaded stripe. The drawn x range is published as data-x-min and
 * data-x-max (epoch seconds), so what the chart spans can be checked.
 */
export function Chart({
  lines,
  unit,
  xRange,
  band,
  height = 160,
  periods,
  label,
  alarm = false,
}: ChartProps) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const drawn: Drawn = {
      lines,
      unit,
      xRange,
      band: band ?? null,
      width: el.clientWidth || 300,
      height,
      periods,
      alarm,
    };
    const plot = new uPlot(options(drawn, el), align(lines), el);
    const observer = new ResizeObserver(() => {
      const width = el.clientWidth;
      if (width > 0 && width !== plot.width) plot.setSize({ width, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [lines, unit, band?.low, band?.high, height, periods, alarm, xRange[0], xRange[1]]);

  return <div class="chart" ref={holder} role="img" aria-label={label} />;
}

/** uPlot wants one x array and y arrays of the same length: line up every line on the union of x. */
function align(lines: ChartLine[]): AlignedData {
  if (lines.length === 1 && lines[0]) return [lines[0].x, lines[0].y];
  const xs = [...new Set(lines.flatMap((l) => l.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = lines.map((l) => {
    const y: (number | null)[] = new Array(xs.length).fill(null);
    l.x.forEach((x, i) => {
      const at = index.get(x);
      if (at !== undefined) y[at] = l.y[i] ?? null;
    });
    return y;
  });
  return [xs, ...ys];
}

function options(d: Drawn, el: HTMLElement): Options {
  return {
    width: d.width,
    height: d.height,
    legend: { show: d.lines.length > 1 },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: () => d.xRange },
      y: { range: () => yRange(d) },
    },
    axes: [xAxis(d), yAxis(d.unit)],
    series: [{}, ...d.lines.map((l, i) => lineSeries(d, l, i))],
    hooks: {
      drawClear: d.band ? [(u: uPlot) => drawBand(u, d.band)] : [],
      draw: [
        (u: uPlot) => {
          el.dataset.xMin = String(u.scales.x?.min ?? "");
          el.dataset.xMax = String(u.scales.x?.max ?? "");
        },
      ],
    },
  };
}

function yRange(d: Drawn): [number, number] {
  const values = d.lines.flatMap((l) => l.y).filter((v): v is number => v !== null);
  const all = d.band ? [...values, d.band.low, d.band.high] : values;
  const max = all.length ? Math.max(...all) : 1;
  const min = all.length ? Math.min(0, ...all) : 0;
  return [min, max > min ? max * 1.1 : min + 1];
}

/** Time ticks as uPlot chooses them, or one tick per period (every k-th labelled when they crowd). */
function xAxis(d: Drawn): Axis {
  const periods = d.periods;
  if (!periods) return { ...AXIS, space: 64 };
  return {
    ...AXIS,
    splits: () => periods.splits,
    values: (u, splits) => {
      const every = Math.max(1, Math.ceil(MIN_LABEL_PX / (u.bbox.width / devicePixelRatio / splits.length)));
      return splits.map((x, i) => (i % every === 0 ? periods.label(x) : ""));
    },
  };
}

function yAxis(unit: string): Axis {
  return {
    ...AXIS,
    size: 74,
    values: (_u, splits) => splits.map((v) => (v === null ? "" : formatValue(unit, v))),
  };
}

function lineSeries(d: Drawn, l: ChartLine, i: number): Series {
  const bars = d.periods !== undefined;
  const samples = l.y.filter((v) => v !== null).length;
  return {
    label: l.label,
    stroke: d.alarm && d.lines.length === 1 ? "#dc2626" : (COLOURS[i % COLOURS.length] ?? "#2563eb"),
    width: 2,
    spanGaps: false,
    fill: bars ? "rgba(37, 99, 235, 0.35)" : undefined,
    paths: bars ? uPlot.paths.bars?.({ size: [0.8, barMaxPx(d)], align: 0 }) : undefined,
    // A lone sample (or two), or one between two gaps, is a dot, not an invisible zero-length line.
    points: {
      show: !bars && samples < 3,
      filter: bars ? null : (u: uPlot, si: number, show: boolean) => (show ? null : isolated(u.data[si])),
    },
    value: (_u: uPlot, v: number | null) => (v === null ? "—" : formatValue(d.unit, v)),
  };
}

/** Indices of samples with no sample either side (gaps or the ends): a line cannot show them. */
function isolated(y: ArrayLike<number | null | undefined> | undefined): number[] | null {
  if (!y) return null;
  const found: number[] = [];
  for (let i = 0; i < y.length; i++) {
    const lonely = (i === 0 || y[i - 1] == null) && (i === y.length - 1 || y[i + 1] == null);
    if (y[i] != null && lonely) found.push(i);
  }
  return found.length > 0 ? found : null;
}

/** A bar is at most 80% of its period's width on screen, so neighbouring days never touch. */
function barMaxPx(d: Drawn): number {
  const periodS = d.periods?.periodS ?? 1;
  const span = d.xRange[1] - d.xRange[0];
  return Math.max(2, ((d.width - 80) * periodS * 0.8) / Math.max(span, periodS));
}

function drawBand(u: uPlot, band: { low: number; high: number } | null): void {
  if (!band) return;
  const top = u.valToPos(band.high, "y", true);
  const bottom = u.valToPos(band.low, "y", true);
  u.ctx.save();
  u.ctx.fillStyle = "rgba(16, 185, 129, 0.14)";
  u.ctx.fillRect(u.bbox.left, top, u.bbox.width, Math.max(1, bottom - top));
  u.ctx.restore();
}
