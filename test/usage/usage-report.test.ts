import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors/problem.js";
import { costOf, estimateCost, type Prices, roundTo } from "../../src/usage/cost.js";
import { groupRecords, type MeterRecord } from "../../src/usage/model.js";
import { rollupStore } from "../../src/usage/rollup-store.js";
import { parseUsageInstant, usageRange, usageReport } from "../../src/usage/usage-report.js";
import { useNode } from "../helpers/node.js";

/**
 * Reports and cost estimates over rollups written by the aggregator's own
 * write path (rollupStore.apply of batches grouped from MeterRecords), on a
 * real node's database. Tests that query every tenant use a year of their
 * own, so the shared node's other data never shows up in them.
 */

const node = useNode();
const db = () => node().node.adapters.db;

interface Quantities {
  inBytes?: number;
  outBytes?: number;
  inPixels?: number;
  outPixels?: number;
  cpuMs?: number;
}

function record(tenant: string, at: string | number, status: number, q: Quantities = {}): MeterRecord {
  return {
    id: randomUUID(),
    tenant,
    key: null,
    at: typeof at === "number" ? at : Date.parse(at),
    op: "resize",
    status,
    inBytes: q.inBytes ?? 0,
    outBytes: q.outBytes ?? 0,
    inPixels: q.inPixels ?? 0,
    outPixels: q.outPixels ?? 0,
    inFormat: "jpeg",
    outFormat: status < 400 ? "webp" : null,
    queueMs: 1,
    processMs: 2,
    cpuMs: q.cpuMs ?? 0,
  };
}

/** The aggregator's write path: one sealed batch, grouped as the spool groups it. */
async function ingest(records: MeterRecord[]): Promise<void> {
  const result = await rollupStore.apply(db(), {
    id: randomUUID(),
    node: "test-node",
    sealedAt: Date.now(),
    groups: groupRecords(records),
    records,
  });
  expect(result.claimed).toBe(true);
}

let names = 0;
async function newTenant(): Promise<string> {
  const res = await node().admin("POST", "/tenants", { name: `usage-${Date.now().toString(36)}-${++names}` });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

function problemOf(fn: () => unknown): ProblemError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    return error as ProblemError;
  }
  throw new Error("expected a ProblemError");
}

async function rejected(promise: Promise<unknown>): Promise<ProblemError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProblemError);
  return error as ProblemError;
}

const PRICES: Prices = {
  currency: "EUR",
  per1000Requests: 0.5,
  perGbIn: 0.02,
  perGbOut: 0.08,
  perMegapixel: 0.0002,
  perCpuHour: 0.05,
};

describe("usageReport", () => {
  it("sums hourly and daily rows per tenant across hour, day and month boundaries, billable quantities from successes only", async () => {
    const [a, b] = [await newTenant(), await newTenant()].sort();
    if (!a || !b) throw new Error("two tenants");
    await ingest([
      record(a, "2024-01-31T22:59:59.999Z", 200, {
        inBytes: 100,
        outBytes: 10,
        inPixels: 1000,
        outPixels: 100,
        cpuMs: 1.5,
      }),
      record(a, "2024-01-31T23:00:00.000Z", 200, {
        inBytes: 200,
        outBytes: 20,
        inPixels: 2000,
        outPixels: 200,
        cpuMs: 2.25,
      }),
      // A failure: counted, but its quantities are not billable.
      record(a, "2024-01-31T23:30:00.000Z", 422, { inBytes: 5000, inPixels: 90000, cpuMs: 40 }),
      record(b, "2024-01-31T23:15:00.000Z", 200, {
        inBytes: 7,
        outBytes: 3,
        inPixels: 70,
        outPixels: 30,
        cpuMs: 0.5,
      }),
    ]);
    // A second batch adds to the same rollup rows.
    await ingest([
      record(a, "2024-01-31T23:59:00.000Z", 200, {
        inBytes: 300,
        outBytes: 30,
        inPixels: 3000,
        outPixels: 300,
        cpuMs: 3,
      }),
      record(a, "2024-02-01T00:00:00.000Z", 200, {
        inBytes: 400,
        outBytes: 40,
        inPixels: 4000,
        outPixels: 400,
        cpuMs: 4,
      }),
      record(a, "2024-02-01T00:10:00.000Z", 503, { inBytes: 999, cpuMs: 9 }),
    ]);

    const hourly = await usageReport(db(), {
      from: new Date("2024-01-31T22:00:00Z"),
      to: new Date("2024-02-01T01:00:00Z"),
      granularity: "hour",
    });
    expect(hourly).toMatchObject({
      granularity: "hour",
      from: "2024-01-31T22:00:00.000Z",
      to: "2024-02-01T01:00:00.000Z",
      tenant: null,
      byOutcome: false,
    });
    const zero = { clientErrors: 0, serverErrors: 0 };
    expect(hourly.rows).toEqual([
      {
        tenant: a,
        period: "2024-01-31T22:00:00.000Z",
        requests: 1,
        succeeded: 1,
        ...zero,
        bytesIn: 100,
        bytesOut: 10,
        pixelsIn: 1000,
        pixelsOut: 100,
        cpuMs: 1.5,
      },
      {
        tenant: a,
        period: "2024-01-31T23:00:00.000Z",
        requests: 3,
        succeeded: 2,
        clientErrors: 1,
        serverErrors: 0,
        bytesIn: 500,
        bytesOut: 50,
        pixelsIn: 5000,
        pixelsOut: 500,
        cpuMs: 5.25,
      },
      {
        tenant: b,
        period: "2024-01-31T23:00:00.000Z",
        requests: 1,
        succeeded: 1,
        ...zero,
        bytesIn: 7,
        bytesOut: 3,
        pixelsIn: 70,
        pixelsOut: 30,
        cpuMs: 0.5,
      },
      {
        tenant: a,
        period: "2024-02-01T00:00:00.000Z",
        requests: 2,
        succeeded: 1,
        clientErrors: 0,
        serverErrors: 1,
        bytesIn: 400,
        bytesOut: 40,
        pixelsIn: 4000,
        pixelsOut: 400,
        cpuMs: 4,
      },
    ]);
    expect(hourly.totals).toEqual({
      requests: 7,
      succeeded: 5,
      clientErrors: 1,
      serverErrors: 1,
      bytesIn: 1007,
      bytesOut: 103,
      pixelsIn: 10070,
      pixelsOut: 1030,
      cpuMs: 11.25,
    });

    // Periods start at or after `from` and before `to`: 22:30 leaves out the 22:00 hour, 00:00 the last one.
    const inner = await usageReport(db(), {
      tenant: a,
      from: new Date("2024-01-31T22:30:00Z"),
      to: new Date("2024-02-01T00:00:00Z"),
      granularity: "hour",
    });
    expect(inner.tenant).toBe(a);
    expect(inner.rows.map((r) => r.period)).toEqual(["2024-01-31T23:00:00.000Z"]);

    const daily = await usageReport(db(), {
      from: new Date("2024-01-01T00:00:00Z"),
      to: new Date("2024-03-01T00:00:00Z"),
      granularity: "day",
    });
    expect(daily.rows.map((r) => [r.period.slice(0, 10), r.tenant, r.requests, r.bytesIn])).toEqual([
      ["2024-01-31", a, 4, 600],
      ["2024-01-31", b, 1, 7],
      ["2024-02-01", a, 2, 400],
    ]);
    expect(daily.totals).toEqual(hourly.totals);

    // One tenant, one month: the daily rows of the month boundary fall on either side.
    const february = await usageReport(db(), {
      tenant: a,
      from: new Date("2024-02-01T00:00:00Z"),
      to: new Date("2024-03-01T00:00:00Z"),
      granularity: "day",
    });
    expect(february.rows).toHaveLength(1);
    expect(february.totals).toMatchObject({ requests: 2, succeeded: 1, serverErrors: 1, bytesIn: 400 });

    // by outcome: one row per outcome, with that outcome's own quantities (failures included).
    const byOutcome = await usageReport(db(), {
      tenant: a,
      from: new Date("2024-01-31T23:00:00Z"),
      to: new Date("2024-02-01T01:00:00Z"),
      granularity: "hour",
      byOutcome: true,
    });
    expect(byOutcome.byOutcome).toBe(true);
    expect(byOutcome.rows.map((r) => ({ ...r }))).toEqual([
      {
        tenant: a,
        period: "2024-01-31T23:00:00.000Z",
        outcome: "ok",
        requests: 2,
        bytesIn: 500,
        bytesOut: 50,
        pixelsIn: 5000,
        pixelsOut: 500,
        cpuMs: 5.25,
      },
      {
        tenant: a,
        period: "2024-01-31T23:00:00.000Z",
        outcome: "client_error",
        requests: 1,
        bytesIn: 5000,
        bytesOut: 0,
        pixelsIn: 90000,
        pixelsOut: 0,
        cpuMs: 40,
      },
      {
        tenant: a,
        period: "2024-02-01T00:00:00.000Z",
        outcome: "ok",
        requests: 1,
        bytesIn: 400,
        bytesOut: 40,
        pixelsIn: 4000,
        pixelsOut: 400,
        cpuMs: 4,
      },
      {
        tenant: a,
        period: "2024-02-01T00:00:00.000Z",
        outcome: "server_error",
        requests: 1,
        bytesIn: 999,
        bytesOut: 0,
        pixelsIn: 0,
        pixelsOut: 0,
        cpuMs: 9,
      },
    ]);
    expect(byOutcome.totals).toEqual({
      requests: 5,
      bytesIn: 6899,
      bytesOut: 90,
      pixelsIn: 99000,
      pixelsOut: 900,
      cpuMs: 58.25,
    });

    // Only periods with data: a quiet range is empty, with zero totals.
    const quiet = await usageReport(db(), {
      tenant: a,
      from: new Date("2024-01-01T00:00:00Z"),
      to: new Date("2024-01-31T00:00:00Z"),
      granularity: "day",
    });
    expect(quiet.rows).toEqual([]);
    expect(quiet.totals.requests).toBe(0);
  });

  it("caps a report across every tenant, not one for a named tenant", async () => {
    const tenants = [await newTenant(), await newTenant(), await newTenant()];
    await ingest(tenants.map((t) => record(t, "2023-06-01T10:00:00Z", 200)));
    const range = {
      from: new Date("2023-06-01T00:00:00Z"),
      to: new Date("2023-06-02T00:00:00Z"),
      granularity: "hour" as const,
    };
    expect((await usageReport(db(), range, { maxRows: 3 })).rows).toHaveLength(3);
    const over = await rejected(usageReport(db(), range, { maxRows: 2 }));
    expect(over.code).toBe("invalid-body");
    expect(over.status).toBe(400);
    expect(over.message).toContain("would exceed 2 rows; narrow the range");
    expect(over.message).toContain("or name a tenant");
    expect((await usageReport(db(), { ...range, tenant: tenants[0] }, { maxRows: 0 })).rows).toHaveLength(1);
  });

  it("defaults to today (hourly) or this month (daily) up to now, and refuses inverted or too long ranges", async () => {
    const now = new Date("2026-03-15T12:34:56.789Z");
    expect(usageRange({ granularity: "hour" }, now)).toEqual({
      from: new Date("2026-03-15T00:00:00Z"),
      to: now,
    });
    expect(usageRange({ granularity: "day" }, now)).toEqual({
      from: new Date("2026-03-01T00:00:00Z"),
      to: now,
    });
    // A `to` at midnight means "up to that day": the default start is that of the day or month before it.
    expect(usageRange({ granularity: "day", to: new Date("2026-03-01T00:00:00Z") }, now).from).toEqual(
      new Date("2026-02-01T00:00:00Z"),
    );
    expect(usageRange({ granularity: "hour", to: new Date("2026-03-10T06:00:00Z") }, now).from).toEqual(
      new Date("2026-03-10T00:00:00Z"),
    );

    // The bounds: 31 days of hours, 400 days of days.
    const from = new Date("2025-01-01T00:00:00Z");
    const days = (n: number) => new Date(from.getTime() + n * 86_400_000);
    expect(usageRange({ granularity: "hour", from, to: days(31) }, now).to).toEqual(days(31));
    expect(usageRange({ granularity: "day", from, to: days(400) }, now).to).toEqual(days(400));
    const longHours = problemOf(() => usageRange({ granularity: "hour", from, to: days(31.5) }, now));
    expect(longHours.code).toBe("invalid-body");
    expect(longHours.status).toBe(400);
    expect(longHours.message).toContain("hourly usage spans at most 31 days; ask for granularity=day");
    expect(longHours.extras.errors).toHaveLength(1);
    const longDays = problemOf(() => usageRange({ granularity: "day", from, to: days(401) }, now));
    expect(longDays.message).toContain("daily usage spans at most 400 days");
    const inverted = problemOf(() => usageRange({ granularity: "day", from, to: from }, now));
    expect(inverted.message).toContain("to: must be after from (2025-01-01T00:00:00.000Z)");
    // A future `from` with the default `to` (now) is inverted too, and says so.
    const future = problemOf(() => usageRange({ granularity: "hour", from: new Date("2027-01-01") }, now));
    expect(future.message).toContain("(now)");

    // The same checks guard usageReport itself, and its defaults use the clock.
    expect((await rejected(usageReport(db(), { granularity: "hour", from, to: days(40) }))).code).toBe(
      "invalid-body",
    );
    const today = await usageReport(db(), { granularity: "hour", tenant: node().tenant });
    const startOfDay = new Date();
    startOfDay.setUTCHours(0, 0, 0, 0);
    expect(today.from).toBe(startOfDay.toISOString());
    expect(Date.now() - Date.parse(today.to)).toBeLessThan(10_000);
  });

  it("reads ISO date-times with a zone and UTC dates, nothing else", () => {
    expect(parseUsageInstant("2026-03-01")).toEqual(new Date("2026-03-01T00:00:00Z"));
    expect(parseUsageInstant("2026-03-01T10:00:00Z")).toEqual(new Date("2026-03-01T10:00:00Z"));
    expect(parseUsageInstant("2026-03-01T10:00:00.5+02:00")).toEqual(new Date("2026-03-01T08:00:00.500Z"));
    expect(parseUsageInstant("2026-03-01T10:00Z")).toEqual(new Date("2026-03-01T10:00:00Z"));
    // Without a zone the hour is ambiguous; a day that does not exist is refused rather than rolled over.
    expect(parseUsageInstant("2026-03-01T10:00:00")).toBeNull();
    expect(parseUsageInstant("2026-02-30")).toBeNull();
    expect(parseUsageInstant("yesterday")).toBeNull();
    expect(parseUsageInstant("1700000000")).toBeNull();
  });
});

/** What the price plan says for these billable quantities, computed here from the prices. */
function expectedCost(
  q: { requests: number; bytesIn: number; bytesOut: number; pixelsIn: number; cpuMs: number },
  p: Prices,
) {
  const amounts = [
    (q.requests / 1000) * p.per1000Requests,
    (q.bytesIn / 1e9) * p.perGbIn,
    (q.bytesOut / 1e9) * p.perGbOut,
    (q.pixelsIn / 1e6) * p.perMegapixel,
    (q.cpuMs / 3_600_000) * p.perCpuHour,
  ];
  return {
    amounts: amounts.map((a) => Math.round(a * 10_000) / 10_000),
    total: Math.round(amounts.reduce((s, a) => s + a, 0) * 100) / 100,
  };
}

describe("estimateCost", () => {
  it("prices a past month's successful requests per tenant from the daily rollups", async () => {
    const [c, d] = [await newTenant(), await newTenant()].sort();
    if (!c || !d) throw new Error("two tenants");
    await ingest([
      // The month's first and last instants count; the instants either side do not.
      record(c, "2022-04-30T23:59:59.999Z", 200, { inBytes: 9e9, cpuMs: 9e6 }),
      record(c, "2022-05-01T00:00:00.000Z", 200, {
        inBytes: 1_500_000_000,
        outBytes: 400_000_000,
        inPixels: 24_000_000,
        outPixels: 2_000_000,
        cpuMs: 5_400_000,
      }),
      record(c, "2022-05-17T08:00:00.000Z", 201, {
        inBytes: 2_700_000_000,
        outBytes: 800_000_000,
        inPixels: 12_500_000,
        cpuMs: 1_800_000,
      }),
      record(c, "2022-05-31T23:59:59.999Z", 304, {
        inBytes: 300_000_000,
        inPixels: 3_500_000,
        cpuMs: 36_000,
      }),
      // Failures are free, however large.
      record(c, "2022-05-20T00:00:00.000Z", 500, { inBytes: 8e9, inPixels: 5e8, cpuMs: 7e6 }),
      record(c, "2022-05-21T00:00:00.000Z", 413, { inBytes: 9e9 }),
      record(c, "2022-06-01T00:00:00.000Z", 200, { inBytes: 9e9, cpuMs: 9e6 }),
      ...Array.from({ length: 1234 }, (_, i) =>
        record(d, Date.parse("2022-05-10T00:00:00Z") + i * 1000, 200, {
          inBytes: 123_456,
          outBytes: 54_321,
          inPixels: 1_000_000,
          cpuMs: 12.5,
        }),
      ),
      record(d, "2022-05-11T00:00:00.000Z", 404),
    ]);

    const summary = await estimateCost(db(), { month: "2022-05" }, PRICES, new Date("2026-03-15T00:00:00Z"));
    expect(summary).toMatchObject({ month: "2022-05", currency: "EUR", partial: false });
    expect(summary.tenants.map((t) => t.tenant)).toEqual([c, d]);

    const cUsage = {
      requests: 3,
      bytesIn: 1_500_000_000 + 2_700_000_000 + 300_000_000,
      bytesOut: 1_200_000_000,
      pixelsIn: 40_000_000,
      cpuMs: 5_400_000 + 1_800_000 + 36_000,
    };
    const [cEstimate, dEstimate] = summary.tenants;
    expect(cEstimate?.quantities).toEqual({
      requests: 3,
      gbIn: 4.5,
      gbOut: 1.2,
      megapixels: 40,
      cpuHours: 2.01,
    });
    const cExpected = expectedCost(cUsage, PRICES);
    expect(cEstimate?.lines.map((l) => l.item)).toEqual([
      "requests",
      "gbIn",
      "gbOut",
      "megapixels",
      "cpuHours",
    ]);
    expect(cEstimate?.lines.map((l) => l.unit)).toEqual([
      "1000 requests",
      "GB",
      "GB",
      "megapixel",
      "CPU hour",
    ]);
    expect(cEstimate?.lines.map((l) => l.unitPrice)).toEqual([0.5, 0.02, 0.08, 0.0002, 0.05]);
    expect(cEstimate?.lines.map((l) => l.amount)).toEqual(cExpected.amounts);
    expect(cEstimate?.total).toBe(cExpected.total);
    for (const line of cEstimate?.lines ?? []) {
      expect(line.amount).toBeCloseTo(line.quantity * line.unitPrice, 4);
    }

    const dUsage = {
      requests: 1234,
      bytesIn: 1234 * 123_456,
      bytesOut: 1234 * 54_321,
      pixelsIn: 1234 * 1_000_000,
      cpuMs: 1234 * 12.5,
    };
    expect(dEstimate?.quantities.requests).toBe(1234);
    expect(dEstimate?.lines.map((l) => l.amount)).toEqual(expectedCost(dUsage, PRICES).amounts);
    expect(dEstimate?.total).toBe(expectedCost(dUsage, PRICES).total);
    // The grand total adds the tenants' totals as billed.
    expect(summary.total).toBe(roundTo((cEstimate?.total ?? 0) + (dEstimate?.total ?? 0), 2));

    // One tenant: just that one, the same numbers.
    const one = await estimateCost(
      db(),
      { tenant: d, month: "2022-05" },
      PRICES,
      new Date("2026-03-15T00:00:00Z"),
    );
    expect(one.tenants).toEqual([dEstimate]);
    // A tenant without usage that month: zeros, not nothing.
    const none = await estimateCost(
      db(),
      { tenant: d, month: "2022-07" },
      PRICES,
      new Date("2026-03-15T00:00:00Z"),
    );
    expect(none.tenants).toHaveLength(1);
    expect(none.tenants[0]?.total).toBe(0);
    expect(none.tenants[0]?.lines.every((l) => l.amount === 0)).toBe(true);
  });

  it("rounds lines to 4 decimals and the total from the unrounded lines to 2", () => {
    expect(roundTo(1.00005, 4)).toBe(1.0001);
    expect(roundTo(0.125, 2)).toBe(0.13);
    expect(roundTo(2.675, 2)).toBe(2.68);
    // Five lines of 0.000995 each round to 0.0010; the total is taken from the unrounded 0.004975, so 0.00, not 0.01.
    const tiny = 0.000995;
    const prices: Prices = {
      currency: "EUR",
      per1000Requests: tiny,
      perGbIn: tiny,
      perGbOut: tiny,
      perMegapixel: tiny,
      perCpuHour: tiny,
    };
    const one = { requests: 1000, bytesIn: 1e9, bytesOut: 1e9, pixelsIn: 1e6, cpuMs: 3_600_000 };
    const estimate = costOf("t", "2022-01", false, one, prices);
    expect(estimate.lines.map((l) => l.quantity)).toEqual([1, 1, 1, 1, 1]);
    expect(estimate.lines.map((l) => l.amount)).toEqual([0.001, 0.001, 0.001, 0.001, 0.001]);
    expect(estimate.total).toBe(0);
    const more = costOf(
      "t",
      "2022-01",
      false,
      { requests: 0, bytesIn: 0, bytesOut: 0, pixelsIn: 0, cpuMs: 3_600_000 * 0.1 },
      {
        ...PRICES,
        perCpuHour: 0.05,
      },
    );
    // 0.1 h × 0.05 = 0.005: a line of 0.005 and a total of 0.01 (half up).
    expect(more.lines[4]?.amount).toBe(0.005);
    expect(more.total).toBe(0.01);
  });

  it("marks the current month partial, defaults to it, and refuses bad or future months", async () => {
    const tenant = await newTenant();
    await ingest([record(tenant, Date.now() - 1000, 200, { inBytes: 2e9, cpuMs: 7_200_000 })]);
    const current = new Date().toISOString().slice(0, 7);
    const summary = await estimateCost(db(), { tenant }, PRICES);
    expect(summary).toMatchObject({ month: current, partial: true });
    expect(summary.tenants[0]).toMatchObject({ tenant, month: current, partial: true, currency: "EUR" });
    expect(summary.tenants[0]?.quantities).toMatchObject({ requests: 1, gbIn: 2, cpuHours: 2 });
    expect(summary.tenants[0]?.total).toBe(
      expectedCost({ requests: 1, bytesIn: 2e9, bytesOut: 0, pixelsIn: 0, cpuMs: 7_200_000 }, PRICES).total,
    );
    // The same month asked for after it ended is final.
    const later = new Date(Date.UTC(Number(current.slice(0, 4)), Number(current.slice(5, 7)), 2));
    expect((await estimateCost(db(), { tenant, month: current }, PRICES, later)).partial).toBe(false);

    for (const month of ["2024-13", "2024-1", "March", "2024-00"]) {
      const error = await rejected(estimateCost(db(), { month }, PRICES));
      expect(error.code).toBe("invalid-body");
      expect(error.message).toContain("month: must be a month such as 2026-03");
    }
    const future = await rejected(estimateCost(db(), { month: "2999-01" }, PRICES));
    expect(future.message).toContain("month: 2999-01 has not begun");
  });
});
