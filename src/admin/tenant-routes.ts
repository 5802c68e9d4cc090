import type { FastifyInstance } from "fastify";
import { NewTenantBody, type Tenant, TenantListQuery, TenantPatchBody } from "../contract/admin.js";
import type { Page } from "../contract/common.js";
import { ADMIN_PREFIX } from "../contract/paths.js";
import { type AdminDeps, actorOf, page } from "./admin-context.js";
import { parseInput } from "./validation.js";

type IdParams = { Params: { id: string } };

export function tenantRoutes(app: FastifyInstance, { identity }: AdminDeps): void {
  const { admin } = identity;

  app.post<{ Reply: Tenant }>("/tenants", async (request, reply) => {
    const body = parseInput(NewTenantBody, request.body, "tenant");
    const tenant = await admin.createTenant(actorOf(request), body);
    return reply.code(201).header("location", `${ADMIN_PREFIX}/tenants/${tenant.id}`).send(tenant);
  });

  app.get<{ Reply: Page<Tenant> }>("/tenants", async (request) => {
    const q = parseInput(TenantListQuery, request.query, "query");
    return page(await admin.listTenants(q), q.limit);
  });

  app.get<IdParams & { Reply: Tenant }>("/tenants/:id", async (request) =>
    admin.getTenant(request.params.id),
  );

  app.patch<IdParams & { Reply: Tenant }>("/tenants/:id", async (request) => {
    const patch = parseInput(TenantPatchBody, request.body, "tenant change");
    return admin.updateTenant(actorOf(request), request.params.id, patch);
  });

  app.post<IdParams & { Reply: Tenant }>("/tenants/:id/suspend", async (request) =>
    admin.updateTenant(actorOf(request), request.params.id, { status: "suspended" }),
  );

  app.post<IdParams & { Reply: Tenant }>("/tenants/:id/resume", async (request) =>
    admin.updateTenant(actorOf(request), request.params.id, { status: "active" }),
  );

  app.delete<IdParams & { Reply: Tenant }>("/tenants/:id", async (request) =>
    admin.deleteTenant(actorOf(request), request.params.id),
  );
}
