import { z } from "zod";
import { Problem } from "./common.js";
import { type Access, type Answer, ROUTES, type Route } from "./routes.js";

/**
 * The OpenAPI 3.1 document of every route, generated from the contract's
 * zod schemas (`z.toJSONSchema`): schemas with an `id` become components,
 * every error is a problem+json document, and each route names who may call it.
 */

type JsonSchema = Record<string, unknown>;
type Components = Record<string, JsonSchema>;

const PROBLEM_JSON = "application/problem+json";

export const SECURITY_SCHEMES = {
  apiKey: {
    type: "http",
    scheme: "bearer",
    description: "A tenant's API key (`imf_…`) with the route's scope: resize, or usage:read",
  },
  adminKey: {
    type: "http",
    scheme: "bearer",
    description: "An admin key (`imf_…`); valid only on /admin/v1",
  },
  consoleSession: {
    type: "apiKey",
    in: "cookie",
    name: "imgfleet_session",
    description: "The web console's session cookie, from POST /admin/v1/session",
  },
  csrfToken: {
    type: "apiKey",
    in: "header",
    name: "X-CSRF-Token",
    description:
      "The session's CSRF token (from its sign-in answer): required with the cookie on every write",
  },
  clusterSignature: {
    type: "apiKey",
    in: "header",
    name: "X-Imgfleet-Signature",
    description:
      "Node to node: an HMAC of the request with the cluster secret, with X-Imgfleet-Timestamp and a nonce",
  },
} as const;

const ACCESS: Record<Access, Record<string, string[]>> = {
  public: {},
  apiKey: { apiKey: [] },
  admin: { adminKey: [] },
  session: { consoleSession: [] },
  sessionWrite: { consoleSession: [], csrfToken: [] },
  cluster: { clusterSignature: [] },
};

/** A zod schema as JSON Schema, its named parts moved to `components` and referenced from there. */
function toSchema(schema: z.ZodType, io: "input" | "output", components: Components): JsonSchema {
  const converted = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonSchema;
  const { $schema: _dialect, $defs, ...rest } = converted;
  for (const [name, def] of Object.entries(($defs ?? {}) as Components)) {
    // Requests and answers may differ for one id (defaults, transforms): the answer's shape wins.
    if (!(name in components) || io === "output") components[name] = relink(def) as JsonSchema;
  }
  return relink(rest) as JsonSchema;
}

/** `#/$defs/X` → `#/components/schemas/X`, everywhere in a schema. */
function relink(value: unknown): unknown {
  return rewriteRefs(value, "#/$defs/", "#/components/schemas/");
}

/** Every `$ref` in `value` with its prefix `from` replaced by `to` (a schema moved to another place). */
export function rewriteRefs(value: unknown, from: string, to: string): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, from, to));
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) =>
      k === "$ref" && typeof v === "string" ? [k, v.replace(from, to)] : [k, rewriteRefs(v, from, to)],
    ),
  );
}

/** `/tenants/:id` → `/tenants/{id}`; a trailing wildcard (`/console/*`) becomes `{path}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, "{$1}").replace(/\/\*$/, "/{path}");
}

function parameters(route: Route, components: Components): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [
    ["path", route.params],
    ["query", route.query],
  ] as const) {
    if (!schema) continue;
    const json = toSchema(schema, "input", components);
    const required = new Set((json.required as string[] | undefined) ?? []);
    for (const [name, property] of Object.entries((json.properties ?? {}) as Components)) {
      const { description, ...rest } = property;
      out.push({
        name,
        in: where,
        required: where === "path" || required.has(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  return out;
}

function requestBody(route: Route, components: Components): JsonSchema | undefined {
  const body = route.body;
  if (!body) return undefined;
  const media = body instanceof z.ZodType ? { "application/json": body } : body.media;
  const content = Object.fromEntries(
    Object.entries(media).map(([type, schema]) => [
      type,
      { schema: schema === "binary" ? {} : toSchema(schema, "input", components) },
    ]),
  );
  return { required: route.bodyRequired === true, content };
}

function answer(a: Answer, components: Components): JsonSchema {
  if (!a.content) return { description: a.description };
  const content = Object.fromEntries(
    Object.entries(a.content).map(([type, schema]) => [
      type,
      {
        schema:
          schema === "binary"
            ? {}
            : schema === "text"
              ? { type: "string" }
              : toSchema(schema, "output", components),
      },
    ]),
  );
  return { description: a.description, content };
}

const PROBLEM_ANSWER = {
  description: "A problem+json document naming what was wrong and what to do",
  content: { [PROBLEM_JSON]: { schema: { $ref: "#/components/schemas/Problem" } } },
};

function responses(route: Route, components: Components): JsonSchema {
  const out: JsonSchema = {};
  for (const [status, a] of Object.entries(route.responses)) out[status] = answer(a, components);
  if (route.access.includes("cluster")) {
    // The data path answers refusals with bare status codes: workers log the reason.
    out["401"] ??= { description: "Signature missing, stale or wrong (see X-Imgfleet-Auth)" };
    out["503"] ??= { description: "Too many signature checks at once" };
    return out;
  }
  out["4XX"] = PROBLEM_ANSWER;
  out["5XX"] = PROBLEM_ANSWER;
  return out;
}

function operation(route: Route, components: Components): JsonSchema {
  const params = parameters(route, components);
  const body = requestBody(route, components);
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    security: route.access.length === 0 ? [] : route.access.map((a) => ACCESS[a]),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(body ? { requestBody: body } : {}),
    responses: responses(route, components),
    ...(route.access.includes("cluster") ? { "x-internal": true } : {}),
  };
}

/** The whole document; `version` is the server's. */
export function buildOpenApiDocument(options: { version: string }): JsonSchema {
  const components: Components = {};
  toSchema(Problem, "output", components);
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of ROUTES) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[route.method.toLowerCase()] = operation(route, components);
  }
  return {
    openapi: "3.1.1",
    info: {
      title: "imgfleet",
      version: options.version,
      description:
        "A multi-tenant image-resizing service: the public API (/v1), the admin API (/admin/v1), " +
        "health and metrics, the console's session, and problem types. Errors are RFC 9457 problem+json.",
    },
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    tags: [...new Set(ROUTES.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: { schemas: components, securitySchemes: SECURITY_SCHEMES },
  };
}
