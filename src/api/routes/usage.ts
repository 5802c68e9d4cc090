import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { parseInput } from "../admin/validation.js";
import type { Authenticator, Principal } from "../../identity/authenticator.js";
import type { Database } from "../db/database.js";
import { estimateCost, type Prices } from "./cost.js";
import { ANONYMOUS_TENANT } from "./model.js";
import { GRANULARITIES, INSTANT_HINT, invalidQuery, parseUsageInstant, usageReport } from "./usage-report.js";

export interface UsageRouteDeps {
  db: Database;
  prices: Prices;
  authenticator: Authenticator;
}

/** `from`/`to` as given in a query string: an ISO date-time with a zone, or a UTC date. */
const instantText = z
  .string()
  .max(64)
  .transform((v, ctx) => {
    const at = parseUsageInstant(v);
    if (at === null) {
      ctx.addIssue({ code: "custom", message: `must be ${INSTANT_HINT}; got '${v}'` });
      return z.NEVER;
    }
    return at;
  });

/** The query parameters every usage report takes; the admin API adds `tenant`, `by` and `format`. */
export const usageQueryFields = {
  from: instantText.optional(),
  to: instantText.optional(),
  granularity: z.enum(GRANULARITIES).default("day"),
};

/** Checked by monthRange (which also knows whether the month has begun). */
export const monthText = z.string().max(16);

const TenantUsageQuery = z.object(usageQueryFields).strict();
const TenantCostQuery = z.object({ month: monthText.optional() }).strict();

/**
 * `/v1/usage` and `/v1/usage/cost`: a tenant's own usage and cost estimate,
 * with an API key holding `usage:read`. There is no `tenant` parameter: the
 * key decides whose usage it is.
 */
export function usageRoutes(app: FastifyInstance, deps: UsageRouteDeps): void {
  const callers = new WeakMap<FastifyRequest, Principal>();
  // The caller's in-flight slot is given back however the request ends: answered, failed or abandoned.
  const release = async (request: FastifyRequest) => {
    callers.get(request)?.release();
  };
  const hooks = {
    onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
      const principal = deps.authenticator.authenticate(request.headers.authorization, "usage:read");
      callers.set(request, principal);
      reply.headers(principal.headers);
      if (principal.tenant) Object.assign(reply.imgfleet, { tenant: principal.tenant, key: principal.keyId });
    },
    onResponse: release,
    onRequestAbort: release,
  };

  app.get("/v1/usage", hooks, async (request) => {
    const q = parseInput(TenantUsageQuery, ownTenantOnly(request.query), "query");
    return usageReport(deps.db, {
      tenant: tenantOf(callers.get(request)),
      from: q.from,
      to: q.to,
      granularity: q.granularity,
    });
  });

  app.get("/v1/usage/cost", hooks, async (request) => {
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
