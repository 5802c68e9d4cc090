import { createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { VERSION } from "../../app/version.js";
import { buildOpenApiDocument } from "../../contract/openapi.js";
import { OPENAPI_PATH } from "../../contract/paths.js";

/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated
 * once from the API contract. No authentication (it holds no data), and
 * cacheable: it changes only with the version, so its ETag is its hash.
 */
export function openApiRoute(app: FastifyInstance): void {
  let cached: { body: string; etag: string } | undefined;
  const document = () => {
    if (!cached) {
      const body = JSON.stringify(buildOpenApiDocument({ version: VERSION }));
      cached = { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
    }
    return cached;
  };
  app.get(OPENAPI_PATH, async (request, reply) => {
    const { body, etag } = document();
    reply.header("etag", etag).header("cache-control", "public, max-age=3600, must-revalidate");
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return reply.type("application/json; charset=utf-8").send(body);
  });
}

export interface RegisteredRoute {
  method: string;
  /** Fastify's path, with its prefix (`/admin/v1/tenants/:id`). */
  url: string;
}

const REGISTERED = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * Records every route registered on `app` from now on (before any route is
 * added), so a test can hold them against the document: a route added
 * without a contract entry fails there. HEAD routes are Fastify's own echo of GET.
 */
export function recordRoutes(app: FastifyInstance): void {
  const routes: RegisteredRoute[] = [];
  REGISTERED.set(app, routes);
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat())
      if (method !== "HEAD") routes.push({ method, url: route.url });
  });
}

export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return REGISTERED.get(app) ?? [];
}
