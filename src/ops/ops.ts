import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import type { Discovery } from "../fleet/discovery.js";
import type { Singletons } from "../fleet/singletons.js";
import type { Metrics } from "../metrics/metrics.js";
import { EventLog } from "./events.js";

export interface OpsDeps {
  config: Readonly<Config>;
  db: Database;
  nodeId: string;
  discovery: Discovery;
  singletons: Singletons;
  metrics: Metrics;
  logger: Logger;
  /** Control role: run the sampler and the alert evaluator (as singletons). */
  control: boolean;
}

/**
 * Operating imgfleet without an expert: the event log on every node; on the
 * control role, metric history with baselines, alert rules and notifications.
 */
export interface Ops {
  events: EventLog;
  stop(): Promise<void>;
}

export async function startOps(deps: OpsDeps): Promise<Ops> {
  const events = new EventLog(deps.db, deps.nodeId, (error) =>
    deps.logger.warn({ err: error }, "could not record an operations event (database unavailable?)"),
  );
  return {
    events,
    async stop() {},
  };
}
