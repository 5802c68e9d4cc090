import type { FastifyInstance } from "fastify";
import type { Metrics } from "../metrics/metrics.js";
import { roundMs } from "../util/time.js";
import type { RequestFacts } from "./request-context.js";

/**
 * One log line per request, with its latency breakdown: 5xx at error, 4xx at
 * info, like everything else. The request id ties it to the client's view.
 */
/** Probes and scrapes arrive every few seconds; at info they would drown the requests that matter. */
const QUIET_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

export function installRequestLog(app: FastifyInstance, metrics: Metrics): void {
  // Fastify wants decorators declared up front; each request gets its own object in onRequest.
  app.decorateReply("imgfleet", null as unknown as RequestFacts);
  app.addHook("onRequest", async (_request, reply) => {
    reply.imgfleet = {};
    metrics.inFlight.inc();
  });
  app.addHook("onResponse", async (request, reply) => {
    metrics.inFlight.dec();
    const route = request.routeOptions.url ?? "unmatched";
    const status = reply.statusCode;
    const totalMs = reply.elapsedTime;
    metrics.httpDuration.observe({ route, method: request.method, status: String(status) }, totalMs / 1000);
    const facts = reply.imgfleet;
    const line = {
      method: request.method,
      route,
      status,
      ms: roundMs(totalMs),
      ...facts,
      ...(facts.timings ? { timings: mapValues(facts.timings, roundMs) } : {}),
      remote: request.ip,
    };
    const msg = `${request.method} ${request.url.split("?")[0]} ${status} ${roundMs(totalMs)} ms`;
    if (status >= 500) request.log.error(line, msg);
    else if (QUIET_ROUTES.has(route)) request.log.debug(line, msg);
    else request.log.info(line, msg);
  });
}

function mapValues(o: Record<string, number>, f: (v: number) => number): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}
