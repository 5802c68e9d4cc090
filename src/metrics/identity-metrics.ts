import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Propagation is usually milliseconds in one process and around a second across a fleet. */
const PROPAGATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export function createIdentityMetrics(registry: Registry) {
  const r = { registers: [registry] };
  return {
    propagation: new Histogram({
      ...r,
      name: "imgfleet_identity_propagation_seconds",
      help: "Time from an identity change committing in the database to this node's data plane seeing it",
      buckets: PROPAGATION_BUCKETS,
    }),
    cachedKeys: new Gauge({ ...r, name: "imgfleet_identity_keys", help: "API keys held by the data plane" }),
    cachedTenants: new Gauge({
      ...r,
      name: "imgfleet_identity_tenants",
      help: "Tenants held by the data plane",
    }),
    outboxBacklog: new Gauge({
      ...r,
      name: "imgfleet_identity_outbox_backlog",
      help: "Identity changes committed but not yet published to the data plane",
    }),
    published: new Counter({
      ...r,
      name: "imgfleet_identity_published_total",
      help: "Identity records published from the outbox to the KeyValue bucket",
    }),
    authThrottled: new Counter({
      ...r,
      name: "imgfleet_auth_throttled_total",
      help: "Failed authentication attempts refused with 429 because their client address or key id was in backoff (surface: api, admin, sign-in; by: address, key)",
      labelNames: ["surface", "by"] as const,
    }),
    publishErrors: new Counter({
      ...r,
      name: "imgfleet_identity_publish_errors_total",
      help: "Failed attempts to publish the outbox (database or KeyValue unavailable); retried",
    }),
  };
}

export type IdentityMetrics = ReturnType<typeof createIdentityMetrics>;
