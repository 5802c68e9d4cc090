import type { FastifyInstance } from "fastify";
import type { Database } from "../db/database.js";
import { auditLog } from "../identity/audit-log.js";
import type { ReportSources } from "../report/sources.js";
import { buildSupportReport } from "../report/support-report.js";
import { actorOf } from "./admin-context.js";

/**
 * `GET /admin/v1/report`: the support report as Markdown, for a person to
 * read before sending it anywhere. Making one is audited (it is an export).
 */
export function reportRoutes(app: FastifyInstance, deps: { report: ReportSources; db: Database }): void {
  app.get<{ Reply: string }>("/report", async (request, reply) => {
    const actor = actorOf(request);
    // The caller's own admin key is scrubbed too, should anything ever echo a request header.
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
    const now = new Date();
    const text = await buildSupportReport(deps.report, { extraSecrets: token ? [token] : [], now });
    await auditLog
      .record(deps.db, actor, { action: "report.create", target: null, tenantId: null })
      .catch((error: unknown) => request.log.warn({ err: error }, "could not audit a support report"));
    const stamp = now.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
    return reply
      .type("text/markdown; charset=utf-8")
      .header("cache-control", "no-store")
      .header("content-disposition", `attachment; filename="imgfleet-report-${stamp}.md"`)
      .send(text);
  });
}
