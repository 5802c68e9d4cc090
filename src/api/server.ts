import multipart from "@fastify/multipart";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Logger } from "pino";
import { adminApi } from "../admin/admin-api.js";
import type { Part } from "../config/roles.js";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { ProblemError } from "../errors/problem.js";
import type { Flags } from "../flags/flags.js";
import type { LiveNode } from "../fleet/discovery.js";
import type { Identity } from "../identity/identity.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Ops } from "../ops/ops.js";
import type { ReportSources } from "../report/sources.js";
import type { ResizeService } from "../resize/resize-service.js";
import type { ConsoleSessions } from "../session/sessions.js";
import type { UsageMeter } from "../usage/meter.js";
import { clientErrorHandler, slowClientServerOptions } from "./client-errors.js";
import { type InternalDeps, internalRoutes } from "./internal/data-path-routes.js";
import { installProblemHandlers, sendProblem } from "./problem-handler.js";
import { installRequestLog } from "./request-log.js";
import { consoleRoutes } from "./routes/console.js";
import { formatsRoute } from "./routes/formats.js";
import { healthRoutes, type Readiness } from "./routes/health.js";
import { metricsRoute } from "./routes/metrics.js";
import { openApiRoute, recordRoutes } from "./routes/openapi.js";
import { problemsRoute } from "./routes/problems.js";
import { resizeRoutes } from "./routes/resize.js";
import { usageRoutes } from "./routes/usage.js";

export interface ApiDeps {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  service: ResizeService;
  readiness: () => Readiness;
  refreshGauges: () => void;
  isDraining: () => boolean;
  identity: Identity;
  /** Null when usage metering is off. */
  meter: UsageMeter | null;
  /** The node's parts: with `public-api`, serve /v1, /admin/v1 and the console; else only health, metrics and problem types. */
  parts: ReadonlySet<Part>;
  /** Fleet API nodes: the internal data path for workers on other nodes. */
  internal: InternalDeps | null;
  /** The fleet as discovery sees it, for GET /admin/v1/nodes. */
  nodes: () => Promise<LiveNode[]>;
  ops: Ops;
  outboxBacklog: () => Promise<number>;
  /** The management database: usage reports read its rollups. */
  db: Database;
  /** Feature flags, for /admin/v1/flags. */
  flags: Flags;
  nodeId: string;
  /** What the support report (GET /admin/v1/report) reads. */
  report: ReportSources;
  /** Web console sessions (API role); the console itself is served at /console. */
  sessions?: ConsoleSessions;
}

const REQUEST_ID = /^[\w.:@-]{1,128}$/;

/** The HTTP API of one node. Routes are thin: the resize path lives in ResizeService. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, metrics } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Our own one-line-per-request log replaces fastify's two lines (request-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // Draining is ours: problem+json with Connection: close (see below).
    return503OnClosing: false,
    requestIdHeader: false,
    // An empty list trusts no one: request.ip is the peer's address.
    trustProxy: config.server.trustProxy.length > 0 ? [...config.server.trustProxy] : false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    },
    // Slow-loris bounds: headers within server.headersTimeoutMs, the whole request as a backstop to the upload guard.
    ...slowClientServerOptions(config),
    clientErrorHandler: clientErrorHandler(metrics),
    keepAliveTimeout: 10_000,
  });
  recordRoutes(app);
  installRequestLog(app, metrics);
  installProblemHandlers(app, metrics, config.limits.maxInputBytes);
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    if (deps.isDraining() && request.url !== "/healthz") {
      reply.header("connection", "close");
      reply.imgfleet.problem = "shutting-down";
      return sendProblem(
        reply,
        new ProblemError("shutting-down", "this node is shutting down; retry on another node", {
          retryAfterS: 1,
        }),
      );
    }
  });
  // Responses finishing while we drain close their connection, so keep-alive clients cannot hold the exit.
  app.addHook("onSend", async (_request, reply) => {
    if (deps.isDraining()) reply.header("connection", "close");
  });
  if (deps.parts.has("public-api")) await publicRoutes(app, deps);
  if (deps.internal) {
    const internal = deps.internal;
    await app.register(async (scope) => internalRoutes(scope, internal));
  }
  healthRoutes(app, deps.readiness);
  metricsRoute(app, metrics, deps.refreshGauges);
  problemsRoute(app);
  openApiRoute(app);
  return app;
}

/** What an API node serves to clients and operators: /v1 and /admin/v1. */
async function publicRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { config, metrics } = deps;
  await app.register(multipart, { limits: { fileSize: config.limits.maxInputBytes } });
  const authenticator = deps.identity.tenantAccess;
  // Encapsulated: the raw image body parser it adds applies to /v1/resize only, not the admin API's JSON.
  await app.register(async (scope) =>
    resizeRoutes(scope, {
      service: deps.service,
      metrics,
      authenticator,
      maxInputBytes: config.limits.maxInputBytes,
      meter: deps.meter,
      anonymous: config.auth.mode === "none",
      uploads: config.uploads,
    }),
  );
  formatsRoute(app, config, authenticator);
  usageRoutes(app, { db: deps.db, prices: config.usage.prices, authenticator });
  await adminApi(app, {
    identity: deps.identity,
    config,
    outboxBacklog: deps.outboxBacklog,
    db: deps.db,
    nodes: deps.nodes,
    ops: deps.ops,
    flags: deps.flags,
    nodeId: deps.nodeId,
    report: deps.report,
    sessions: deps.sessions,
  });
  consoleRoutes(app);
}
