import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { migrate } from "../../src/db/migrate.js";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { AlertStore } from "../../src/ops/alerts/alert-store.js";
import { AlertEngine } from "../../src/ops/alerts/engine.js";
import { FORECAST_RULES, leadTime, linearTrend } from "../../src/ops/alerts/forecast.js";
import type { Alert } from "../../src/ops/alerts/model.js";
import { EventLog } from "../../src/ops/events.js";
import { HistoryStore } from "../../src/ops/history-store.js";
import type { MetricPoint, SeriesName } from "../../src/ops/series.js";

/**
 * Forecasts on synthetic trends written into a real history store (PGlite),
 * judged at a fixed "now": the engine, the store and the rules all read the
 * same fake clock, so three days of history take no time at all.
 */

const GB = 1e9;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse("2026-03-10T12:00:00Z");
const STEP = 15 * 60_000;

async function setup(overrides: { forecastDays?: number } = {}) {
  const config = loadConfig({
    env: {},
    overrides: { ops: { alerts: { forecastDays: overrides.forecastDays ?? 14 } } },
  });
  const db = await PgliteDatabase.open("memory://forecast");
  onTestFinished(() => db.close());
  await migrate(db);
  const clock = () => NOW;
  const history = new HistoryStore(db, config.ops, clock);
  const notified: { type: string; alert: Alert }[] = [];
  const engine = new AlertEngine({
    store: new AlertStore(db),
    rules: FORECAST_RULES,
    history,
    fleet: { nodes: async () => [], lastScrape: () => new Map(), leaseHolder: async () => "someone" },
    settings: config.ops.alerts,
    sampleIntervalMs: config.ops.sampleIntervalMs,
    spoolMaxBytes: config.usage.spool.maxBytes,
    events: new EventLog(db, "control-1"),
    notify: (type, alert) => notified.push({ type, alert }),
    logger: pino({ level: "silent" }),
    clock,
  });
  return { db, history, engine, notified };
}

/** `days` of samples every 15 min up to NOW: `start + perDay × elapsed days`, with a daily wobble. */
function trend(
  series: SeriesName,
  node: string,
  now: number,
  perDay: number,
  days = 3,
  wobble = 0,
): MetricPoint[] {
  const points: MetricPoint[] = [];
  const start = now - days * DAY;
  for (let at = start; at <= now; at += STEP) {
    const elapsedDays = (at - now) / DAY;
    const daily = wobble * Math.sin(((at % DAY) / DAY) * 2 * Math.PI);
    points.push({ series, node, at, value: nowValue(node) + perDay * elapsedDays + daily });
  }
  return points;
}

/** Free space at NOW per synthetic node. */
const FREE_NOW: Record<string, number> = {
  "control-1": 100 * GB,
  "control-2": 100 * GB,
  "control-3": 100 * GB,
};
function nowValue(node: string): number {
  return FREE_NOW[node] ?? 100 * GB;
}

describe("disk-full forecast", () => {
  it("fires with ~5 days of lead time for a disk losing 20 GB/day with 100 GB free; not for ~40 days; not for a growing one", async () => {
    const { history, engine, notified } = await setup({ forecastDays: 14 });
    await history.write([
      ...trend("disk_free", "control-1", NOW, -20 * GB, 3, 2 * GB),
      ...trend("disk_free", "control-2", NOW, -2.5 * GB, 3, 2 * GB),
      ...trend("disk_free", "control-3", NOW, +5 * GB, 3, 2 * GB),
    ]);

    const { fired, findings } = await engine.evaluate();

    expect(findings.map((f) => f.subject)).toEqual(["control-1"]);
    expect(fired).toHaveLength(1);
    const [alert] = fired;
    expect(alert).toMatchObject({
      rule: "disk-full",
      subject: "control-1",
      severity: "warning",
      state: "firing",
    });
    expect(alert?.summary).toBe(
      "disk on control-1 will be full in ~5 days at the current trend (100 GB free, shrinking 20 GB/day)",
    );
    expect(alert?.figures.daysLeft).toBeCloseTo(5, 0);
    expect(alert?.runbook).toMatch(/bigger disk/);
    expect(notified.map((n) => [n.type, n.alert.subject])).toEqual([["alert.fired", "control-1"]]);
  });

  it("respects forecastDays: 5 days left is not within a 3-day horizon", async () => {
    const { history, engine } = await setup({ forecastDays: 3 });
    await history.write(trend("disk_free", "control-1", NOW, -20 * GB));
    expect((await engine.evaluate()).fired).toEqual([]);
  });

  it("is critical with under a day left, and says hours", async () => {
    const { history, engine } = await setup();
    FREE_NOW["control-9"] = 10 * GB;
    await history.write(trend("disk_free", "control-9", NOW, -40 * GB, 1));
    const { fired } = await engine.evaluate();
    expect(fired[0]).toMatchObject({ rule: "disk-full", severity: "critical" });
    expect(fired[0]?.summary).toMatch(/full in ~6 hours .*\(10 GB free, shrinking 40 GB\/day\)/);
  });

  it("forecasts nothing from less than 6 hours of history", async () => {
    const { history, engine } = await setup();
    await history.write(trend("disk_free", "control-1", NOW, -500 * GB, 4 / 24));
    expect((await engine.evaluate()).findings).toEqual([]);
  });

  it("resolves once the trend flattens (two clean evaluations), and notifies both", async () => {
    const { db, history, engine, notified } = await setup();
    await history.write(trend("disk_free", "control-1", NOW, -20 * GB));
    expect((await engine.evaluate()).fired).toHaveLength(1);
    // Someone freed space and the disk is flat from now on: a day of flat samples later, the fit is no longer steep.
    await db.query("DELETE FROM metric_points");
    await db.query("DELETE FROM metric_rollups");
    await history.write(trend("disk_free", "control-1", NOW, 0));
    expect((await engine.evaluate()).resolved).toEqual([]);
    const { resolved } = await engine.evaluate();
    expect(resolved.map((a) => [a.rule, a.state])).toEqual([["disk-full", "resolved"]]);
    expect(notified.map((n) => n.type)).toEqual(["alert.fired", "alert.resolved"]);
  });
});

describe("spool-full forecast", () => {
  it("fires when the spool grows toward usage.spool.maxBytes within the horizon", async () => {
    const { history, engine } = await setup();
    // Default bound 1 GiB; 300 MB now, growing 100 MB/day → ~7.7 days.
    FREE_NOW["api-1"] = 300e6;
    await history.write(trend("spool_bytes", "api-1", NOW, 100e6));
    const { fired } = await engine.evaluate();
    expect(fired).toHaveLength(1);
    expect(fired[0]?.summary).toMatch(
      /^the usage spool on api-1 will be full in ~8 days at the current trend \(300 MB of 1.1 GB, growing 100 MB\/day\)$/,
    );
  });
});

describe("linear trend", () => {
  it("fits a slope per day, and needs 6 points over 6 hours", () => {
    const points = Array.from({ length: 13 }, (_, i) => ({ at: i * HOUR, value: 1000 - i * 10 }));
    expect(linearTrend(points)?.perDay).toBeCloseTo(-240, 6);
    expect(linearTrend(points.slice(0, 5))).toBeNull();
    expect(leadTime(9.4)).toBe("~9 days");
    expect(leadTime(1.25)).toBe("~30 hours");
    expect(leadTime(0.01)).toBe("less than an hour");
  });
});
