import { headerSeconds } from "../errors/problem.js";
import type { TenantRecord } from "./model.js";

interface Bucket {
  tokens: number;
  refilledAt: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until one request is allowed again (when refused). */
  retryAfterS: number;
  /** The IETF RateLimit-* fields for the answer, allowed or not. */
  headers: Record<string, string>;
}

/**
 * Per-tenant token buckets and in-flight counters on one API node. A tenant's
 * limit is shared across the fleet by `share()` (1 embedded; 1/N with N live
 * API nodes), so coordination happens per configuration change, never per
 * request. Memory is bounded by the number of tenants in the data plane.
 */
export class TenantLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #inFlight = new Map<string, number>();

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly share: () => number = () => 1,
  ) {}

  take(tenant: TenantRecord): RateDecision {
    const share = this.share();
    const rate = tenant.ratePerSecond * share;
    const burst = Math.max(1, Math.floor(tenant.burst * share));
    const bucket = this.#refill(tenant.id, rate, burst);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    const retryAfterS = allowed ? 0 : headerSeconds((1 - bucket.tokens) / rate);
    return {
      allowed,
      retryAfterS,
      headers: {
        "ratelimit-policy": `${burst};w=${headerSeconds(burst / rate)}`,
        "ratelimit-limit": String(burst),
        "ratelimit-remaining": String(Math.floor(bucket.tokens)),
        "ratelimit-reset": String(headerSeconds((burst - bucket.tokens) / rate, 0)),
      },
    };
  }

  /** Counts a request in progress; false when the tenant is at its in-flight limit. */
  enter(tenant: TenantRecord): boolean {
    const limit = Math.max(1, Math.floor(tenant.maxInFlight * this.share()));
    const current = this.#inFlight.get(tenant.id) ?? 0;
    if (current >= limit) return false;
    this.#inFlight.set(tenant.id, current + 1);
    return true;
  }

  leave(tenantId: string): void {
    const current = this.#inFlight.get(tenantId) ?? 0;
    if (current <= 1) this.#inFlight.delete(tenantId);
    else this.#inFlight.set(tenantId, current - 1);
  }

  inFlight(tenantId: string): number {
    return this.#inFlight.get(tenantId) ?? 0;
  }

  /** Drops state of tenants that no longer exist (deleted from the data plane). */
  forget(tenantId: string): void {
    this.#buckets.delete(tenantId);
  }

  #refill(id: string, rate: number, burst: number): Bucket {
    const now = this.now();
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = { tokens: burst, refilledAt: now };
      this.#buckets.set(id, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.refilledAt) / 1000) * rate);
    bucket.refilledAt = now;
    return bucket;
  }
}
