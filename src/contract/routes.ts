import { z } from "zod";
import * as admin from "./admin.js";
import { listOf, pageOf } from "./common.js";
import {
  ADMIN_PREFIX,
  CONSOLE_PATH,
  INTERNAL_PREFIX,
  OPENAPI_PATH,
  PROBLEMS_PREFIX,
  PUBLIC_PREFIX,
} from "./paths.js";
import * as pub from "./public.js";
import * as usage from "./usage.js";

/**
 * Every route of a node, once: method, path, who may call it, what it takes
 * and what it answers. The OpenAPI document is generated from this table,
 * the server validates with the same schemas, and a test checks that every
 * route the server registers is here (and answers as described).
 */

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Who may call a route; see SECURITY_SCHEMES in openapi.ts. */
export type Access = "public" | "apiKey" | "admin" | "session" | "sessionWrite" | "cluster";

/** One answer: a description and, per media type, a zod schema, or `binary`/`text` for bytes and text. */
export interface Answer {
  description: string;
  content?: Record<string, z.ZodType | "binary" | "text">;
}

export interface Route {
  method: Method;
  /** Fastify-style (`/tenants/:id`), with its prefix. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** Any one of these lets a caller in; empty: no authentication. */
  access: readonly Access[];
  params?: z.ZodObject;
  query?: z.ZodType;
  /** A JSON body (optional unless `bodyRequired`), or raw media types for uploads. */
  body?: z.ZodType | { media: Record<string, "binary" | z.ZodType> };
  bodyRequired?: boolean;
  responses: Record<number, Answer>;
}

const json = (description: string, schema: z.ZodType): Answer => ({
  description,
  content: { "application/json": schema },
});

const id = z.object({ id: z.string().max(64) });
const keyParams = z.object({ id: z.string().max(64), keyId: z.string().max(64) });
const adminOnly: readonly Access[] = ["admin", "session"];
const adminWrite: readonly Access[] = ["admin", "sessionWrite"];

function adminRoute(
  method: Method,
  path: string,
  operationId: string,
  summary: string,
  tag: string,
  spec: Pick<Route, "params" | "query" | "body" | "bodyRequired" | "responses">,
): Route {
  const access = method === "GET" ? adminOnly : adminWrite;
  return { method, path: `${ADMIN_PREFIX}${path}`, operationId, summary, tag, access, ...spec };
}

const TENANTS: Route[] = [
  adminRoute("POST", "/tenants", "createTenant", "Create a tenant", "tenants", {
    body: admin.NewTenantBody,
    bodyRequired: true,
    responses: { 201: json("The new tenant", admin.Tenant) },
  }),
  adminRoute("GET", "/tenants", "listTenants", "List tenants", "tenants", {
    query: admin.TenantListQuery,
    responses: { 200: json("One page of tenants", pageOf(admin.Tenant)) },
  }),
  adminRoute("GET", "/tenants/:id", "getTenant", "Read a tenant", "tenants", {
    params: id,
    responses: { 200: json("The tenant", admin.Tenant) },
  }),
  adminRoute("PATCH", "/tenants/:id", "updateTenant", "Change a tenant's name, status or limits", "tenants", {
    params: id,
    body: admin.TenantPatchBody,
    bodyRequired: true,
    responses: { 200: json("The tenant as changed", admin.Tenant) },
  }),
  adminRoute("POST", "/tenants/:id/suspend", "suspendTenant", "Suspend a tenant", "tenants", {
    params: id,
    responses: { 200: json("The suspended tenant", admin.Tenant) },
  }),
  adminRoute("POST", "/tenants/:id/resume", "resumeTenant", "Resume a suspended tenant", "tenants", {
    params: id,
    responses: { 200: json("The active tenant", admin.Tenant) },
  }),
  adminRoute("DELETE", "/tenants/:id", "deleteTenant", "Delete a tenant (its keys stop working)", "tenants", {
    params: id,
    responses: { 200: json("The deleted tenant", admin.Tenant) },
  }),
];

const KEYS: Route[] = [
  adminRoute("POST", "/tenants/:id/keys", "createKey", "Issue an API key to a tenant", "keys", {
    params: id,
    body: admin.NewKeyBody,
    responses: { 201: json("The key with its secret, shown once", admin.IssuedKey) },
  }),
  adminRoute("GET", "/tenants/:id/keys", "listKeys", "List a tenant's keys", "keys", {
    params: id,
    query: admin.KeyListQuery,
    responses: { 200: json("Every key (one page)", pageOf(admin.ApiKey)) },
  }),
  adminRoute("GET", "/tenants/:id/keys/:keyId", "getKey", "Read a key", "keys", {
    params: keyParams,
    responses: { 200: json("The key", admin.ApiKey) },
  }),
  adminRoute("POST", "/tenants/:id/keys/:keyId/revoke", "revokeKey", "Revoke a key", "keys", {
    params: keyParams,
    responses: { 200: json("The revoked key", admin.ApiKey) },
  }),
  adminRoute("DELETE", "/tenants/:id/keys/:keyId", "deleteKey", "Revoke a key (as DELETE)", "keys", {
    params: keyParams,
    responses: { 200: json("The revoked key", admin.ApiKey) },
  }),
  adminRoute(
    "POST",
    "/tenants/:id/keys/:keyId/rotate",
    "rotateKey",
    "Replace a key, the old one in grace",
    "keys",
    {
      params: keyParams,
      body: admin.RotateBody,
      responses: { 201: json("The new key with its secret, and the old one", admin.RotatedKey) },
    },
  ),
  adminRoute("POST", "/admin-keys", "createAdminKey", "Issue an admin key", "keys", {
    body: admin.NewAdminKeyBody,
    responses: { 201: json("The admin key with its secret, shown once", admin.IssuedKey) },
  }),
  adminRoute("GET", "/admin-keys", "listAdminKeys", "List admin keys", "keys", {
    query: admin.KeyListQuery,
    responses: { 200: json("Every admin key (one page)", pageOf(admin.ApiKey)) },
  }),
  adminRoute("POST", "/admin-keys/:keyId/revoke", "revokeAdminKey", "Revoke an admin key", "keys", {
    params: z.object({ keyId: z.string().max(64) }),
    responses: { 200: json("The revoked admin key", admin.ApiKey) },
  }),
];

const OPERATIONS: Route[] = [
  adminRoute("GET", "/audit", "listAudit", "The audit trail, newest first", "audit", {
    query: admin.AuditQuery,
    responses: { 200: json("One page of audit entries", pageOf(admin.AuditEntry)) },
  }),
  adminRoute("GET", "/identity", "identityStatus", "Keys and tenants this node holds", "audit", {
    responses: { 200: json("The data plane as this node sees it", admin.IdentityStatus) },
  }),
  adminRoute("GET", "/nodes", "listNodes", "Every live node of the fleet", "fleet", {
    responses: { 200: json("The nodes discovery lists", listOf(admin.FleetNode)) },
  }),
  adminRoute("GET", "/dead-letters", "listDeadLetters", "Jobs given up for good, newest first", "fleet", {
    query: admin.DeadLetterQuery,
    responses: { 200: json("Dead letters", listOf(admin.DeadLetter)) },
  }),
  adminRoute("GET", "/events", "listEvents", "The event log, newest first", "operations", {
    query: admin.EventsQuery,
    responses: { 200: json("One page of events", pageOf(admin.OpsEvent)) },
  }),
  adminRoute("GET", "/metrics", "metricsOverview", "Every series now, against its baseline", "operations", {
    responses: { 200: json("Each series with its baseline, per node", admin.MetricsOverview) },
  }),
  adminRoute(
    "GET",
    "/metrics/:series",
    "metricHistory",
    "One series' points and baseline band",
    "operations",
    {
      params: z.object({ series: z.string().max(64) }),
      query: admin.SeriesQuery,
      responses: { 200: json("The points, oldest first", admin.SeriesHistory) },
    },
  ),
  adminRoute("GET", "/report", "supportReport", "The support report (audited)", "operations", {
    responses: { 200: { description: "The report as Markdown", content: { "text/markdown": "text" } } },
  }),
  adminRoute("GET", "/config", "nodeConfig", "The answering node's effective configuration", "operations", {
    responses: { 200: json("Configuration (secrets redacted) and versions", admin.NodeConfig) },
  }),
];

const ALERTS: Route[] = [
  adminRoute("GET", "/alerts", "listAlerts", "Alerts, newest first", "alerts", {
    query: admin.AlertQuery,
    responses: { 200: json("One page of alerts", pageOf(admin.Alert)) },
  }),
  adminRoute("GET", "/alerts/rules", "listAlertRules", "The built-in alert rules", "alerts", {
    responses: { 200: json("Every rule", listOf(admin.AlertRule)) },
  }),
  adminRoute("GET", "/alerts/:id", "getAlert", "Read an alert", "alerts", {
    params: id,
    responses: { 200: json("The alert", admin.Alert) },
  }),
  adminRoute("POST", "/alerts/:id/ack", "ackAlert", "Acknowledge an alert", "alerts", {
    params: id,
    body: admin.EmptyBody,
    responses: { 200: json("The acknowledged alert", admin.Alert) },
  }),
  adminRoute("GET", "/notification-channels", "listChannels", "Notification channels", "alerts", {
    responses: { 200: json("Every channel", pageOf(admin.ChannelView)) },
  }),
  adminRoute("POST", "/notification-channels", "createChannel", "Add a notification channel", "alerts", {
    body: admin.NewChannelBody,
    bodyRequired: true,
    responses: { 201: json("The new channel", admin.ChannelView) },
  }),
  adminRoute(
    "DELETE",
    "/notification-channels/:id",
    "deleteChannel",
    "Remove a notification channel",
    "alerts",
    {
      params: id,
      responses: { 200: json("The removed channel", admin.ChannelView) },
    },
  ),
  adminRoute(
    "POST",
    "/notification-channels/test",
    "testChannels",
    "Send a test notification everywhere",
    "alerts",
    {
      body: admin.EmptyBody,
      responses: { 200: json("How each delivery went", listOf(admin.DeliveryResult)) },
    },
  ),
  adminRoute("POST", "/notification-channels/:id/test", "testChannel", "Send a test notification", "alerts", {
    params: id,
    body: admin.EmptyBody,
    responses: { 200: json("How the delivery went", listOf(admin.DeliveryResult)) },
  }),
  adminRoute(
    "GET",
    "/notification-deliveries",
    "listDeliveries",
    "The delivery log, newest first",
    "alerts",
    {
      query: admin.DeliveryQuery,
      responses: { 200: json("One page of delivery attempts", pageOf(admin.Delivery)) },
    },
  ),
];

const USAGE_AND_FLAGS: Route[] = [
  adminRoute("GET", "/usage", "adminUsage", "Usage of every tenant, or one", "usage", {
    query: usage.AdminUsageQuery,
    responses: {
      200: {
        description: "The usage report (CSV with format=csv or Accept: text/csv)",
        content: { "application/json": usage.UsageReport, "text/csv": "text" },
      },
    },
  }),
  adminRoute("GET", "/usage/cost", "adminCost", "Cost estimate of a month", "usage", {
    query: usage.AdminCostQuery,
    responses: {
      200: json(
        "One tenant's estimate with `tenant`, else every tenant's with a total",
        z.union([usage.CostSummary, usage.CostEstimate]),
      ),
    },
  }),
  adminRoute("GET", "/flags", "listFlags", "Feature flags", "flags", {
    responses: { 200: json("Every flag, stored or built in", listOf(admin.FlagView)) },
  }),
  adminRoute("GET", "/flags/:name", "getFlag", "Read a flag, or evaluate it for a tenant", "flags", {
    params: admin.FlagParams,
    query: admin.FlagQuery,
    responses: {
      200: json(
        "The flag; with `tenant`, its value for that tenant",
        z.union([admin.FlagView, admin.FlagEvaluation]),
      ),
    },
  }),
  adminRoute("PUT", "/flags/:name", "configureFlag", "Change a flag's settings", "flags", {
    params: admin.FlagParams,
    body: admin.FlagSettingsBody,
    bodyRequired: true,
    responses: { 200: json("The flag as changed", admin.FlagView) },
  }),
  adminRoute("DELETE", "/flags/:name", "deleteFlag", "Return a flag to its built-in settings", "flags", {
    params: admin.FlagParams,
    responses: { 200: json("The flag as it now is", admin.FlagView) },
  }),
  adminRoute(
    "PUT",
    "/flags/:name/tenants/:tenantId",
    "setFlagTenant",
    "Override a flag for a tenant",
    "flags",
    {
      params: admin.FlagTenantParams,
      body: admin.FlagTenantBody,
      bodyRequired: true,
      responses: { 200: json("The flag with the override", admin.FlagView) },
    },
  ),
  adminRoute(
    "DELETE",
    "/flags/:name/tenants/:tenantId",
    "unsetFlagTenant",
    "Remove a tenant's override",
    "flags",
    {
      params: admin.FlagTenantParams,
      responses: { 200: json("The flag without the override", admin.FlagView) },
    },
  ),
];

const SESSION: Route[] = [
  {
    method: "POST",
    path: `${ADMIN_PREFIX}/session`,
    operationId: "signIn",
    summary: "Sign in to the console: exchange an admin key for a session cookie",
    tag: "console session",
    access: [],
    body: admin.SignInBody,
    bodyRequired: true,
    responses: { 201: json("The session (the cookie is in Set-Cookie)", admin.SessionView) },
  },
  {
    method: "GET",
    path: `${ADMIN_PREFIX}/session`,
    operationId: "getSession",
    summary: "The current console session and its CSRF token",
    tag: "console session",
    access: ["session"],
    responses: { 200: json("The session", admin.SessionView) },
  },
  {
    method: "DELETE",
    path: `${ADMIN_PREFIX}/session`,
    operationId: "signOut",
    summary: "Sign out of the console",
    tag: "console session",
    access: ["sessionWrite"],
    responses: { 204: { description: "Signed out; the cookie is cleared" } },
  },
];

const IMAGE_BODY = { "image/*": "binary", "application/octet-stream": "binary" } as const;

const PUBLIC: Route[] = [
  {
    method: "POST",
    path: `${PUBLIC_PREFIX}/resize`,
    operationId: "resize",
    summary: "Resize an image: the image as the raw body, or multipart/form-data with a field `image`",
    tag: "resize",
    access: ["apiKey"],
    query: pub.ResizeQuery,
    body: {
      media: {
        ...IMAGE_BODY,
        "multipart/form-data": z.object({ image: z.string().meta({ format: "binary" }) }),
      },
    },
    bodyRequired: true,
    responses: {
      200: { description: "The resized image", content: { "image/*": "binary" } },
      304: { description: "Not modified: the If-None-Match ETag still matches" },
    },
  },
  {
    method: "GET",
    path: `${PUBLIC_PREFIX}/formats`,
    operationId: "formats",
    summary: "Formats, options and limits for the caller",
    tag: "resize",
    access: ["apiKey"],
    responses: { 200: json("What this node accepts and produces", pub.Formats) },
  },
  {
    method: "GET",
    path: `${PUBLIC_PREFIX}/usage`,
    operationId: "tenantUsage",
    summary: "The caller's own usage (scope usage:read)",
    tag: "usage",
    access: ["apiKey"],
    query: usage.TenantUsageQuery,
    responses: { 200: json("The caller's usage report", usage.UsageReport) },
  },
  {
    method: "GET",
    path: `${PUBLIC_PREFIX}/usage/cost`,
    operationId: "tenantCost",
    summary: "The caller's cost estimate of a month (scope usage:read)",
    tag: "usage",
    access: ["apiKey"],
    query: usage.TenantCostQuery,
    responses: { 200: json("The caller's estimate", usage.CostEstimate) },
  },
];

const text = (description: string, media: string): Answer => ({ description, content: { [media]: "text" } });

const NODE: Route[] = [
  {
    method: "GET",
    path: "/healthz",
    operationId: "healthz",
    summary: "Liveness: the process answers",
    tag: "health",
    access: [],
    responses: { 200: json("Alive", pub.Health) },
  },
  {
    method: "GET",
    path: "/readyz",
    operationId: "readyz",
    summary: "Readiness: whether this node can take work now",
    tag: "health",
    access: [],
    responses: {
      200: json("Ready", pub.Readiness),
      503: json("Not ready, with the reasons", pub.Readiness),
    },
  },
  {
    method: "GET",
    path: "/metrics",
    operationId: "prometheusMetrics",
    summary: "Prometheus exposition",
    tag: "health",
    access: [],
    responses: { 200: text("Metrics in the Prometheus text format", "text/plain") },
  },
  {
    method: "GET",
    path: `${PROBLEMS_PREFIX}/:code`,
    operationId: "problemType",
    summary: "What a problem type means",
    tag: "problems",
    access: [],
    params: z.object({ code: z.string() }),
    responses: {
      200: {
        description: "The problem type's description",
        content: { "application/json": pub.ProblemTypeDoc, "text/html": "text" },
      },
    },
  },
  {
    method: "GET",
    path: OPENAPI_PATH,
    operationId: "openapi",
    summary: "This document",
    tag: "health",
    access: [],
    responses: {
      200: json("The OpenAPI 3.1 document", z.record(z.string(), z.unknown())),
      304: { description: "Not modified: the If-None-Match ETag still matches" },
    },
  },
  {
    method: "GET",
    path: CONSOLE_PATH,
    operationId: "console",
    summary: "The web console",
    tag: "console",
    access: [],
    responses: { 200: text("The console's page", "text/html") },
  },
  {
    method: "GET",
    path: `${CONSOLE_PATH}/*`,
    operationId: "consoleAsset",
    summary: "The console's assets, and its page for any route of the app",
    tag: "console",
    access: [],
    params: z.object({ path: z.string().meta({ description: "A file, or a route of the app" }) }),
    responses: { 200: { description: "A file of the console", content: { "*/*": "binary" } } },
  },
];

const INTERNAL: Route[] = [
  {
    method: "GET",
    path: `${INTERNAL_PREFIX}/staged/:key`,
    operationId: "internalStaged",
    summary: "Fleet data path: a worker fetches a staged upload from its API node",
    tag: "internal",
    access: ["cluster"],
    params: z.object({ key: z.string() }),
    responses: {
      200: { description: "The upload's bytes", content: { "application/octet-stream": "binary" } },
      404: { description: "Not staged here (any more)" },
    },
  },
  {
    method: "POST",
    path: `${INTERNAL_PREFIX}/results/:jobId`,
    operationId: "internalResult",
    summary: "Fleet data path: a worker posts a job's outcome back to its API node",
    tag: "internal",
    access: ["cluster"],
    params: z.object({ jobId: z.string() }),
    body: { media: { "*/*": "binary" } },
    bodyRequired: true,
    responses: {
      204: { description: "Settled" },
      400: { description: "Not an outcome" },
      410: { description: "Nobody waits for this job any more" },
    },
  },
];

export const ROUTES: readonly Route[] = [
  ...PUBLIC,
  ...TENANTS,
  ...KEYS,
  ...OPERATIONS,
  ...ALERTS,
  ...USAGE_AND_FLAGS,
  ...SESSION,
  ...NODE,
  ...INTERNAL,
];
