import { describe, expect, it } from "vitest";
import type { FleetNode, MetricsOverview } from "../../src/cli/admin/client.js";
import { healthOf, samplingState } from "../../web/src/health.js";
import {
  ageIfStale,
  calendarRange,
  type HistoryPoint,
  lineWithGaps,
  periodAxis,
  periodMiddle,
} from "../../web/src/series-data.js";

/** The console's pure chart and health logic, on the data shapes the admin API answers. */

const T0 = Date.parse("2026-12-07T12:00:00Z");
const raw = (offsetS: number, value = 1): HistoryPoint => ({
  at: new Date(T0 + offsetS * 1000).toISOString(),
  value,
  resolution: "raw",
});

describe("lineWithGaps", () => {
  it("draws samples one interval apart as one line", () => {
    const line = lineWithGaps([raw(0), raw(15), raw(30), raw(45)], 15_000);
    expect(line.y).toEqual([1, 1, 1, 1]);
  });

  it("breaks the line where samples are missing (a null between the two sides)", () => {
    const line = lineWithGaps([raw(0), raw(15), raw(30), raw(600), raw(615), raw(630)], 15_000);
    expect(line.y).toEqual([1, 1, 1, null, 1, 1, 1]);
    expect(line.x[3]).toBe(T0 / 1000 + 315);
  });

  it("takes hourly means one hour apart as continuous, and a missing hour as a gap", () => {
    const hour = (h: number): HistoryPoint => ({ ...raw(h * 3600), resolution: "hour" });
    expect(lineWithGaps([hour(0), hour(1), hour(2)], 15_000).y).toEqual([1, 1, 1]);
    expect(lineWithGaps([hour(0), hour(1), hour(5)], 15_000).y).toEqual([1, 1, null, 1]);
  });

  it("follows samples sparser than the interval (an interval raised later) without a gap at each", () => {
    const line = lineWithGaps([raw(0), raw(60), raw(120), raw(180), raw(240)], 15_000);
    expect(line.y).not.toContain(null);
  });
});

describe("ageIfStale", () => {
  it("says nothing for a value from the last two rounds, and the age after", () => {
    expect(ageIfStale(T0 - 20_000, T0, 15_000)).toBeNull();
    expect(ageIfStale(T0 - 45_000, T0, 15_000)).toBe("45 s ago");
    expect(ageIfStale(T0 - 5 * 60_000, T0, 15_000)).toBe("5 min ago");
  });
});

describe("the usage bars' axis", () => {
  it("spans the month by day, with a tick at every UTC midnight and each bar in the middle of its day", () => {
    const range = calendarRange("2026-12-01T00:00:00.000Z", "day");
    expect(range).toEqual([
      Date.parse("2026-12-01T00:00:00Z") / 1000,
      Date.parse("2027-01-01T00:00:00Z") / 1000,
    ]);
    const axis = periodAxis(range, "day");
    expect(axis.splits).toHaveLength(32);
    expect(axis.splits.every((s) => s % 86_400 === 0)).toBe(true);
    expect(axis.label(axis.splits[6] ?? 0)).toBe("Dec 7");
    expect(periodMiddle("2026-12-07T00:00:00.000Z", axis.periodS)).toBe(
      Date.parse("2026-12-07T12:00:00Z") / 1000,
    );
  });

  it("spans the day by hour, with a tick every hour", () => {
    const axis = periodAxis(calendarRange("2026-12-07T00:00:00.000Z", "hour"), "hour");
    expect(axis.splits).toHaveLength(25);
    expect(axis.label(axis.splits[14] ?? 0)).toBe("14:00");
  });
});

const node = (startedAt: number): FleetNode => ({
  id: "local",
  roles: ["api", "worker", "control"],
  version: "test",
  url: "http://127.0.0.1:1",
  startedAt,
  seenAt: startedAt,
  load: { inFlight: 0, queueDepth: 0, workersBusy: 0, workers: 1, rssBytes: 0 },
});

function overview(requestRate: number | null, outlier = false): MetricsOverview {
  return {
    sampleIntervalMs: 15_000,
    items: [
      {
        name: "request_rate",
        unit: "req/s",
        title: "Resize requests per second",
        fleet: { value: requestRate, at: null, baseline: null, sentence: "" },
        nodes: outlier ? [{ node: "api-2", value: 9, at: "", baseline: null, outlier: true }] : [],
      },
    ],
  };
}

describe("healthOf", () => {
  it("is collecting first samples (green) while the sampler's node is younger than the freshness window", () => {
    const h = healthOf({ nodes: [node(T0 - 10_000)], firing: [], overview: overview(null), now: T0 });
    expect(h.tone).toBe("green");
    expect(h.headline).toMatch(/collecting first samples/);
    expect(samplingState([node(T0 - 10_000)], overview(null), T0)).toBe("collecting");
  });

  it("is degraded when an old sampler's node has no recent sample", () => {
    const h = healthOf({ nodes: [node(T0 - 120_000)], firing: [], overview: overview(null), now: T0 });
    expect(h.tone).toBe("amber");
    expect(h.reasons.join()).toMatch(/no recent metric sample/);
  });

  it("is healthy with samples and no alert, naming outliers without calling the fleet degraded", () => {
    const h = healthOf({ nodes: [node(T0 - 120_000)], firing: [], overview: overview(2, true), now: T0 });
    expect(h.tone).toBe("green");
    expect(h.headline).toBe("Healthy: 1 node reporting, no alert firing");
    expect(h.notes.join()).toMatch(/outliers: api-2/);
  });
});
