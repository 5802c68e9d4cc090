import type { Logger } from "pino";
import { VERSION } from "../../app/version.js";
import type { Config } from "../../config/schema.js";
import type { Database } from "../../db/database.js";
import type { Discovery } from "../../fleet/discovery.js";
import { leaseHolder as readLeaseHolder } from "../../fleet/lease.js";
import type { Singletons } from "../../fleet/singletons.js";
import type { KeyValue } from "../../kv/key-value.js";
import type { EventLog } from "../events.js";
import type { HistoryStore } from "../history-store.js";
import { ChannelStore } from "../notify/channels.js";
import { DeliveryLog } from "../notify/deliveries.js";
import { Notifier } from "../notify/notifier.js";
import type { Sampler } from "../sampler.js";
import { AlertStore } from "./alert-store.js";
import { AlertEngine, type FleetFacts } from "./engine.js";
import { AlertEvaluator } from "./evaluator.js";
import { BUILTIN_RULES } from "./rules.js";

export interface AlertingDeps {
  config: Readonly<Config>;
  db: Database;
  nodeId: string;
  discovery: Discovery;
  singletons: Singletons;
  leasesKv: KeyValue;
  history: HistoryStore;
  sampler: Sampler | null;
  events: EventLog;
  logger: Logger;
  /** Control role with ops.sampling: evaluate (as the alert-evaluator singleton). */
  evaluate: boolean;
}

/** Alerts, channels and deliveries on every node (they are in the database); the engine only where it evaluates. */
export interface Alerting {
  store: AlertStore;
  channels: ChannelStore;
  deliveries: DeliveryLog;
  notifier: Notifier;
  /** Null on nodes that do not evaluate. */
  engine: AlertEngine | null;
  stop(): Promise<void>;
}

export async function startAlerting(deps: AlertingDeps): Promise<Alerting> {
  const { config, db, logger, events } = deps;
  const store = new AlertStore(db);
  const channels = new ChannelStore(db, config.ops.webhooks);
  const deliveries = new DeliveryLog(db);
  const notifier = new Notifier({
    channels,
    log: deliveries,
    events,
    attempts: config.ops.notifyAttempts,
    fleet: { node: deps.nodeId, version: VERSION },
    logger,
  });
  if (!deps.evaluate) {
    return { store, channels, deliveries, notifier, engine: null, stop: () => notifier.stop() };
  }
  const engine = new AlertEngine({
    store,
    rules: BUILTIN_RULES,
    history: deps.history,
    fleet: fleetFacts(deps),
    settings: config.ops.alerts,
    sampleIntervalMs: config.ops.sampleIntervalMs,
    spoolMaxBytes: config.usage.spool.maxBytes,
    events,
    notify: (type, alert) => notifier.notify(type, alert),
    logger,
  });
  const evaluator = new AlertEvaluator({
    lease: deps.singletons.create("alert-evaluator"),
    engine,
    intervalMs: config.ops.sampleIntervalMs,
    logger,
  });
  await evaluator.start();
  return {
    store,
    channels,
    deliveries,
    notifier,
    engine,
    async stop() {
      await evaluator.stop();
      await notifier.stop();
    },
  };
}

function fleetFacts(deps: AlertingDeps): FleetFacts {
  const ttlMs = deps.config.fleet.leaseTtlMs;
  return {
    nodes: async () => (await deps.discovery.list()).map((n) => n.id),
    lastScrape: () => deps.sampler?.lastScrape() ?? new Map(),
    async leaseHolder(name) {
      const entry = await deps.leasesKv.entry(`lease.${name}`);
      if (!entry || Date.now() - entry.updatedAt > ttlMs) return null;
      return readLeaseHolder(entry.key, entry.value);
    },
  };
}
