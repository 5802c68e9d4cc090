import type { HistoryPoint } from "../history-store.js";
import { FLEET_NODE } from "../series.js";
import { bytes, round } from "./format.js";
import type { Finding } from "./model.js";
import { finding, freshMs, type Rule, type RuleContext } from "./rule.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The trend is fitted over this much history: long enough to see past a day's ups and downs, short enough to follow a change. */
export const FORECAST_WINDOW_MS = 3 * DAY_MS;
/** Less history than this (a new node) forecasts nothing: an hour's noise extrapolated over weeks would cry wolf. */
export const MIN_TREND_SPAN_MS = 6 * HOUR_MS;
const MIN_TREND_POINTS = 6;
/** Under a day left, the forecast is critical: there is no time to order a disk. */
const CRITICAL_WITHIN_DAYS = 1;

export interface Trend {
  /** Change per day, in the series' unit. */
  perDay: number;
  /** The latest observed value and when it was sampled. */
  last: { at: number; value: number };
  spanMs: number;
  points: number;
}

/** Least-squares line through the points; null with too few points or too short a span. */
export function linearTrend(points: readonly { at: number; value: number }[]): Trend | null {
  const first = points[0];
  const last = points.at(-1);
  if (!first || !last || points.length < MIN_TREND_POINTS || last.at - first.at < MIN_TREND_SPAN_MS)
    return null;
  const n = points.length;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += (p.at - first.at) / DAY_MS;
    sy += p.value;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    const dx = (p.at - first.at) / DAY_MS - mx;
    sxy += dx * (p.value - my);
    sxx += dx * dx;
  }
  if (sxx === 0) return null;
  return {
    perDay: sxy / sxx,
    last: { at: last.at, value: last.value },
    spanMs: last.at - first.at,
    points: n,
  };
}

/**
 * One point per hour: the history gives hourly means before its raw
 * retention and raw samples after, and a fit over both must not weigh the
 * last day 240 times more than the days before it. The last point keeps
 * the latest raw value, which is what "free now" means.
 */
export function hourly(points: readonly HistoryPoint[]): { at: number; value: number }[] {
  const hours = new Map<number, { at: number; sum: number; n: number }>();
  for (const p of points) {
    const at = p.resolution === "hour" ? p.at + HOUR_MS / 2 : p.at;
    const key = Math.floor(p.at / HOUR_MS);
    const h = hours.get(key) ?? { at: 0, sum: 0, n: 0 };
    hours.set(key, { at: h.at + at, sum: h.sum + p.value, n: h.n + 1 });
  }
  const out = [...hours.values()].map((h) => ({ at: h.at / h.n, value: h.sum / h.n }));
  const last = points.at(-1);
  if (last && out.length > 0 && last.resolution === "raw") out.push({ at: last.at, value: last.value });
  return out;
}

/** "~9 days", or "~30 hours" under two days. */
export function leadTime(days: number): string {
  if (days >= 2) return `~${Math.round(days)} days`;
  const hours = Math.max(0, Math.round(days * 24));
  return hours === 0 ? "less than an hour" : `~${hours} hour${hours === 1 ? "" : "s"}`;
}

async function trendsOf(ctx: RuleContext, series: "disk_free" | "spool_bytes"): Promise<Map<string, Trend>> {
  const latest = await ctx.history.latest(series, freshMs(ctx));
  const trends = new Map<string, Trend>();
  for (const node of latest.keys()) {
    if (node === FLEET_NODE) continue;
    const points = await ctx.history.points(series, {
      node,
      since: ctx.now - FORECAST_WINDOW_MS,
      until: ctx.now,
    });
    const trend = linearTrend(hourly(points));
    if (trend) trends.set(node, trend);
  }
  return trends;
}

function severityFor(rule: Rule, days: number): Finding["severity"] {
  return days < CRITICAL_WITHIN_DAYS ? "critical" : rule.severity;
}

const diskFull: Rule = {
  id: "disk-full",
  severity: "warning",
  condition:
    "at the trend of the last 3 days (at least 6 hours of history), the data directory's disk on a node runs out of space within ops.alerts.forecastDays",
  runbook:
    "Order or attach a bigger disk before then, or free space (`du -sh dataDir/*` shows what grows: the usage archive under usage/archive, logs); the forecast clears once the trend flattens.",
  async evaluate(ctx) {
    const findings: Finding[] = [];
    for (const [node, trend] of await trendsOf(ctx, "disk_free")) {
      if (trend.perDay >= 0) continue;
      const free = Math.max(0, trend.last.value);
      const days = free / -trend.perDay;
      if (days >= ctx.settings.forecastDays) continue;
      findings.push(
        finding(
          this,
          node,
          `disk on ${node} will be full in ${leadTime(days)} at the current trend (${bytes(free)} free, shrinking ${bytes(-trend.perDay)}/day)`,
          {
            daysLeft: round(days, 2),
            freeBytes: free,
            bytesPerDay: Math.round(trend.perDay),
            forecastDays: ctx.settings.forecastDays,
            trendHours: round(trend.spanMs / HOUR_MS, 1),
          },
          severityFor(this, days),
        ),
      );
    }
    return findings;
  },
};

const spoolFull: Rule = {
  id: "spool-full",
  severity: "warning",
  condition:
    "at the trend of the last 3 days (at least 6 hours of history), a node's usage spool reaches usage.spool.maxBytes within ops.alerts.forecastDays",
  runbook:
    "The spool grows only while usage is not committed: restore aggregation (see spool-backlog), or raise usage.spool.maxBytes if this node's traffic outgrew it.",
  async evaluate(ctx) {
    const findings: Finding[] = [];
    for (const [node, trend] of await trendsOf(ctx, "spool_bytes")) {
      if (trend.perDay <= 0) continue;
      const room = Math.max(0, ctx.spoolMaxBytes - trend.last.value);
      const days = room / trend.perDay;
      if (days >= ctx.settings.forecastDays) continue;
      findings.push(
        finding(
          this,
          node,
          `the usage spool on ${node} will be full in ${leadTime(days)} at the current trend (${bytes(trend.last.value)} of ${bytes(ctx.spoolMaxBytes)}, growing ${bytes(trend.perDay)}/day)`,
          {
            daysLeft: round(days, 2),
            spoolBytes: trend.last.value,
            spoolMaxBytes: ctx.spoolMaxBytes,
            bytesPerDay: Math.round(trend.perDay),
            forecastDays: ctx.settings.forecastDays,
          },
          severityFor(this, days),
        ),
      );
    }
    return findings;
  },
};

export const FORECAST_RULES: readonly Rule[] = [diskFull, spoolFull];
