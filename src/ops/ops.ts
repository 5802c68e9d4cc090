import type { Logger } from "pino";
import type { Part } from "../config/roles.js";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import type { Discovery } from "../fleet/discovery.js";
import type { Singletons } from "../fleet/singletons.js";
import type { KeyValue } from "../kv/key-value.js";
import type { Metrics } from "../metrics/metrics.js";
import { type Alerting, startAlerting } from "./alerts/alerting.js";
import type { EventLog } from "./events.js";
import { HistoryStore } from "./history-store.js";
import { Sampler } from "./sampler.js";
import { SelfHealingReport } from "./self-healing.js";

export interface OpsDeps {
  config: Readonly<Config>;
  db: Database;
  nodeId: string;
  discovery: Discovery;
  singletons: Singletons;
  metrics: Metrics;
  logger: Logger;
  /** The node's parts: `metrics-sampler` and `alert-evaluator` run here (as singletons, under leases of those names). */
  parts: ReadonlySet<Part>;
  /** The control singletons' leases, which the lease-missing rule reads. */
  leasesKv: KeyValue;
  /** The node's event log, made before anything else starts. */
  events: EventLog;
}

/**
 * Operating imgfleet without an expert: the event log on every node; on the
 * control role, metric history with baselines, alert rules and notifications.
 */
export interface Ops {
  events: EventLog;
  /** Metric history and baselines (readable on every node: it is in the database). */
  history: HistoryStore;
  /** The sampler on control nodes with ops.sampling (it samples only while this node holds its lease); else null. */
  sampler: Sampler | null;
  /** Alerts, notification channels and the delivery log; the engine on the evaluating control node. */
  alerts: Alerting;
  /** What this node did by itself (jobs dropped, spool segments swept), as events once a minute. */
  selfHealing: SelfHealingReport;
  stop(): Promise<void>;
}

export async function startOps(deps: OpsDeps): Promise<Ops> {
  const { events } = deps;
  const history = new HistoryStore(deps.db, deps.config.ops);
  const sampling = await startSampling(deps, history);
  const selfHealing = new SelfHealingReport(deps.metrics, events);
  await selfHealing.start();
  const alerts = await startAlerting({
    ...deps,
    history,
    sampler: sampling?.sampler ?? null,
    events,
    evaluate: deps.parts.has("alert-evaluator") && deps.config.ops.sampling,
  });
  return {
    events,
    history,
    sampler: sampling?.sampler ?? null,
    alerts,
    selfHealing,
    async stop() {
      await alerts.stop();
      await sampling?.stop();
      await selfHealing.stop();
    },
  };
}

/** The metrics-sampler singleton: one control node of the fleet samples every node. */
async function startSampling(deps: OpsDeps, history: HistoryStore) {
  if (!deps.parts.has("metrics-sampler") || !deps.config.ops.sampling) return null;
  const sampler = new Sampler({
    nodes: () => deps.discovery.list(),
    history,
    settings: deps.config.ops,
    logger: deps.logger,
  });
  const lease = deps.singletons.create("metrics-sampler");
  await lease.run({ start: () => sampler.start(), stop: () => sampler.stop() });
  return {
    sampler,
    async stop() {
      await lease.stop();
      await sampler.stop();
    },
  };
}
