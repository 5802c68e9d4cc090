import type { FastifyInstance } from "fastify";
import { type AuditEntry, AuditQuery, type IdentityStatus } from "../contract/admin.js";
import type { Page } from "../contract/common.js";
import { type AdminDeps, page } from "./admin-context.js";
import { parseInput } from "./validation.js";

export function auditRoutes(app: FastifyInstance, { identity, outboxBacklog }: AdminDeps): void {
  app.get<{ Reply: Page<AuditEntry> }>("/audit", async (request) => {
    const q = parseInput(AuditQuery, request.query, "query");
    const items = await identity.admin.listAudit({ ...q, tenantId: q.tenant });
    return page(items, q.limit);
  });

  /** The data plane as this node sees it, with the propagation delay of recent changes. */
  app.get<{ Reply: IdentityStatus }>("/identity", async () => ({
    loaded: identity.cache.loaded,
    ...identity.cache.stats(),
    outboxBacklog: await outboxBacklog(),
  }));
}
