import type { FastifyInstance } from "fastify";

export interface Readiness {
  ready: boolean;
  reasons: string[];
  [detail: string]: unknown;
}

/**
 * `/healthz`: the process answers (restart it if not). `/readyz`: it can take
 * work now (route traffic elsewhere if not: draining, workers down, saturated).
 */
export function healthRoutes(app: FastifyInstance, readiness: () => Readiness) {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const state = readiness();
    return reply
      .code(state.ready ? 200 : 503)
      .send({ status: state.ready ? "ready" : "not-ready", ...state });
  });
}
