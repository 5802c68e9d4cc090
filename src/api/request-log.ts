import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Metrics } from "../metrics/metrics.js";
import { roundMs } from "../util/time.js";
import type { RequestFacts } from "./request-context.js";
import { type EndedRequest, installRequestLife } from "./request-life.js";

/**
 * Refusals whose cause is logged on its own, once per interval with a count (a full disk): their
 * request lines are warnings, or a full disk writes thousands of error lines that all say the same.
 */
const CAUSE_LOGGED_ELSEWHERE = new Set<string>(["storage-full", "metering-unavailable"]);

/** Probes and scrapes arrive every few seconds; at info they would drown the requests that matter. */
const QUIET_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

/** What the message says after the status when the answer was not simply written. */
const END_NOTES: Record<EndedRequest["end"], string> = {
  answered: "",
  "client-closed": " (client closed the connection)",
  "server-closed": " (closed by this node while draining)",
  timeout: " (request timeout)",
};

/**
 * One log line per request, with its latency breakdown, written when the
 * request's life ends (request-life.ts) — however it ends, a client that
 * left included: 5xx at error, 4xx at info, like everything else. The
 * request id ties it to the client's view. The in-flight gauge is counted
 * at the same two points, so it cannot drift.
 */
export function installRequestLog(app: FastifyInstance, metrics: Metrics): void {
  // Fastify wants decorators declared up front; each request gets its own object when its life starts.
  app.decorateReply("imgfleet", null as unknown as RequestFacts);
  installRequestLife(app, {
    started(_request, reply) {
      reply.imgfleet = {};
      metrics.inFlight.inc();
    },
    ended(request, reply, ended) {
      metrics.inFlight.dec();
      logLine(request, reply, ended, metrics);
    },
  });
}

function logLine(request: FastifyRequest, reply: FastifyReply, ended: EndedRequest, metrics: Metrics): void {
  const route = request.routeOptions.url ?? "unmatched";
  const { status, totalMs, end } = ended;
  metrics.httpDuration.observe({ route, method: request.method, status: String(status) }, totalMs / 1000);
  const facts = reply.imgfleet;
  const line = {
    method: request.method,
    route,
    status,
    end,
    ms: roundMs(totalMs),
    ...facts,
    ...(facts.timings ? { timings: mapValues(facts.timings, roundMs) } : {}),
    // An image made for a client that left was never sent.
    ...(ended.answered ? {} : { outBytes: 0 }),
    remote: request.ip,
  };
  const msg = `${request.method} ${request.url.split("?")[0]} ${status} ${roundMs(totalMs)} ms${END_NOTES[end]}`;
  // A probe's 503 is the node saying "not ready", logged once per change (app/readiness.ts), not per probe.
  if (QUIET_ROUTES.has(route) && (status < 500 || route === "/readyz")) request.log.debug(line, msg);
  else if (status >= 500 && !CAUSE_LOGGED_ELSEWHERE.has(facts.problem ?? "")) request.log.error(line, msg);
  else if (status >= 500) request.log.warn(line, msg);
  else request.log.info(line, msg);
}

function mapValues(o: Record<string, number>, f: (v: number) => number): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}
