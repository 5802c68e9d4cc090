import type { FastifyInstance } from "fastify";
import {
  AdminCostQuery,
  AdminUsageQuery,
  type CostEstimate,
  type CostSummary,
  type UsageReport,
} from "../contract/usage.js";
import type { Database } from "../db/database.js";
import { ProblemError } from "../errors/problem.js";
import { estimateCost, monthOf, monthRange } from "../usage/cost.js";
import { ANONYMOUS_TENANT } from "../usage/model.js";
import { usageCsv, usageRange, usageReport } from "../usage/usage-report.js";
import type { AdminDeps } from "./admin-context.js";
import { parseInput } from "./validation.js";

/**
 * Usage and cost across tenants, for operators: JSON, or CSV with
 * `format=csv` or `Accept: text/csv`. Deleted tenants' usage is still here:
 * rollups outlive their tenant.
 */
export function usageRoutes(app: FastifyInstance, { db, config }: AdminDeps): void {
  app.get<{ Reply: UsageReport | string }>("/usage", async (request, reply) => {
    const q = parseInput(AdminUsageQuery, request.query, "query");
    const { from, to } = usageRange(q);
    if (q.tenant !== undefined) await requireKnownTenant(db, q.tenant);
    const report = await usageReport(db, {
      tenant: q.tenant,
      from,
      to,
      granularity: q.granularity,
      byOutcome: q.by === "outcome",
    });
    reply.header("vary", "accept");
    const csv = q.format === undefined ? prefersCsv(request.headers.accept) : q.format === "csv";
    if (!csv) return report;
    return reply
      .type("text/csv; charset=utf-8")
      .header(
        "content-disposition",
        `attachment; filename="imgfleet-usage-${fileStamp(from)}-${fileStamp(to)}.csv"`,
      )
      .send(usageCsv(report));
  });

  app.get<{ Reply: CostSummary | CostEstimate }>("/usage/cost", async (request) => {
    const q = parseInput(AdminCostQuery, request.query, "query");
    const month = q.month ?? monthOf(new Date());
    monthRange(month);
    if (q.tenant === undefined) return estimateCost(db, { month }, config.usage.prices);
    await requireKnownTenant(db, q.tenant);
    const summary = await estimateCost(db, { tenant: q.tenant, month }, config.usage.prices);
    return summary.tenants[0];
  });
}

/**
 * A tenant id that never existed (a typo) is a 404 rather than an empty
 * report. Deleted tenants exist (soft-deleted), `anonymous` has no row, and
 * any id with usage is known whatever became of its row.
 */
async function requireKnownTenant(db: Database, id: string): Promise<void> {
  if (id === ANONYMOUS_TENANT) return;
  const [row] = await db.query<{ known: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)
       OR EXISTS (SELECT 1 FROM usage_rollups WHERE granularity = 'day' AND tenant_id = $1) AS known`,
    [id],
  );
  if (!row?.known)
    throw new ProblemError("not-found", `no tenant ${id}, and no usage recorded under that id`);
}

/**
 * Whether the Accept header asks for CSV over JSON: `text/csv` listed with a
 * higher quality than JSON, or the same quality and listed first (JSON by
 * default, and for `*\/*`).
 */
export function prefersCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(",").map((part, index) => {
    const [type = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith("q="));
    const quality = q === undefined ? 1 : Number(q.slice(2));
    return { type, quality: Number.isFinite(quality) ? quality : 0, index };
  });
  const csv = ranges.find((r) => r.type === "text/csv");
  if (!csv || csv.quality <= 0) return false;
  // The most specific range that covers JSON decides its quality.
  const json =
    ranges.find((r) => r.type === "application/json") ??
    ranges.find((r) => r.type === "application/*") ??
    ranges.find((r) => r.type === "*/*");
  if (!json) return true;
  return csv.quality > json.quality || (csv.quality === json.quality && csv.index < json.index);
}

/** `2026-03-01` for a midnight, else `2026-03-01T1230Z` (seconds when not zero): no colons in a file name. */
export function fileStamp(at: Date): string {
  const iso = at.toISOString();
  const date = iso.slice(0, 10);
  if (iso.endsWith("T00:00:00.000Z")) return date;
  const seconds = iso.slice(17, 19) === "00" ? "" : iso.slice(17, 19);
  return `${date}T${iso.slice(11, 13)}${iso.slice(14, 16)}${seconds}Z`;
}
