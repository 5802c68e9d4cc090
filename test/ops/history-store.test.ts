import { beforeEach, expect, it } from "vitest";
import type { Database } from "../../src/db/database.js";
import { migrate } from "../../src/db/migrate.js";
import { type HistorySettings, HistoryStore, hourStart, meanAndStddev } from "../../src/ops/history-store.js";
import { FLEET_NODE, type MetricPoint, SERIES_NAMES, type SeriesName } from "../../src/ops/series.js";
import { describeDatabases } from "../helpers/postgres.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A Monday, midnight UTC: hours of day are easy to read off. */
const T0 = Date.UTC(2026, 0, 5);

const DEFAULTS: HistorySettings = {
  sampleIntervalMs: 15_000,
  rawRetentionHours: 24,
  historyDays: 180,
  baselineDays: 7,
  maxNodes: 200,
};

/** A store whose clock the test moves. */
function storeOn(db: Database, settings: Partial<HistorySettings> = {}) {
  const clock = { now: T0 };
  const store = new HistoryStore(db, { ...DEFAULTS, ...settings }, () => clock.now);
  return { store, clock };
}

function point(series: SeriesName, node: string, at: number, value: number): MetricPoint {
  return { series, node, at, value };
}

async function rowCount(db: Database, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await db.query<{ n: number }>(sql, params);
  return row?.n ?? 0;
}

describeDatabases("HistoryStore", (open) => {
  let db: Database;
  beforeEach(async () => {
    db = await open();
    await migrate(db);
  });

  it("writes points and reads them back per node, latest per node, the fleet under its own name", async () => {
    const { store, clock } = storeOn(db);
    clock.now = T0 + 10 * 60_000;
    await store.write([
      point("latency_p99", "api-1", T0 + 60_000, 80),
      point("latency_p99", "api-2", T0 + 60_000, 300),
      point("latency_p99", FLEET_NODE, T0 + 60_000, 290),
      point("latency_p99", "api-1", T0 + 120_000, 82.5),
      point("request_rate", "api-1", T0 + 120_000, 12),
    ]);
    const points = await store.points("latency_p99", { node: "api-1", since: T0, until: clock.now });
    expect(points).toEqual([
      { node: "api-1", at: T0 + 60_000, value: 80, resolution: "raw" },
      { node: "api-1", at: T0 + 120_000, value: 82.5, resolution: "raw" },
    ]);
    expect((await store.points("latency_p99", { since: T0 })).map((p) => p.value)).toEqual([290]);

    const latest = await store.latest("latency_p99", 15 * 60_000);
    expect([...latest.keys()].sort()).toEqual([FLEET_NODE, "api-1", "api-2"].sort());
    expect(latest.get("api-1")).toEqual({
      series: "latency_p99",
      node: "api-1",
      at: T0 + 120_000,
      value: 82.5,
    });
    // Older than maxAge: not "latest".
    expect((await store.latest("latency_p99", 60_000)).size).toBe(0);

    // The same point again is ignored, in the points and in the rollup.
    await store.write([point("latency_p99", "api-1", T0 + 60_000, 80)]);
    const [rollup] = await db.query<{ samples: number; sum: number; min: number; max: number }>(
      "SELECT samples, sum, min, max FROM metric_rollups WHERE series = 'latency_p99' AND node = 'api-1'",
    );
    expect(rollup).toEqual({ samples: 2, sum: 162.5, min: 80, max: 82.5 });
    expect(await store.size()).toEqual({ points: 5, rollups: 4 });
  });

  it("rolls up per hour: mean and stddev from sum and sum of squares equal the direct computation", async () => {
    const { store, clock } = storeOn(db, { rawRetentionHours: 1 });
    // Two hours of samples every 15 s with a known spread.
    const values = (hour: number) =>
      Array.from({ length: 240 }, (_, i) => 1000 + hour * 50 + ((i * 37) % 101) - 50);
    for (const hour of [0, 1]) {
      await store.write(
        values(hour).map((v, i) => point("memory", "n1", T0 + hour * HOUR + i * 15_000, v * 2 ** 20)),
      );
    }
    for (const hour of [0, 1]) {
      const direct = values(hour).map((v) => v * 2 ** 20);
      const mean = direct.reduce((a, b) => a + b, 0) / direct.length;
      const stddev = Math.sqrt(direct.reduce((a, b) => a + (b - mean) ** 2, 0) / direct.length);
      const [r] = await db.query<{
        samples: number;
        sum: number;
        sum_squares: number;
        min: number;
        max: number;
      }>("SELECT samples, sum, sum_squares, min, max FROM metric_rollups WHERE hour = $1", [
        new Date(T0 + hour * HOUR),
      ]);
      if (!r) throw new Error("no rollup");
      const fromRollup = meanAndStddev(r.samples, r.sum, r.sum_squares);
      expect(fromRollup.samples).toBe(240);
      expect(fromRollup.mean).toBeCloseTo(mean, 3);
      expect(fromRollup.stddev / stddev).toBeCloseTo(1, 6);
      expect(r.min).toBe(Math.min(...direct));
      expect(r.max).toBe(Math.max(...direct));
    }
    // Three hours later, hour 0 and 1 are past raw retention: read back as hourly means with min and max.
    clock.now = T0 + 3 * HOUR + 60_000;
    await store.compact();
    const read = await store.points("memory", { node: "n1", since: T0 });
    expect(read.map((p) => p.resolution)).toEqual(["hour", "hour"]);
    const mean0 = values(0).reduce((a, b) => a + b, 0) / 240;
    expect((read[0]?.value ?? 0) / 2 ** 20).toBeCloseTo(mean0, 6);
    expect(read[0]?.min).toBe(Math.min(...values(0)) * 2 ** 20);
    expect(read[0]?.at).toBe(T0);
  });

  it("baselines by hour of day with 3+ earlier days of that hour, else over the window, else none", async () => {
    const { store } = storeOn(db);
    // Busy at 10:00 UTC (≈100), quiet otherwise (≈10), four samples an hour, for `days` days.
    const history = (days: number) =>
      Array.from({ length: days * 24 * 4 }, (_, i) => {
        const at = T0 + i * 15 * 60_000;
        const busy = new Date(at).getUTCHours() === 10;
        return point("request_rate", "api-1", at, (busy ? 100 : 10) + (i % 2 === 0 ? 1 : -1));
      });

    // Five hours: too little for anything.
    await store.write(history(1).slice(0, 5 * 4));
    expect(await store.baseline("request_rate", { node: "api-1", at: T0 + 5 * HOUR + 60_000 })).toBeNull();

    // Two days: a window baseline (every hour), pulled up a little by the busy hour.
    await store.write(history(2));
    const window = await store.baseline("request_rate", {
      node: "api-1",
      at: T0 + 2 * DAY + 10 * HOUR + 60_000,
    });
    expect(window?.basis).toBe("window");
    expect(window?.mean).toBeCloseTo((23 * 10 + 100) / 24, 6);
    expect(window?.samples).toBe(2 * 24 * 4);

    // Four days: at 10:30 the baseline is the 10:00 hours of earlier days, at 15:30 the 15:00 hours.
    await store.write(history(4));
    const busy = await store.baseline("request_rate", { node: "api-1", at: T0 + 4 * DAY + 10.5 * HOUR });
    expect(busy).toEqual({ mean: 100, stddev: 1, samples: 16, basis: "hour-of-day" });
    const quiet = await store.baseline("request_rate", { node: "api-1", at: T0 + 4 * DAY + 15.5 * HOUR });
    expect(quiet?.basis).toBe("hour-of-day");
    expect(quiet?.mean).toBeCloseTo(10, 9);
    expect(quiet?.stddev).toBeCloseTo(1, 6);

    // The current hour is left out: a spike now does not move the baseline it is judged against.
    const at = T0 + 3 * DAY + 10.5 * HOUR;
    const before = await store.baseline("request_rate", { node: "api-1", at });
    await store.write([point("request_rate", "api-1", T0 + 3 * DAY + 10.25 * HOUR + 1, 1e6)]);
    expect(await store.baseline("request_rate", { node: "api-1", at })).toEqual(before);

    // Every node's baseline in one call; a node without history has none.
    const all = await store.baselines("request_rate", { at });
    expect([...all.keys()]).toEqual(["api-1"]);
  });

  it("stays within its documented bound after a simulated month, keeping hourly history past raw retention", async () => {
    // A coarse interval keeps the month small; the bound's arithmetic is the same at 15 s.
    const settings = { sampleIntervalMs: 30 * 60_000, rawRetentionHours: 24, historyDays: 7, maxNodes: 3 };
    const { store, clock } = storeOn(db, settings);
    const perHour = HOUR / settings.sampleIntervalMs;
    const days = 30;
    const batchHours = 12;
    let maxSeen = 0;
    for (let h = 0; h < days * 24; h += batchHours) {
      const points: MetricPoint[] = [];
      for (let i = 0; i < batchHours * perHour; i++) {
        const at = T0 + h * HOUR + i * settings.sampleIntervalMs;
        // Node c is replaced by d for the last week (a node id that churned).
        const nodes = ["a", "b", at < T0 + (days - 7) * DAY ? "c" : "d", FLEET_NODE];
        for (const series of SERIES_NAMES) {
          for (const node of nodes) points.push(point(series, node, at, 50 + 10 * Math.sin(at / HOUR) + i));
        }
      }
      await store.write(points);
      // The sampler compacts hourly; here every 12 simulated hours, to stay fast. Right after a compaction
      // the tables hold what hourly compaction would leave at that moment, and that must be within the bound.
      clock.now = T0 + (h + batchHours) * HOUR;
      await store.compact();
      const size = await store.size();
      maxSeen = Math.max(maxSeen, size.points + size.rollups);
      expect(size.points + size.rollups).toBeLessThanOrEqual(store.bound());
    }
    const end = clock.now;
    // The documented figure for these settings: 16 × (3 + 1) × ((24 + 2) × 2 + 24 × 7 + 2) = 14,208 rows.
    expect(store.bound()).toBe(14_208);
    expect(maxSeen).toBeGreaterThan(store.bound() / 2);

    // Raw samples older than the retention are gone; hourly rollups older than historyDays too.
    const oldestRaw = await rowCount(
      db,
      "SELECT (extract(epoch FROM min(at)) * 1000)::float8 AS n FROM metric_points",
    );
    expect(oldestRaw).toBeGreaterThanOrEqual(store.rawCutoff(end));
    expect(oldestRaw).toBeLessThan(end - (settings.rawRetentionHours - 1) * HOUR);
    const oldestHour = await rowCount(
      db,
      "SELECT (extract(epoch FROM min(hour)) * 1000)::float8 AS n FROM metric_rollups",
    );
    expect(oldestHour).toBeGreaterThanOrEqual(end - settings.historyDays * DAY);
    expect(oldestHour).toBeLessThanOrEqual(end - settings.historyDays * DAY + HOUR);

    // Only the 3 most recently seen nodes (plus the fleet) remain: c, last seen a week ago, went.
    const nodes = await db.query<{ node: string }>("SELECT DISTINCT node FROM metric_rollups ORDER BY node");
    expect(nodes.map((r) => r.node)).toEqual([FLEET_NODE, "a", "b", "d"].sort());
    expect(await rowCount(db, "SELECT count(*) AS n FROM metric_points WHERE node = 'c'")).toBe(0);

    // The week of hourly history remains readable, hours first, then raw samples.
    const week = await store.points("cpu", { node: "a", since: end - 7 * DAY, until: end });
    const hourly = week.filter((p) => p.resolution === "hour");
    const raw = week.filter((p) => p.resolution === "raw");
    expect(hourly.length).toBeGreaterThanOrEqual(6 * 24 - 1);
    expect(raw.length).toBeGreaterThanOrEqual(settings.rawRetentionHours * perHour);
    expect(Math.max(...hourly.map((p) => p.at))).toBeLessThan(Math.min(...raw.map((p) => p.at)));
    expect(await store.baseline("cpu", { node: "a", at: end })).toMatchObject({ basis: "hour-of-day" });
    // Exact counts at the end: raw from the hour-aligned cutoff, rollups for 7 days (+ the cutoff's hour).
    const size = await store.size();
    const kept = SERIES_NAMES.length * 4;
    expect(size.points).toBe(kept * ((end - store.rawCutoff(end)) / settings.sampleIntervalMs));
    expect(size.rollups).toBe(kept * (settings.historyDays * 24));
    expect(hourStart(end)).toBe(end);
  });
});
