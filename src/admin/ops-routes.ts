import type { FastifyInstance } from "fastify";
import { EventsQuery, type OpsEvent } from "../contract/admin.js";
import type { Page } from "../contract/common.js";
import type { Ops } from "../ops/ops.js";
import { page } from "./admin-context.js";
import { alertRoutes } from "./alert-routes.js";
import { metricsRoutes } from "./metrics-routes.js";
import { parseInput } from "./validation.js";

/** Operations under /admin/v1: the event log (and, as they land, history, alerts and notifications). */
export function opsRoutes(app: FastifyInstance, ops: Ops): void {
  app.get<{ Reply: Page<OpsEvent> }>("/events", async (request) => {
    const q = parseInput(EventsQuery, request.query, "query");
    return page(await ops.events.list(q), q.limit);
  });
  alertRoutes(app, ops.alerts, ops.events);
  metricsRoutes(app, ops.history);
}
