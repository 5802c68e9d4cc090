import type { FastifyInstance } from "fastify";
import { redact } from "../config/redact.js";
import type { NodeConfig } from "../contract/admin.js";
import { reduceUrls } from "../report/sanitise.js";
import type { ReportSources } from "../report/sources.js";
import { collectVersions } from "../report/versions.js";

/**
 * `GET /admin/v1/config`: the answering node's effective configuration with
 * secrets redacted and URLs cut to scheme and host (as in the support
 * report: a Slack webhook's path is a credential), and the versions it runs.
 */
export function configRoutes(app: FastifyInstance, deps: { report: ReportSources }): void {
  const src = deps.report;
  app.get<{ Reply: NodeConfig }>("/config", async (_request, reply) => {
    const versions = await collectVersions(src);
    return reply.header("cache-control", "no-store").send({
      node: {
        id: src.node.id,
        roles: [...src.node.roles],
        fleet: src.node.fleet,
        startedAt: new Date(src.node.startedAt).toISOString(),
      },
      versions,
      // Redacting keeps the configuration's shape: an object of sections.
      config: redact(reduceUrls(src.config)) as Record<string, unknown>,
    });
  });
}
