import type { FastifyInstance } from "fastify";
import {
  type FlagEvaluation,
  FlagParams,
  FlagQuery,
  FlagSettingsBody,
  FlagTenantBody,
  FlagTenantParams,
  type FlagView,
} from "../contract/admin.js";
import { unknownFlag } from "../flags/flag-admin.js";
import type { Flags } from "../flags/flags.js";
import { isKnownFlag } from "../flags/registry.js";
import { actorOf } from "./admin-context.js";
import { parseInput } from "./validation.js";

/**
 * `/admin/v1/flags`: reads come from the flags bucket (what is stored),
 * except `?tenant=`, which answers how *this* node evaluates the flag from
 * its in-memory copy: polling each node that way shows a change arriving.
 */
export function flagRoutes(app: FastifyInstance, deps: { flags: Flags; nodeId: string }): void {
  const { admin, cache } = deps.flags;

  app.get<{ Reply: { items: FlagView[] } }>("/flags", async () => ({ items: await admin.list() }));

  app.get<{ Reply: FlagView | FlagEvaluation }>("/flags/:name", async (request) => {
    const { name } = parseInput(FlagParams, request.params, "flag name");
    const { tenant } = parseInput(FlagQuery, request.query, "query");
    if (tenant === undefined) return admin.get(name);
    const held = cache.get(name);
    if (held.revision === null && !isKnownFlag(name)) throw unknownFlag(name);
    const { value, reason } = cache.evaluate(name, tenant);
    return { flag: name, tenant, value, reason, node: deps.nodeId, revision: held.revision };
  });

  app.put<{ Reply: FlagView }>("/flags/:name", async (request) => {
    const { name } = parseInput(FlagParams, request.params, "flag name");
    const body = parseInput(FlagSettingsBody, request.body, "flag settings");
    return admin.configure(actorOf(request), name, body);
  });

  app.delete<{ Reply: FlagView }>("/flags/:name", async (request) => {
    const { name } = parseInput(FlagParams, request.params, "flag name");
    return admin.remove(actorOf(request), name);
  });

  app.put<{ Reply: FlagView }>("/flags/:name/tenants/:tenantId", async (request) => {
    const params = parseInput(FlagTenantParams, request.params, "path");
    const { enabled } = parseInput(FlagTenantBody, request.body, "flag override");
    return admin.setTenant(actorOf(request), params.name, params.tenantId, enabled);
  });

  app.delete<{ Reply: FlagView }>("/flags/:name/tenants/:tenantId", async (request) => {
    const params = parseInput(FlagTenantParams, request.params, "path");
    return admin.unsetTenant(actorOf(request), params.name, params.tenantId);
  });
}
