/**
 * The words the APIs share with the server's model: the server's modules
 * re-export these, so a new scope or format is added in one place and the
 * validation, the OpenAPI document, the CLI and the console all see it.
 */

/** Scopes a tenant's API key may hold. */
export const TENANT_SCOPES = ["resize", "jobs", "usage:read"] as const;
export type TenantScope = (typeof TENANT_SCOPES)[number];

/** Admin keys carry only this scope and are valid only on the admin API. */
export const ADMIN_SCOPE = "admin";

export const TENANT_STATUSES = ["active", "suspended", "deleted"] as const;

/**
 * The slowest rate limit a tenant may have: one request in about 17 minutes.
 * Slower makes no sense (suspend the tenant instead), and a rate near zero
 * would put absurd waits in Retry-After.
 */
export const MIN_RATE_PER_SECOND = 0.001;
export const MIN_RATE_RULE = `must be at least ${MIN_RATE_PER_SECOND} requests/s (one request in about 17 minutes); to stop a tenant, suspend it`;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

/** Formats a node can write. */
export const OUTPUT_FORMATS = ["jpeg", "png", "webp", "avif", "gif"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A feature flag's name: kebab-case, at most 64 characters. */
export const FLAG_NAME = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** Periods a usage report sums over. */
export const GRANULARITIES = ["hour", "day"] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** How a metered request ended. */
export const OUTCOMES = ["ok", "client_error", "server_error"] as const;
export type Outcome = (typeof OUTCOMES)[number];
