import type { FastifyInstance } from "fastify";
import { type MetricsOverview, type SeriesHistory, SeriesQuery } from "../contract/admin.js";
import { ProblemError } from "../errors/problem.js";
import type { HistoryStore } from "../ops/history-store.js";
import { summariseAll } from "../ops/metric-summary.js";
import { isSeriesName, SERIES, SERIES_NAMES } from "../ops/series.js";
import { parseInput } from "./validation.js";

const HOUR_MS = 3_600_000;

/**
 * Metric history under /admin/v1: `GET /metrics` (every series now, with its
 * baseline, per node, and a sentence), `GET /metrics/:series` (points and
 * the baseline band). Served by every node: the history is in the database.
 */
export function metricsRoutes(app: FastifyInstance, history: HistoryStore): void {
  app.get(
    "/metrics",
    async (): Promise<MetricsOverview> => ({
      sampleIntervalMs: history.settings.sampleIntervalMs,
      items: await summariseAll(history, Date.now()),
    }),
  );

  app.get<{ Params: { series: string } }>("/metrics/:series", async (request): Promise<SeriesHistory> => {
    const name = request.params.series;
    if (!isSeriesName(name)) {
      throw new ProblemError("not-found", `no series '${name}'; the series are ${SERIES_NAMES.join(", ")}`, {
        extras: { series: SERIES_NAMES },
      });
    }
    const q = parseInput(SeriesQuery, request.query, "query");
    const until = q.until ?? Date.now();
    const since = q.since ?? until - HOUR_MS;
    if (since >= until) {
      throw new ProblemError("invalid-body", "the query is not valid: since: must be before until", {
        extras: { errors: ["since: must be before until"] },
      });
    }
    const [points, baseline] = await Promise.all([
      history.points(name, { node: q.node, since, until }),
      history.baseline(name, { node: q.node, at: until }),
    ]);
    const { unit, title, label } = SERIES[name];
    return {
      name,
      unit,
      title,
      label,
      node: q.node ?? null,
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      baseline,
      band: baseline ? { low: baseline.mean - baseline.stddev, high: baseline.mean + baseline.stddev } : null,
      points: points.map(({ node: _node, at, ...rest }) => ({ at: new Date(at).toISOString(), ...rest })),
    };
  });
}
