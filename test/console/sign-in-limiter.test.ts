import { describe, expect, it } from "vitest";
import { SignInLimiter } from "../../src/session/sign-in-limiter.js";

describe("the sign-in limiter", () => {
  it("allows a minute's budget per address, then says when the next attempt is allowed", () => {
    let now = 0;
    const limiter = new SignInLimiter(6, () => now);
    for (let i = 0; i < 6; i++) expect(limiter.take("10.0.0.1")).toBe(0);
    // One attempt comes back every 10 s (6 a minute).
    expect(limiter.take("10.0.0.1")).toBe(10);
    expect(limiter.take("10.0.0.2")).toBe(0);
    now += 9_000;
    expect(limiter.take("10.0.0.1")).toBe(1);
    now += 1_000;
    expect(limiter.take("10.0.0.1")).toBe(0);
    expect(limiter.take("10.0.0.1")).toBe(10);
  });

  it("keeps a bounded table, dropping the address seen least recently", () => {
    const limiter = new SignInLimiter(1, () => 0, 3);
    for (const address of ["a", "b", "c"]) expect(limiter.take(address)).toBe(0);
    expect(limiter.take("a")).toBeGreaterThan(0); // refused, and now the most recently seen
    expect(limiter.take("d")).toBe(0); // evicts b, the least recently seen
    expect(limiter.size).toBe(3);
    expect(limiter.take("a")).toBeGreaterThan(0);
    expect(limiter.take("c")).toBeGreaterThan(0);
    expect(limiter.take("b")).toBe(0); // forgotten: starts again with a full bucket
    expect(limiter.size).toBe(3);
  });
});
