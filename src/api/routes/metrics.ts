import type { FastifyInstance } from "fastify";
import type { Metrics } from "../../metrics/metrics.js";

/** Prometheus exposition; gauges are refreshed from live state at scrape time. */
export function metricsRoute(app: FastifyInstance, metrics: Metrics, refresh: () => void) {
  app.get("/metrics", async (_request, reply) => {
    refresh();
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
