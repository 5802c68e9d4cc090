import type { FastifyInstance, FastifyRequest } from "fastify";
import { type SessionView, SignInBody } from "../contract/admin.js";
import type { Database } from "../db/database.js";
import { auditLog } from "../identity/audit-log.js";
import type { ConsoleSessions } from "../session/sessions.js";
import { parseInput } from "./validation.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Routes that authenticate themselves (the console's sign-in and sign-out), not by the admin hook. */
    consoleSession?: boolean;
  }
}

/** Whether the admin API's auth hook should leave this request to its route. */
export function isSessionRoute(request: FastifyRequest): boolean {
  return request.routeOptions.config?.consoleSession === true;
}

/**
 * `/admin/v1/session`: the web console exchanges an admin key for a session
 * cookie (`POST`), reads its CSRF token back after a reload (`GET`) and
 * signs out (`DELETE`). Signing in and out is audited under the admin key.
 */
export function sessionRoutes(app: FastifyInstance, deps: { sessions: ConsoleSessions; db: Database }): void {
  const { sessions, db } = deps;
  const config = { consoleSession: true };
  const audit = (request: FastifyRequest, keyId: string, action: string) =>
    auditLog
      .record(
        db,
        { id: keyId, ip: request.ip, requestId: request.id },
        { action, target: keyId, tenantId: null },
      )
      .catch((error: unknown) => request.log.warn({ err: error }, `could not audit ${action}`));

  app.post<{ Reply: SessionView }>("/session", { config }, async (request, reply) => {
    const { adminKey } = parseInput(SignInBody, request.body, "sign-in");
    const { view, cookie } = await sessions.signIn(request, adminKey);
    await audit(request, view.keyId, "session.create");
    return reply.code(201).header("set-cookie", cookie).header("cache-control", "no-store").send(view);
  });

  app.get<{ Reply: SessionView }>("/session", { config }, async (request, reply) =>
    reply.header("cache-control", "no-store").send(await sessions.current(request)),
  );

  app.delete("/session", { config }, async (request, reply) => {
    const { keyId, cookie } = await sessions.signOut(request);
    if (keyId) await audit(request, keyId, "session.delete");
    return reply.code(204).header("set-cookie", cookie).send();
  });
}
