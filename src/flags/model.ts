import { createHash } from "node:crypto";
import { z } from "zod";
import { FLAG_NAME } from "../contract/vocabulary.js";

/**
 * A feature flag as stored in the flags bucket (one KV value per flag) and
 * shown by the admin API. `percentage` rolls a flag out to a stable share of
 * tenants; `tenants` overrides it for named tenants, either way.
 */
export interface Flag {
  name: string;
  description: string;
  /** The value for a tenant with no override outside the rollout, and for anonymous requests. */
  default: boolean;
  /** 0-100, to 0.01: the share of tenants (chosen by a stable hash) that get `true`. */
  percentage: number;
  /** Tenant id → value; wins over the percentage and the default. */
  tenants: Record<string, boolean>;
  /** ISO 8601; null for a flag never changed (its built-in settings). */
  updatedAt: string | null;
  /** The admin key id that made the last change; null for built-in settings. */
  updatedBy: string | null;
}

/** Kebab-case, at most 64 characters: safe in a KV key, a URL path and a shell. */
export { FLAG_NAME };

export function isFlagName(value: string): boolean {
  return FLAG_NAME.test(value);
}

/**
 * Buckets of a percentage rollout: 10 000, so a rollout moves in steps of
 * 0.01 % (one tenant in ten thousand).
 */
export const ROLLOUT_BUCKETS = 10_000;

/**
 * Overrides one flag may hold. A tenant id and its value take ~40 bytes of
 * JSON, so 5000 is ~200 KB, inside the bucket's 256 KiB value bound (and
 * every node parses the whole value on each change). Beyond it, roll out by
 * percentage instead.
 */
export const MAX_TENANT_OVERRIDES = 5000;

/** What a node reads from the bucket: checked, because another version of imgfleet may have written it. */
export const StoredFlag = z.object({
  name: z.string().regex(FLAG_NAME),
  description: z.string().max(500),
  default: z.boolean(),
  percentage: z.number().min(0).max(100),
  tenants: z.record(z.string(), z.boolean()),
  updatedAt: z.string().nullable(),
  updatedBy: z.string().nullable(),
});

/** Why a tenant got its value, for the admin API and for people debugging a rollout. */
export type FlagReason = "tenant" | "percentage" | "default";

export interface FlagEvaluation {
  value: boolean;
  reason: FlagReason;
}

/**
 * The rollout bucket (0-9999) of a tenant for a flag: the first 32 bits of
 * SHA-256(name, NUL, tenant id), modulo 10 000. Stable across nodes,
 * restarts and versions; independent between flags (a tenant early in one
 * rollout is not early in every rollout), and raising the percentage only
 * adds tenants, never swaps them.
 */
export function rolloutBucket(flagName: string, tenantId: string): number {
  const digest = createHash("sha256").update(`${flagName}\0${tenantId}`).digest();
  return digest.readUInt32BE(0) % ROLLOUT_BUCKETS;
}

/**
 * The one evaluation rule, run from memory on every node:
 * a tenant override if there is one; else `true` when the tenant's bucket
 * falls inside the percentage; else the default. Without a tenant
 * (anonymous requests in `auth.mode: none`) the default.
 */
export function evaluateFlag(flag: Flag, tenantId: string | null): FlagEvaluation {
  if (tenantId === null) return { value: flag.default, reason: "default" };
  const override = flag.tenants[tenantId];
  if (override !== undefined) return { value: override, reason: "tenant" };
  if (rolloutBucket(flag.name, tenantId) < Math.round(flag.percentage * 100)) {
    return { value: true, reason: "percentage" };
  }
  return { value: flag.default, reason: "default" };
}
