import { useEffect, useRef } from "preact/hooks";
import uPlot, { type AlignedData, type Options } from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatValue } from "../format.js";

export interface ChartLine {
  label: string;
  /** Epoch seconds, ascending. */
  x: number[];
  y: (number | null)[];
}

interface ChartProps {
  /** Lines sharing one x axis (the first line's), drawn in order. */
  lines: ChartLine[];
  unit: string;
  /** The baseline band (mean ± stddev), drawn behind the lines. */
  band?: { low: number; high: number } | null;
  height?: number;
  /** Bars instead of a line (usage per period). */
  bars?: boolean;
  /** Short text for screen readers: what the chart shows, in words. */
  label: string;
  alarm?: boolean;
  /** The x range to show (epoch seconds); default: the data's. */
  xRange?: [number, number];
}

const COLOURS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2"];

/**
 * A time series drawn with uPlot, sized to its container (so it fits 1280 px
 * and a phone alike), with the baseline band as a shaded stripe.
 */
export function Chart({
  lines,
  unit,
  band,
  height = 160,
  bars = false,
  label,
  alarm = false,
  xRange,
}: ChartProps) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const data = align(lines);
    const opts = options(lines, unit, band ?? null, el.clientWidth || 300, height, bars, alarm, xRange);
    plot.current?.destroy();
    plot.current = new uPlot(opts, data, el);
    const observer = new ResizeObserver(() => {
      const width = el.clientWidth;
      if (plot.current && width > 0 && width !== plot.current.width) plot.current.setSize({ width, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [lines, unit, band?.low, band?.high, height, bars, alarm, xRange?.[0], xRange?.[1]]);

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

function options(
  lines: ChartLine[],
  unit: string,
  band: { low: number; high: number } | null,
  width: number,
  height: number,
  bars: boolean,
  alarm: boolean,
  xRange: [number, number] | undefined,
): Options {
  const values = lines.flatMap((l) => l.y).filter((v): v is number => v !== null);
  const fmt = (v: number) => formatValue(unit, v);
  return {
    width,
    height,
    legend: { show: lines.length > 1 },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: xRange ? { time: true, range: () => xRange } : { time: true },
      y: {
        range: () => {
          const all = band ? [...values, band.low, band.high] : values;
          const max = all.length ? Math.max(...all) : 1;
          const min = all.length ? Math.min(0, ...all) : 0;
          return [min, max > min ? max * 1.1 : min + 1];
        },
      },
    },
    axes: [
      { stroke: "#6b7280", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#e5e7eb" } },
      {
        stroke: "#6b7280",
        grid: { stroke: "#e5e7eb" },
        ticks: { stroke: "#e5e7eb" },
        size: 74,
        values: (_u, splits) => splits.map((v) => (v === null ? "" : fmt(v))),
      },
    ],
    series: [
      {},
      ...lines.map((l, i) => ({
        label: l.label,
        stroke: alarm && lines.length === 1 ? "#dc2626" : (COLOURS[i % COLOURS.length] ?? "#2563eb"),
        width: 2,
        fill: bars ? "rgba(37, 99, 235, 0.35)" : undefined,
        paths: bars ? uPlot.paths.bars?.({ size: [0.7, 40] }) : undefined,
        points: { show: bars ? false : l.x.length < 3 },
        value: (_u: uPlot, v: number | null) => (v === null ? "—" : fmt(v)),
      })),
    ],
    hooks: band
      ? {
          drawClear: [
            (u: uPlot) => {
              const top = u.valToPos(band.high, "y", true);
              const bottom = u.valToPos(band.low, "y", true);
              u.ctx.save();
              u.ctx.fillStyle = "rgba(16, 185, 129, 0.14)";
              u.ctx.fillRect(u.bbox.left, top, u.bbox.width, Math.max(1, bottom - top));
              u.ctx.restore();
            },
          ],
        }
      : {},
  };
}
