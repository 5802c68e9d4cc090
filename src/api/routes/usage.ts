import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseInput } from "../../admin/validation.js";
import { PUBLIC_PREFIX } from "../../contract/paths.js";
import {
  type CostEstimate,
  TenantCostQuery,
  TenantUsageQuery,
  type UsageReport,
} from "../../contract/usage.js";
import type { Database } from "../../db/database.js";
import type { Authenticator, Principal } from "../../identity/authenticator.js";
import { estimateCost, type Prices } from "../../usage/cost.js";
import { ANONYMOUS_TENANT } from "../../usage/model.js";
import { invalidQuery, usageReport } from "../../usage/usage-report.js";
import { lifeOf } from "../request-life.js";

export interface UsageRouteDeps {
  db: Database;
  prices: Prices;
  authenticator: Authenticator;
}

/**
 * `/v1/usage` and `/v1/usage/cost`: a tenant's own usage and cost estimate,
 * with an API key holding `usage:read`. There is no `tenant` parameter: the
 * key decides whose usage it is.
 */
export function usageRoutes(app: FastifyInstance, deps: UsageRouteDeps): void {
  const callers = new WeakMap<FastifyRequest, Principal>();
  const hooks = {
    onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
      const principal = deps.authenticator.authenticate(
        request.headers.authorization,
        "usage:read",
        request.ip,
      );
      // The caller's in-flight slot is given back by the request's life, however it ends (a client gone included).
      lifeOf(request).hold(() => principal.release());
      callers.set(request, principal);
      reply.headers(principal.headers);
      if (principal.tenant) Object.assign(reply.imgfleet, { tenant: principal.tenant, key: principal.keyId });
    },
  };

  app.get<{ Reply: UsageReport }>(`${PUBLIC_PREFIX}/usage`, hooks, async (request) => {
    const q = parseInput(TenantUsageQuery, ownTenantOnly(request.query), "query");
    return usageReport(deps.db, {
      tenant: tenantOf(callers.get(request)),
      from: q.from,
      to: q.to,
      granularity: q.granularity,
    });
  });

  app.get<{ Reply: CostEstimate }>(`${PUBLIC_PREFIX}/usage/cost`, hooks, async (request) => {
    const q = parseInput(TenantCostQuery, ownTenantOnly(request.query), "query");
    const tenant = tenantOf(callers.get(request));
    const summary = await estimateCost(deps.db, { tenant, month: q.month }, deps.prices);
    // One tenant asked for: estimateCost always answers with exactly that one.
    return summary.tenants[0];
  });
}

/** With `auth.mode: none` every caller is the anonymous tenant, and so is its usage. */
function tenantOf(principal: Principal | undefined): string {
  if (!principal) throw new Error("usage route reached without an authenticated caller");
  return principal.tenant ?? ANONYMOUS_TENANT;
}

/** A clearer refusal than "unrecognized key" for the one parameter a tenant might try. */
function ownTenantOnly(query: unknown): unknown {
  if (typeof query === "object" && query !== null && Object.hasOwn(query, "tenant")) {
    throw invalidQuery([
      "tenant: not accepted here: an API key sees only its own tenant's usage (operators use /admin/v1/usage?tenant=)",
    ]);
  }
  return query;
}
