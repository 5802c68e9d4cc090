import type { FastifyInstance } from "fastify";
import { type DeadLetter, DeadLetterQuery, type FleetNode } from "../contract/admin.js";
import { ADMIN_PREFIX, MAX_ADMIN_BODY_BYTES } from "../contract/paths.js";
import { deadLetters } from "../queue/dead-letters.js";
import type { AdminDeps } from "./admin-context.js";
import { auditRoutes } from "./audit-routes.js";
import { configRoutes } from "./config-routes.js";
import { flagRoutes } from "./flag-routes.js";
import { keyRoutes } from "./key-routes.js";
import { opsRoutes } from "./ops-routes.js";
import { reportRoutes } from "./report-routes.js";
import { isSessionRoute, sessionRoutes } from "./session-routes.js";
import { tenantRoutes } from "./tenant-routes.js";
import { usageRoutes } from "./usage-routes.js";
import { parseInput } from "./validation.js";

export { type AdminDeps, actorOf, page } from "./admin-context.js";

/**
 * The management plane's REST API. Every route needs an admin key, checked
 * from the in-memory data plane like any other key; writes go to the
 * database with their outbox notice and audit entry in one transaction.
 */
export async function adminApi(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.decorateRequest("adminActor", null);
  await app.register(
    async (admin) => {
      acceptJsonOnly(admin);
      admin.addHook("onRequest", async (request) => {
        if (isSessionRoute(request)) return;
        const keyId = deps.sessions
          ? await deps.sessions.authenticateAdmin(request)
          : deps.identity.keys.authenticateAdmin(request.headers.authorization, request.ip);
        request.adminActor = { id: keyId, ip: request.ip, requestId: request.id };
      });
      tenantRoutes(admin, deps);
      keyRoutes(admin, deps);
      auditRoutes(admin, deps);
      admin.get<{ Reply: { items: FleetNode[] } }>("/nodes", async () => ({ items: await deps.nodes() }));
      opsRoutes(admin, deps.ops);
      admin.get<{ Reply: { items: DeadLetter[] } }>("/dead-letters", async (request) => {
        const { limit } = parseInput(DeadLetterQuery, request.query, "query");
        return { items: await deadLetters.list(deps.db, limit) };
      });
      usageRoutes(admin, deps);
      flagRoutes(admin, deps);
      reportRoutes(admin, deps);
      configRoutes(admin, deps);
      if (deps.sessions) sessionRoutes(admin, { sessions: deps.sessions, db: deps.db });
    },
    { prefix: ADMIN_PREFIX },
  );
}

/** Admin bodies are JSON documents (at most MAX_ADMIN_BODY_BYTES); an empty body (e.g. `curl -X POST …/suspend`) is no body. */
function acceptJsonOnly(admin: FastifyInstance): void {
  admin.removeAllContentTypeParsers();
  admin.addContentTypeParser(
    "application/json",
    { parseAs: "string", bodyLimit: MAX_ADMIN_BODY_BYTES },
    (_request, body, done) => {
      const text = String(body);
      if (text.trim() === "") return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch (error) {
        const invalid = new Error(`the body is not valid JSON: ${(error as Error).message}`);
        done(Object.assign(invalid, { statusCode: 400 }), undefined);
      }
    },
  );
}
