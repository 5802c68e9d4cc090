import { z } from "zod";
import { Timestamp } from "./common.js";
import { GRANULARITIES, OUTCOMES } from "./vocabulary.js";

/** Usage reports and cost estimates: the same shapes on /v1 (a tenant's own) and /admin/v1 (any tenant). */

export const INSTANT_HINT =
  "an ISO 8601 date-time with a zone (2026-03-01T00:00:00Z) or a date (2026-03-01, UTC)";

/** A usage range bound: an ISO date-time with a zone, or a UTC date; null when it is neither. */
export function parseUsageInstant(text: string): Date | null {
  const t = text.trim();
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (date) {
    const ms = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]));
    // Date.UTC rolls 2026-02-30 over into March; a date that does not survive the round trip is refused.
    return new Date(ms).toISOString().slice(0, 10) === t ? new Date(ms) : null;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.test(t)) return null;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : new Date(ms);
}

/** `from`/`to` as given in a query string. */
const instantText = z
  .string()
  .max(64)
  .meta({ description: INSTANT_HINT })
  .transform((v, ctx) => {
    const at = parseUsageInstant(v);
    if (at === null) {
      ctx.addIssue({ code: "custom", message: `must be ${INSTANT_HINT}; got '${v}'` });
      return z.NEVER;
    }
    return at;
  });

/** The query parameters every usage report takes; the admin API adds `tenant`, `by` and `format`. */
const usageQueryFields = {
  from: instantText.optional(),
  to: instantText.optional(),
  granularity: z.enum(GRANULARITIES).default("day"),
};

/** YYYY-MM; checked by the server's monthRange, which also knows whether the month has begun. */
const monthText = z.string().max(16).meta({ description: "a month such as 2026-03 (YYYY-MM, UTC)" });

const tenantId = z.string().trim().min(1).max(64);

/** GET /v1/usage: the key decides whose usage it is. */
export const TenantUsageQuery = z.object(usageQueryFields).strict();
/** GET /v1/usage/cost */
export const TenantCostQuery = z.object({ month: monthText.optional() }).strict();

/** GET /admin/v1/usage: JSON, or CSV with `format=csv` or `Accept: text/csv`. */
export const AdminUsageQuery = z
  .object({
    tenant: tenantId.optional(),
    ...usageQueryFields,
    by: z.enum(["outcome"]).optional(),
    /** Overrides the Accept header. */
    format: z.enum(["json", "csv"]).optional(),
  })
  .strict();

/** GET /admin/v1/usage/cost: one tenant's estimate with `tenant`, else every tenant's. */
export const AdminCostQuery = z.object({ tenant: tenantId.optional(), month: monthText.optional() }).strict();

const quantities = {
  requests: z.number(),
  bytesIn: z.number(),
  bytesOut: z.number(),
  pixelsIn: z.number(),
  pixelsOut: z.number(),
  cpuMs: z.number(),
};
const counts = {
  ...quantities,
  succeeded: z.number(),
  clientErrors: z.number(),
  serverErrors: z.number(),
};
const head = {
  granularity: z.enum(GRANULARITIES),
  from: Timestamp,
  to: Timestamp,
  /** null: every tenant (operators only). */
  tenant: z.string().nullable(),
};

export const UsageRow = z
  .object({ tenant: z.string(), period: Timestamp, ...counts })
  .meta({ id: "UsageRow", description: "One tenant's usage in one period (requests of every outcome)" });
export const OutcomeUsageRow = z
  .object({ tenant: z.string(), period: Timestamp, outcome: z.enum(OUTCOMES), ...quantities })
  .meta({ id: "OutcomeUsageRow" });

export const UsageReport = z
  .discriminatedUnion("byOutcome", [
    z.object({
      ...head,
      byOutcome: z.literal(false),
      rows: z.array(UsageRow),
      totals: z.object(counts),
    }),
    z.object({
      ...head,
      byOutcome: z.literal(true),
      rows: z.array(OutcomeUsageRow),
      totals: z.object(quantities),
    }),
  ])
  .meta({ id: "UsageReport" });
export type UsageReport = z.infer<typeof UsageReport>;

export const CostEstimate = z
  .object({
    tenant: z.string(),
    month: z.string(),
    currency: z.string(),
    /** True for the current month: usage so far, not the month's bill. */
    partial: z.boolean(),
    quantities: z.object({
      requests: z.number(),
      gbIn: z.number(),
      gbOut: z.number(),
      megapixels: z.number(),
      cpuHours: z.number(),
    }),
    lines: z.array(
      z.object({
        item: z.enum(["requests", "gbIn", "gbOut", "megapixels", "cpuHours"]),
        unit: z.string(),
        quantity: z.number(),
        unitPrice: z.number(),
        amount: z.number(),
      }),
    ),
    total: z.number(),
  })
  .meta({ id: "CostEstimate" });
export type CostEstimate = z.infer<typeof CostEstimate>;

export const CostSummary = z
  .object({
    month: z.string(),
    currency: z.string(),
    partial: z.boolean(),
    tenants: z.array(CostEstimate),
    total: z.number(),
  })
  .meta({ id: "CostSummary" });
export type CostSummary = z.infer<typeof CostSummary>;
