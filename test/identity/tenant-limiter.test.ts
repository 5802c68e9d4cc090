import { describe, expect, it } from "vitest";
import { parseInput } from "../../src/admin/validation.js";
import { loadConfig } from "../../src/config/load.js";
import { NewTenantBody, TenantPatchBody } from "../../src/contract/admin.js";
import { MAX_WAIT_S, ProblemError } from "../../src/errors/problem.js";
import type { TenantRecord } from "../../src/identity/model.js";
import { TenantLimiter } from "../../src/identity/tenant-limiter.js";

function tenant(overrides: Partial<TenantRecord> = {}): TenantRecord {
  return {
    id: "ten_a",
    status: "active",
    ratePerSecond: 2,
    burst: 4,
    maxInFlight: 2,
    maxInputBytes: null,
    outputFormats: null,
    ...overrides,
  };
}

function clock() {
  let now = 0;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("tenant rate limit (token bucket)", () => {
  it("allows a burst, then refuses with the time until the next token", () => {
    const c = clock();
    const limiter = new TenantLimiter(c.now);
    const t = tenant();
    const remaining = Array.from({ length: 4 }, () => limiter.take(t)).map((d) => {
      expect(d.allowed).toBe(true);
      return d.headers["ratelimit-remaining"];
    });
    expect(remaining).toEqual(["3", "2", "1", "0"]);
    const refused = limiter.take(t);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterS).toBe(1);
    expect(refused.headers).toMatchObject({ "ratelimit-limit": "4", "ratelimit-remaining": "0" });
    expect(refused.headers["ratelimit-policy"]).toBe("4;w=2");
  });

  it("refills at the tenant's rate, never above its burst", () => {
    const c = clock();
    const limiter = new TenantLimiter(c.now);
    const t = tenant();
    for (let i = 0; i < 4; i++) limiter.take(t);
    c.advance(500); // 2/s → one token
    expect(limiter.take(t).allowed).toBe(true);
    expect(limiter.take(t).allowed).toBe(false);
    c.advance(60_000);
    expect(limiter.take(t).headers["ratelimit-remaining"]).toBe("3");
  });

  it("keeps tenants apart", () => {
    const limiter = new TenantLimiter(clock().now);
    for (let i = 0; i < 4; i++) limiter.take(tenant());
    expect(limiter.take(tenant()).allowed).toBe(false);
    expect(limiter.take(tenant({ id: "ten_b" })).allowed).toBe(true);
  });

  it("takes a new limit at once when the tenant's record changes", () => {
    const limiter = new TenantLimiter(clock().now);
    for (let i = 0; i < 4; i++) limiter.take(tenant());
    expect(limiter.take(tenant({ burst: 10 })).allowed).toBe(false);
    expect(limiter.take(tenant({ burst: 10 })).headers["ratelimit-limit"]).toBe("10");
  });

  it("enforces this node's share of the limit in a fleet", () => {
    const limiter = new TenantLimiter(clock().now, () => 0.5);
    const t = tenant({ burst: 4 });
    expect(limiter.take(t).headers["ratelimit-limit"]).toBe("2");
    expect(limiter.take(t).allowed).toBe(true);
    expect(limiter.take(t).allowed).toBe(false);
  });
});

describe("tenant in-flight limit", () => {
  it("counts requests in progress and frees a slot when one ends", () => {
    const limiter = new TenantLimiter(clock().now);
    const t = tenant({ maxInFlight: 2 });
    expect(limiter.enter(t)).toBe(true);
    expect(limiter.enter(t)).toBe(true);
    expect(limiter.enter(t)).toBe(false);
    expect(limiter.enter(tenant({ id: "ten_b" }))).toBe(true);
    limiter.leave(t.id);
    expect(limiter.inFlight(t.id)).toBe(1);
    expect(limiter.enter(t)).toBe(true);
  });
});

describe("limits that make no sense", () => {
  it("never names a wait longer than a day, nor one in exponent notation, even for a tenant stored with a tiny rate", () => {
    const c = clock();
    const limiter = new TenantLimiter(c.now);
    const slow = tenant({ ratePerSecond: 1e-300, burst: 1 });
    expect(limiter.take(slow).allowed).toBe(true);
    const refused = limiter.take(slow);
    expect(refused).toMatchObject({ allowed: false, retryAfterS: MAX_WAIT_S });
    for (const value of Object.values(refused.headers)) expect(value).toMatch(/^[0-9]+(;w=[0-9]+)?$/);
    const problem = new ProblemError("rate-limited", "over the limit", {
      retryAfterS: 9.999999999999999e299,
    });
    expect(problem.retryAfterS).toBe(MAX_WAIT_S);
    expect(new ProblemError("overloaded", "busy", { retryAfterS: 0.2 }).retryAfterS).toBe(1);
    expect(new ProblemError("overloaded", "busy", { retryAfterS: Number.NaN }).retryAfterS).toBe(1);
  });

  it("refuses a rate below 0.001 requests/s where limits are set, with a 400 saying why", () => {
    for (const body of [
      { name: "slow", ratePerSecond: 1e-300 },
      { name: "slow", ratePerSecond: 0 },
    ]) {
      const refusal = (() => {
        try {
          parseInput(NewTenantBody, body, "tenant");
        } catch (error) {
          return error as ProblemError;
        }
      })();
      expect(refusal).toMatchObject({ status: 400, code: "invalid-body" });
      expect(refusal?.message).toMatch(/ratePerSecond: must be at least 0\.001 requests\/s/);
    }
    expect(() => parseInput(TenantPatchBody, { ratePerSecond: 1e-300 }, "change")).toThrow(/at least 0\.001/);
    expect(parseInput(TenantPatchBody, { ratePerSecond: 0.001 }, "change")).toEqual({ ratePerSecond: 0.001 });
    expect(() =>
      loadConfig({ env: {}, overrides: { auth: { tenantDefaults: { ratePerSecond: 1e-300 } } } }),
    ).toThrow(/ratePerSecond/);
  });
});
