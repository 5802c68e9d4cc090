import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { invalidQuery, sum } from "./usage-report.js";

/**
 * A tenant's bill for one UTC calendar month, estimated from the daily
 * rollups and the configured price plan (`usage.prices`). Only successful
 * requests are priced; failures are counted in the reports but free.
 */

export type Prices = Config["usage"]["prices"];

/** What is billed, in billing units. */
export interface CostQuantities {
  /** Successful requests. */
  requests: number;
  /** Input bytes of successful requests, in 10^9 bytes. */
  gbIn: number;
  /** Output bytes, in 10^9 bytes. */
  gbOut: number;
  /** Input pixels decoded, in millions. */
  megapixels: number;
  /** Worker CPU time, in hours. */
  cpuHours: number;
}

export type CostItem = keyof CostQuantities;

/** One priced item: amount = quantity × unitPrice, rounded to 4 decimals. */
export interface CostLine {
  item: CostItem;
  /** What one unit of `quantity` is: `1000 requests`, `GB`, `megapixel`, `CPU hour`. */
  unit: string;
  quantity: number;
  unitPrice: number;
  amount: number;
}

export interface CostEstimate {
  tenant: string;
  /** YYYY-MM (UTC). */
  month: string;
  currency: string;
  /** True for the current month: usage so far, not the month's bill. */
  partial: boolean;
  quantities: CostQuantities;
  lines: CostLine[];
  /** The lines' unrounded amounts summed, rounded to 2 decimals. */
  total: number;
}

export interface CostSummary {
  month: string;
  currency: string;
  partial: boolean;
  /** Per tenant with usage that month (or just the one asked for, even without usage), by tenant id. */
  tenants: CostEstimate[];
  /** The tenants' (rounded) totals summed. */
  total: number;
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;
export const MONTH_HINT = "a month such as 2026-03 (YYYY-MM, UTC)";

/** `2026-03` of an instant, in UTC. */
export function monthOf(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** The UTC bounds of a month; throws `invalid-body` for text that is not one, or a month that has not begun. */
export function monthRange(
  month: string,
  now: Date = new Date(),
): { start: Date; end: Date; partial: boolean } {
  const m = MONTH.exec(month.trim());
  if (!m) throw invalidQuery([`month: must be ${MONTH_HINT}; got '${month}'`]);
  const year = Number(m[1]);
  const index = Number(m[2]) - 1;
  const start = new Date(Date.UTC(year, index, 1));
  const end = new Date(Date.UTC(year, index + 1, 1));
  if (start.getTime() > now.getTime()) {
    throw invalidQuery([`month: ${month.trim()} has not begun (the current month is ${monthOf(now)}, UTC)`]);
  }
  return { start, end, partial: now.getTime() < end.getTime() };
}

/**
 * Rounds without binary noise creeping in: 1.00005 × 10^4 is
 * 10000.499999999998 in floating point, which would round down.
 */
export function roundTo(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(Number((value * scale).toPrecision(15))) / scale;
}

/** The summed quantities of successful requests, in rollup units. */
export interface BillableUsage {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  pixelsIn: number;
  cpuMs: number;
}

/** The price arithmetic, on its own: quantities in billing units, one line per priced item, the total. */
export function costOf(
  tenant: string,
  month: string,
  partial: boolean,
  usage: BillableUsage,
  prices: Prices,
): CostEstimate {
  const quantities: CostQuantities = {
    requests: usage.requests,
    gbIn: usage.bytesIn / 1e9,
    gbOut: usage.bytesOut / 1e9,
    megapixels: usage.pixelsIn / 1e6,
    cpuHours: usage.cpuMs / 3_600_000,
  };
  const priced: Array<[CostItem, string, number, number]> = [
    ["requests", "1000 requests", quantities.requests / 1000, prices.per1000Requests],
    ["gbIn", "GB", quantities.gbIn, prices.perGbIn],
    ["gbOut", "GB", quantities.gbOut, prices.perGbOut],
    ["megapixels", "megapixel", quantities.megapixels, prices.perMegapixel],
    ["cpuHours", "CPU hour", quantities.cpuHours, prices.perCpuHour],
  ];
  let unrounded = 0;
  const lines = priced.map(([item, unit, quantity, unitPrice]): CostLine => {
    const amount = quantity * unitPrice;
    unrounded += amount;
    return { item, unit, quantity, unitPrice, amount: roundTo(amount, 4) };
  });
  return {
    tenant,
    month,
    currency: prices.currency,
    partial,
    quantities,
    lines,
    total: roundTo(unrounded, 2),
  };
}

interface BillableRow {
  tenant: string;
  requests: number;
  bytes_in: number;
  bytes_out: number;
  pixels_in: number;
  cpu_ms: number;
}

/**
 * The month's cost per tenant from the daily rollups (UTC days, so a month
 * is exactly its days). Default month: the current one, marked `partial`.
 * Tenants whose requests all failed appear with a zero total.
 */
export async function estimateCost(
  db: Database,
  query: { tenant?: string; month?: string },
  prices: Prices,
  now: Date = new Date(),
): Promise<CostSummary> {
  const month = query.month?.trim() ?? monthOf(now);
  const { start, end, partial } = monthRange(month, now);
  const params: unknown[] = [start, end];
  let where = "granularity = 'day' AND period_start >= $1 AND period_start < $2";
  if (query.tenant !== undefined) {
    params.push(query.tenant);
    where += " AND tenant_id = $3";
  }
  const ok = "outcome = 'ok'";
  const rows = await db.query<BillableRow>(
    `SELECT tenant_id AS tenant, ${sum("requests", ok)} AS requests,
       ${sum("bytes_in", ok)} AS bytes_in, ${sum("bytes_out", ok)} AS bytes_out,
       ${sum("pixels_in", ok)} AS pixels_in, ${sum("cpu_ms", ok)} AS cpu_ms
     FROM usage_rollups WHERE ${where}
     GROUP BY tenant_id ORDER BY tenant_id COLLATE "C"`,
    params,
  );
  const tenants = rows.map((r) =>
    costOf(
      r.tenant,
      month,
      partial,
      {
        requests: Number(r.requests),
        bytesIn: Number(r.bytes_in),
        bytesOut: Number(r.bytes_out),
        pixelsIn: Number(r.pixels_in),
        cpuMs: Number(r.cpu_ms),
      },
      prices,
    ),
  );
  if (query.tenant !== undefined && tenants.length === 0) {
    tenants.push(
      costOf(
        query.tenant,
        month,
        partial,
        { requests: 0, bytesIn: 0, bytesOut: 0, pixelsIn: 0, cpuMs: 0 },
        prices,
      ),
    );
  }
  return {
    month,
    currency: prices.currency,
    partial,
    tenants,
    total: roundTo(
      tenants.reduce((acc, t) => acc + t.total, 0),
      2,
    ),
  };
}
