import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { unknownFlag } from "../flags/flag-admin.js";
import type { Flags } from "../flags/flags.js";
import { FLAG_NAME } from "../flags/model.js";
import { isKnownFlag } from "../flags/registry.js";
import { actorOf } from "./admin-api.js";
import { parseInput } from "./validation.js";

const flagName = z
  .string()
  .regex(FLAG_NAME, "must be kebab-case: lower-case letters, digits and dashes, at most 64 characters");
/** Tenant ids are checked against the database; this only keeps junk out of KV values and logs. */
const tenantId = z.string().regex(/^[\w.-]{1,64}$/, "must be a tenant id such as ten_…");

const NameParams = z.object({ name: flagName }).strict();
const TenantParams = z.object({ name: flagName, tenantId }).strict();
const FlagQuery = z.object({ tenant: tenantId.optional() }).strict();

const printable = (v: string) => ![...v].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127);

export const FlagSettingsBody = z
  .object({
    default: z.boolean(),
    percentage: z
      .number()
      .min(0)
      .max(100)
      .refine(
        (v) => Math.abs(v * 100 - Math.round(v * 100)) < 1e-6,
        "must have at most two decimals (0.01 is one tenant in ten thousand)",
      ),
    description: z.string().trim().max(500).refine(printable, "must not contain control characters"),
  })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, "name at least one of default, percentage, description");

export const FlagTenantBody = z.object({ enabled: z.boolean() }).strict();

/**
 * `/admin/v1/flags`: reads come from the flags bucket (what is stored),
 * except `?tenant=`, which answers how *this* node evaluates the flag from
 * its in-memory copy: polling each node that way shows a change arriving.
 */
export function flagRoutes(app: FastifyInstance, deps: { flags: Flags; nodeId: string }): void {
  const { admin, cache } = deps.flags;

  app.get("/flags", async () => ({ items: await admin.list() }));

  app.get("/flags/:name", async (request) => {
    const { name } = parseInput(NameParams, request.params, "flag name");
    const { tenant } = parseInput(FlagQuery, request.query, "query");
    if (tenant === undefined) return admin.get(name);
    const held = cache.get(name);
    if (held.revision === null && !isKnownFlag(name)) throw unknownFlag(name);
    const { value, reason } = cache.evaluate(name, tenant);
    return { flag: name, tenant, value, reason, node: deps.nodeId, revision: held.revision };
  });

  app.put("/flags/:name", async (request) => {
    const { name } = parseInput(NameParams, request.params, "flag name");
    const body = parseInput(FlagSettingsBody, request.body, "flag settings");
    return admin.configure(actorOf(request), name, body);
  });

  app.delete("/flags/:name", async (request) => {
    const { name } = parseInput(NameParams, request.params, "flag name");
    return admin.remove(actorOf(request), name);
  });

  app.put("/flags/:name/tenants/:tenantId", async (request) => {
    const params = parseInput(TenantParams, request.params, "path");
    const { enabled } = parseInput(FlagTenantBody, request.body, "flag override");
    return admin.setTenant(actorOf(request), params.name, params.tenantId, enabled);
  });

  app.delete("/flags/:name/tenants/:tenantId", async (request) => {
    const params = parseInput(TenantParams, request.params, "path");
    return admin.unsetTenant(actorOf(request), params.name, params.tenantId);
  });
}
