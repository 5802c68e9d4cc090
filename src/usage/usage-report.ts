import { INSTANT_HINT } from "../contract/usage.js";
import type { Database } from "../db/database.js";
import { ProblemError } from "../errors/problem.js";
import type { Outcome } from "./model.js";
import type { Granularity } from "./rollup-store.js";

/**
 * Usage as tenants and operators see it: the hourly or daily rollups summed
 * per tenant and period (all operations together). Requests count every
 * outcome; bytes, pixels and CPU count successful requests only, since those
 * are what is billed. Failures stay visible per outcome (`byOutcome`).
 */

export { GRANULARITIES } from "../contract/vocabulary.js";

/** The longest range one report may span: ~a month of hours, ~13 months of days. */
export const MAX_SPAN_DAYS: Readonly<Record<Granularity, number>> = { hour: 31, day: 400 };

/** Rows an operator report across every tenant may hold; beyond it, narrow the range or name a tenant. */
export const MAX_OPERATOR_ROWS = 10_000;

const DAY_MS = 86_400_000;

const OUTCOME_ORDER: readonly Outcome[] = ["ok", "client_error", "server_error"];

/** Quantities summed over rollup rows. */
export interface UsageQuantities {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  pixelsIn: number;
  pixelsOut: number;
  cpuMs: number;
}

/** Requests of every outcome; the other quantities are those of successful (billable) requests. */
export interface UsageCounts extends UsageQuantities {
  succeeded: number;
  clientErrors: number;
  serverErrors: number;
}

/** One tenant's usage in one period. */
export interface UsageRow extends UsageCounts {
  tenant: string;
  /** ISO 8601 start of the hour or day (UTC). */
  period: string;
}

/** One tenant's usage of one outcome in one period: quantities of that outcome. */
export interface OutcomeUsageRow extends UsageQuantities {
  tenant: string;
  period: string;
  outcome: Outcome;
}

interface ReportHead {
  granularity: Granularity;
  /** The range asked for (defaults applied): periods starting at or after `from` and before `to`. */
  from: string;
  to: string;
  /** null: every tenant (operators only). */
  tenant: string | null;
}

export type UsageReport =
  | (ReportHead & { byOutcome: false; rows: UsageRow[]; totals: UsageCounts })
  | (ReportHead & { byOutcome: true; rows: OutcomeUsageRow[]; totals: UsageQuantities });

export interface UsageQuery {
  /** Absent: every tenant, including deleted ones and `anonymous`. */
  tenant?: string;
  /** Default: the start of the UTC day (hour) or month (day) holding the instant just before `to`. */
  from?: Date;
  /** Default: now. */
  to?: Date;
  granularity: Granularity;
  byOutcome?: boolean;
}

/** Throws `invalid-body` in the shape parseInput uses: one `field: problem` line per error. */
export function invalidQuery(errors: string[]): ProblemError {
  return new ProblemError("invalid-body", `the query is not valid: ${errors.join("; ")}`, {
    extras: { errors },
  });
}

// The usage query's instant syntax belongs to the API contract.
export { INSTANT_HINT, parseUsageInstant } from "../contract/usage.js";

/** The UTC start of the day or month holding `ms`. */
function startOf(ms: number, granularity: Granularity): number {
  const d = new Date(ms);
  return granularity === "hour"
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/**
 * The range a report covers, with defaults: `to` is now; `from` the start of
 * the current UTC day for hourly usage, of the current UTC month for daily
 * usage (of the day or month before `to`, when `to` is given). Refuses
 * `from >= to` and spans over MAX_SPAN_DAYS.
 */
export function usageRange(
  q: { from?: Date; to?: Date; granularity: Granularity },
  now: Date = new Date(),
): { from: Date; to: Date } {
  const to = q.to ?? now;
  // The instant just before `to`: a `to` at midnight means "up to that day", so its default start is the day before.
  const from = q.from ?? new Date(startOf(to.getTime() - 1, q.granularity));
  const errors: string[] = [];
  if (Number.isNaN(from.getTime())) errors.push(`from: must be ${INSTANT_HINT}`);
  if (Number.isNaN(to.getTime())) errors.push(`to: must be ${INSTANT_HINT}`);
  if (errors.length > 0) throw invalidQuery(errors);
  if (from.getTime() >= to.getTime()) {
    throw invalidQuery([
      `to: must be after from (${from.toISOString()}${q.from ? "" : ", the default"}); got ${to.toISOString()}${q.to ? "" : " (now)"}`,
    ]);
  }
  const maxDays = MAX_SPAN_DAYS[q.granularity];
  if (to.getTime() - from.getTime() > maxDays * DAY_MS) {
    const hint =
      q.granularity === "hour" ? "ask for granularity=day, or a shorter range" : "ask for a shorter range";
    throw invalidQuery([
      `from: ${q.granularity === "hour" ? "hourly" : "daily"} usage spans at most ${maxDays} days; ${hint}`,
    ]);
  }
  return { from, to };
}

interface SumRow {
  tenant: string;
  period: Date | string;
  outcome?: Outcome;
  requests: number;
  succeeded?: number;
  client_errors?: number;
  server_errors?: number;
  bytes_in: number;
  bytes_out: number;
  pixels_in: number;
  pixels_out: number;
  cpu_ms: number;
}

/** Sums of bigint are numeric (text on the wire): cast back to bigint, which both adapters read as a number. */
export function sum(column: string, where?: string): string {
  const cast = column === "cpu_ms" ? "float8" : "bigint";
  return where
    ? `COALESCE(SUM(${column}) FILTER (WHERE ${where}), 0)::${cast}`
    : `COALESCE(SUM(${column}), 0)::${cast}`;
}

/**
 * Usage per tenant and period (or per tenant, period and outcome), ordered
 * by period then tenant, with totals. Only periods with data appear. Without
 * a tenant the report is capped at `maxRows` (else 400: narrow the range or
 * name a tenant).
 */
export async function usageReport(
  db: Database,
  query: UsageQuery,
  options: { now?: Date; maxRows?: number } = {},
): Promise<UsageReport> {
  const { from, to } = usageRange(query, options.now);
  const maxRows = options.maxRows ?? MAX_OPERATOR_ROWS;
  const params: unknown[] = [query.granularity, from, to];
  let where = "granularity = $1 AND period_start >= $2 AND period_start < $3";
  if (query.tenant !== undefined) {
    params.push(query.tenant);
    where += ` AND tenant_id = $${params.length}`;
  }
  let limit = "";
  if (query.tenant === undefined) {
    // One more than allowed, to tell "exactly at the cap" from "over it".
    params.push(maxRows + 1);
    limit = `LIMIT $${params.length}`;
  }
  const head: ReportHead = {
    granularity: query.granularity,
    from: from.toISOString(),
    to: to.toISOString(),
    tenant: query.tenant ?? null,
  };
  const ok = "outcome = 'ok'";
  // COLLATE "C": the same order on every database, whatever its locale.
  const sql = query.byOutcome
    ? `SELECT tenant_id AS tenant, period_start AS period, outcome, ${sum("requests")} AS requests,
         ${sum("bytes_in")} AS bytes_in, ${sum("bytes_out")} AS bytes_out,
         ${sum("pixels_in")} AS pixels_in, ${sum("pixels_out")} AS pixels_out, ${sum("cpu_ms")} AS cpu_ms
       FROM usage_rollups WHERE ${where}
       GROUP BY tenant_id, period_start, outcome
       ORDER BY period_start, tenant_id COLLATE "C", array_position(ARRAY['${OUTCOME_ORDER.join("','")}'], outcome)
       ${limit}`
    : `SELECT tenant_id AS tenant, period_start AS period, ${sum("requests")} AS requests,
         ${sum("requests", ok)} AS succeeded,
         ${sum("requests", "outcome = 'client_error'")} AS client_errors,
         ${sum("requests", "outcome = 'server_error'")} AS server_errors,
         ${sum("bytes_in", ok)} AS bytes_in, ${sum("bytes_out", ok)} AS bytes_out,
         ${sum("pixels_in", ok)} AS pixels_in, ${sum("pixels_out", ok)} AS pixels_out,
         ${sum("cpu_ms", ok)} AS cpu_ms
       FROM usage_rollups WHERE ${where}
       GROUP BY tenant_id, period_start
       ORDER BY period_start, tenant_id COLLATE "C"
       ${limit}`;
  const raw = await db.query<SumRow>(sql, params);
  if (query.tenant === undefined && raw.length > maxRows) {
    throw invalidQuery([
      `the report across every tenant would exceed ${maxRows} rows; narrow the range (from, to), ask for granularity=day, or name a tenant`,
    ]);
  }
  if (query.byOutcome) {
    const rows = raw.map(
      (r): OutcomeUsageRow => ({
        tenant: r.tenant,
        period: isoOf(r.period),
        outcome: r.outcome as Outcome,
        ...quantitiesOf(r),
      }),
    );
    return { ...head, byOutcome: true, rows, totals: totalOf(rows, quantityKeys) };
  }
  const rows = raw.map(
    (r): UsageRow => ({
      tenant: r.tenant,
      period: isoOf(r.period),
      ...quantitiesOf(r),
      succeeded: Number(r.succeeded ?? 0),
      clientErrors: Number(r.client_errors ?? 0),
      serverErrors: Number(r.server_errors ?? 0),
    }),
  );
  return { ...head, byOutcome: false, rows, totals: totalOf(rows, countKeys) };
}

const quantityKeys = ["requests", "bytesIn", "bytesOut", "pixelsIn", "pixelsOut", "cpuMs"] as const;
const countKeys = [...quantityKeys, "succeeded", "clientErrors", "serverErrors"] as const;

function quantitiesOf(r: SumRow): UsageQuantities {
  return {
    requests: Number(r.requests),
    bytesIn: Number(r.bytes_in),
    bytesOut: Number(r.bytes_out),
    pixelsIn: Number(r.pixels_in),
    pixelsOut: Number(r.pixels_out),
    cpuMs: roundCpu(Number(r.cpu_ms)),
  };
}

/** CPU is measured in microseconds: three decimals of milliseconds keep all of it and drop float noise. */
function roundCpu(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function totalOf<K extends keyof UsageCounts>(
  rows: ReadonlyArray<Record<K, number>>,
  keys: readonly K[],
): Record<K, number> & { cpuMs: number } {
  const totals: Record<string, number> = Object.fromEntries(keys.map((k) => [k, 0]));
  for (const row of rows) for (const k of keys) totals[k] = (totals[k] ?? 0) + row[k];
  totals.cpuMs = roundCpu(totals.cpuMs ?? 0);
  return totals as Record<K, number> & { cpuMs: number };
}

function isoOf(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** The columns of a report's CSV, in order; names match the JSON fields. */
export function csvColumns(report: UsageReport): string[] {
  return report.byOutcome
    ? ["tenant", "period", "outcome", ...quantityKeys]
    : [
        "tenant",
        "period",
        ...quantityKeys.slice(0, 1),
        "succeeded",
        "clientErrors",
        "serverErrors",
        ...quantityKeys.slice(1),
      ];
}

/** RFC 4180: CRLF line ends, a header line, fields with a comma, quote or line break quoted (quotes doubled). */
export function usageCsv(report: UsageReport): string {
  const columns = csvColumns(report);
  const rows = report.rows as ReadonlyArray<object> as ReadonlyArray<Record<string, string | number>>;
  const lines = [columns.map(csvField), ...rows.map((row) => columns.map((c) => csvField(row[c] ?? "")))];
  return lines.map((fields) => `${fields.join(",")}\r\n`).join("");
}

export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
