import { existsSync, readFileSync } from "node:fs";
import { validate } from "@readme/openapi-parser";
import Fastify from "fastify";
import { beforeAll, describe, expect, it } from "vitest";
import { internalRoutes } from "../../src/api/internal/data-path-routes.js";
import { CONSOLE_DIR } from "../../src/api/routes/console.js";
import { recordRoutes, registeredRoutes } from "../../src/api/routes/openapi.js";
import { openApiPath } from "../../src/contract/openapi.js";
import { ADMIN_PREFIX, INTERNAL_PREFIX, OPENAPI_PATH } from "../../src/contract/paths.js";
import { KNOWN_OPTIONS } from "../../src/image/options.js";
import { useNode } from "../helpers/node.js";
import { type Checked, OpenApiChecker, type OpenApiDocument } from "../helpers/openapi-checker.js";
import { startReceiver } from "../helpers/webhook-receiver.js";

const SAMPLE = readFileSync(new URL("../../examples/sample.jpg", import.meta.url));

interface Call {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  raw?: { bytes: Buffer; type: string };
  headers?: Record<string, string>;
}

describe("the OpenAPI document", () => {
  const node = useNode();
  let doc: OpenApiDocument;
  let checker: OpenApiChecker;
  let session = { cookie: "", csrf: "" };

  beforeAll(async () => {
    const res = await fetch(`${node().url}${OPENAPI_PATH}`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as OpenApiDocument;
    checker = new OpenApiChecker(doc);
  });

  /** A real request to the node, its answer checked against the document. `path` is the document's template. */
  async function call(method: string, path: string, c: Call = {}): Promise<Checked> {
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(c.params?.[name] ?? ""),
    );
    const qs = c.query ? `?${new URLSearchParams(c.query)}` : "";
    const json = c.body !== undefined;
    const res = await fetch(`${node().url}${filled}${qs}`, {
      method,
      headers: {
        ...(c.headers?.cookie
          ? {}
          : path.startsWith(ADMIN_PREFIX)
            ? { authorization: `Bearer ${node().adminKey}` }
            : node().auth),
        ...(json ? { "content-type": "application/json" } : {}),
        ...(c.raw ? { "content-type": c.raw.type } : {}),
        ...c.headers,
      },
      body: json ? JSON.stringify(c.body) : c.raw?.bytes,
    });
    return checker.check(method, path, res);
  }

  const ok = async (method: string, path: string, c: Call = {}) => {
    const answer = await call(method, path, c);
    expect(answer.status, `${method} ${path}: ${JSON.stringify(answer.body)}`).toBeLessThan(300);
    return answer.body as Record<string, unknown>;
  };

  it("is a valid OpenAPI 3.1 document, served without authentication and cacheable", async () => {
    const res = await fetch(`${node().url}${OPENAPI_PATH}`);
    expect(res.headers.get("cache-control")).toContain("public");
    const etag = res.headers.get("etag") ?? "";
    expect(etag).not.toBe("");
    const again = await fetch(`${node().url}${OPENAPI_PATH}`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    // No authentication: the checker's call would send a key, so this one goes bare.
    expect((await checker.check("GET", OPENAPI_PATH, again)).status).toBe(304);
    expect(
      (await checker.check("GET", OPENAPI_PATH, await fetch(`${node().url}${OPENAPI_PATH}`))).status,
    ).toBe(200);
    expect(doc.openapi).toMatch(/^3\.1\./);
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ["adminKey", "apiKey", "clusterSignature", "consoleSession", "csrfToken"].sort(),
    );
  });

  it("lists every route the node registers, and registers every route it lists", async () => {
    const internal = Fastify();
    recordRoutes(internal);
    await internal.register(async (scope) =>
      internalRoutes(scope, { staging: {} as never, pending: {} as never, clusterSecret: "s".repeat(32) }),
    );
    await internal.ready();
    const registered = [...registeredRoutes(node().node.api), ...registeredRoutes(internal)].map(
      (r) => `${r.method} ${openApiPath(r.url)}`,
    );
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(registered.length).toBeGreaterThan(50);
    expect(new Set(registered)).toEqual(new Set(documented));
    await internal.close();
  });

  it("documents exactly the resize options the node accepts", () => {
    const params = checker.operation("POST", "/v1/resize") as unknown as { parameters: { name: string }[] };
    expect(params.parameters.map((p) => p.name).sort()).toEqual([...KNOWN_OPTIONS].sort());
  });

  it("describes the answers of the public, health and problem routes", async () => {
    await ok("GET", "/healthz");
    await ok("GET", "/readyz");
    expect(await call("GET", "/metrics")).toMatchObject({ status: 200 });
    await ok("GET", "/problems/{code}", {
      params: { code: "not-found" },
      headers: { accept: "application/json" },
    });
    await ok("GET", "/problems/{code}", { params: { code: "not-found" }, headers: { accept: "text/html" } });
    expect((await call("GET", "/problems/{code}", { params: { code: "no-such" } })).status).toBe(404);
    await ok("POST", "/v1/resize", {
      query: { w: "40", format: "webp" },
      raw: { bytes: SAMPLE, type: "image/jpeg" },
    });
    expect(
      (await call("POST", "/v1/resize", { query: { w: "0" }, raw: { bytes: SAMPLE, type: "image/jpeg" } }))
        .status,
    ).toBe(400);
    expect(
      (
        await call("POST", "/v1/resize", {
          headers: { authorization: "Bearer nope" },
          raw: { bytes: SAMPLE, type: "image/jpeg" },
        })
      ).status,
    ).toBe(401);
    await ok("GET", "/v1/formats");
    await ok("GET", "/v1/usage", { query: { granularity: "hour" } });
    await ok("GET", "/v1/usage/cost");
    expect((await call("GET", "/v1/usage", { query: { tenant: "x" } })).status).toBe(400);
    const built = existsSync(`${CONSOLE_DIR}index.html`);
    const console = await call("GET", "/console");
    expect(console.status).toBe(built ? 200 : 503);
    expect((await call("GET", "/console/{path}", { params: { path: "assets/none.js" } })).status).toBe(404);
  });

  it("describes the answers of the tenant and key routes", async () => {
    const tenant = await ok("POST", "/admin/v1/tenants", {
      body: { name: "openapi", outputFormats: ["webp"] },
    });
    const id = String(tenant.id);
    await ok("GET", "/admin/v1/tenants", { query: { limit: "5", includeDeleted: "true" } });
    await ok("GET", "/admin/v1/tenants/{id}", { params: { id } });
    await ok("PATCH", "/admin/v1/tenants/{id}", { params: { id }, body: { burst: 20, maxInputBytes: null } });
    await ok("POST", "/admin/v1/tenants/{id}/suspend", { params: { id } });
    await ok("POST", "/admin/v1/tenants/{id}/resume", { params: { id } });
    expect((await call("POST", "/admin/v1/tenants", { body: { name: "" } })).status).toBe(400);
    expect((await call("GET", "/admin/v1/tenants/{id}", { params: { id: "ten_none" } })).status).toBe(404);
    const key = await ok("POST", "/admin/v1/tenants/{id}/keys", {
      params: { id },
      body: { scopes: ["resize"] },
    });
    const keyId = String(key.id);
    await ok("GET", "/admin/v1/tenants/{id}/keys", { params: { id }, query: { includeRevoked: "true" } });
    await ok("GET", "/admin/v1/tenants/{id}/keys/{keyId}", { params: { id, keyId } });
    const rotated = await ok("POST", "/admin/v1/tenants/{id}/keys/{keyId}/rotate", {
      params: { id, keyId },
      body: { graceSeconds: 0 },
    });
    await ok("POST", "/admin/v1/tenants/{id}/keys/{keyId}/revoke", { params: { id, keyId } });
    await ok("DELETE", "/admin/v1/tenants/{id}/keys/{keyId}", { params: { id, keyId: String(rotated.id) } });
    const adminKey = await ok("POST", "/admin/v1/admin-keys", { body: { name: "openapi" } });
    await ok("GET", "/admin/v1/admin-keys");
    await ok("POST", "/admin/v1/admin-keys/{keyId}/revoke", { params: { keyId: String(adminKey.id) } });
    await ok("DELETE", "/admin/v1/tenants/{id}", { params: { id } });
  });

  it("describes the answers of the operations, usage and flag routes", async () => {
    for (const path of ["/audit", "/identity", "/nodes", "/dead-letters", "/events", "/config", "/report"])
      await ok("GET", `/admin/v1${path}`);
    await ok("GET", "/admin/v1/audit", { query: { since: "2020-01-01T00:00:00Z", limit: "2" } });
    const overview = await ok("GET", "/admin/v1/metrics");
    const series = (overview.items as { name: string }[])[0]?.name ?? "";
    await ok("GET", "/admin/v1/metrics/{series}", { params: { series } });
    expect((await call("GET", "/admin/v1/metrics/{series}", { params: { series: "nope" } })).status).toBe(
      404,
    );
    await ok("GET", "/admin/v1/usage", { query: { by: "outcome" } });
    await ok("GET", "/admin/v1/usage", { query: { tenant: node().tenant, format: "csv" } });
    await ok("GET", "/admin/v1/usage/cost");
    await ok("GET", "/admin/v1/usage/cost", { query: { tenant: node().tenant } });
    await ok("GET", "/admin/v1/flags");
    const name = "avif-auto";
    await ok("GET", "/admin/v1/flags/{name}", { params: { name } });
    await ok("GET", "/admin/v1/flags/{name}", { params: { name }, query: { tenant: node().tenant } });
    await ok("PUT", "/admin/v1/flags/{name}", { params: { name }, body: { percentage: 12.5 } });
    const tenantId = node().tenant;
    await ok("PUT", "/admin/v1/flags/{name}/tenants/{tenantId}", {
      params: { name, tenantId },
      body: { enabled: true },
    });
    await ok("DELETE", "/admin/v1/flags/{name}/tenants/{tenantId}", { params: { name, tenantId } });
    await ok("DELETE", "/admin/v1/flags/{name}", { params: { name } });
  });

  it("describes the answers of the alert and notification routes", async () => {
    const receiver = await startReceiver();
    await ok("GET", "/admin/v1/alerts", { query: { state: "firing" } });
    await ok("GET", "/admin/v1/alerts/rules");
    // A fresh node has no alert: these answer the documented problem.
    expect((await call("GET", "/admin/v1/alerts/{id}", { params: { id: "alr_none" } })).status).toBe(404);
    expect((await call("POST", "/admin/v1/alerts/{id}/ack", { params: { id: "alr_none" } })).status).toBe(
      404,
    );
    const channel = await ok("POST", "/admin/v1/notification-channels", {
      body: { name: "openapi", url: receiver.url, secret: "s".repeat(16) },
    });
    await ok("GET", "/admin/v1/notification-channels");
    await ok("POST", "/admin/v1/notification-channels/test", { body: {} });
    await ok("POST", "/admin/v1/notification-channels/{id}/test", { params: { id: String(channel.id) } });
    await ok("GET", "/admin/v1/notification-deliveries", { query: { limit: "10" } });
    await ok("DELETE", "/admin/v1/notification-channels/{id}", { params: { id: String(channel.id) } });
  });

  it("describes the console session's answers", async () => {
    const res = await fetch(`${node().url}/admin/v1/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ adminKey: node().adminKey }),
    });
    const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const signedIn = await checker.check("POST", "/admin/v1/session", res);
    expect(signedIn.status).toBe(201);
    session = { cookie, csrf: String((signedIn.body as { csrfToken: string }).csrfToken) };
    const headers = { cookie: session.cookie };
    await ok("GET", "/admin/v1/session", { headers });
    expect((await call("DELETE", "/admin/v1/session", { headers })).status).toBe(403);
    await ok("DELETE", "/admin/v1/session", { headers: { ...headers, "x-csrf-token": session.csrf } });
    expect((await call("GET", "/admin/v1/session", { headers })).status).toBe(401);
  });

  it("describes the internal data path's refusals", async () => {
    const internal = Fastify();
    await internal.register(async (scope) =>
      internalRoutes(scope, { staging: {} as never, pending: {} as never, clusterSecret: "s".repeat(32) }),
    );
    const staged = await internal.inject({ method: "GET", url: `${INTERNAL_PREFIX}/staged/k` });
    const result = await internal.inject({ method: "POST", url: `${INTERNAL_PREFIX}/results/j`, body: "x" });
    for (const [path, answer] of [
      ["/internal/v1/staged/{key}", staged],
      ["/internal/v1/results/{jobId}", result],
    ] as const) {
      const res = new Response(answer.body || null, { status: answer.statusCode });
      expect((await checker.check(path.includes("staged") ? "GET" : "POST", path, res)).status).toBe(401);
    }
    await internal.close();
  });

  it("was exercised on every route, each with a success where a fresh node can give one", () => {
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));
    const missing = operations.filter((op) => !checker.seen.has(op.operationId)).map((op) => op.operationId);
    expect(missing).toEqual([]);
    // Without an alert or a built console, these routes can only answer their documented problems.
    const noSuccessPossible = new Set([
      "getAlert",
      "ackAlert",
      "consoleAsset",
      "internalStaged",
      "internalResult",
    ]);
    if (!existsSync(`${CONSOLE_DIR}index.html`)) noSuccessPossible.add("console");
    const withoutSuccess = operations
      .filter((op) => !noSuccessPossible.has(op.operationId))
      .filter((op) => !(checker.seen.get(op.operationId) ?? []).some((s) => s < 300))
      .map((op) => op.operationId);
    expect(withoutSuccess).toEqual([]);
  });
});
