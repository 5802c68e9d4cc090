import { type Config, ROLES, type Role, resolveRoles } from "./schema.js";

/**
 * The one table of what each role runs. A node runs the parts of its roles
 * (embedded = `all` = every role) and nothing else; every subsystem asks for
 * its part by these names, and the start-up log, `/readyz` and the leases of
 * the control singletons use them too. Parts every node runs (the database,
 * the admin side of identity, the event log, flags, health and metrics) are
 * not listed.
 */
export const ROLE_PARTS = {
  /** Serves clients: `/v1`, `/admin/v1` and the console, from memory-loaded keys, metering each request. */
  api: ["public-api", "api-keys", "metering", "console-sessions"],
  /** Resizes: the worker processes that pull jobs from the queue. */
  worker: ["worker-pool"],
  /** The fleet's singletons, each run by one control node at a time under a lease of the same name. */
  control: ["outbox-publisher", "usage-aggregator", "metrics-sampler", "alert-evaluator"],
} as const satisfies Record<Role, readonly string[]>;

export type Part = (typeof ROLE_PARTS)[Role][number];

/** The parts a node with these roles runs, in the table's order. */
export function partsOf(roles: ReadonlySet<Role>): ReadonlySet<Part> {
  return new Set(
    ROLES.filter((role) => roles.has(role)).flatMap((role): readonly Part[] => ROLE_PARTS[role]),
  );
}

/** The parts the configured roles run. */
export function configuredParts(config: Readonly<Config>): ReadonlySet<Part> {
  return partsOf(resolveRoles(config));
}
