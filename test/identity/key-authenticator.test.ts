import { describe, expect, it, vi } from "vitest";
import { ProblemError } from "../../src/errors/problem.js";
import { apiKeyToken, generateApiKey } from "../../src/identity/api-key.js";
import { GuessLimiter } from "../../src/identity/guess-limiter.js";
import { IdentityCache } from "../../src/identity/identity-cache.js";
import { encodePublishedValue, kvKeyOf } from "../../src/identity/identity-kv.js";
import { type AuthAttempt, KeyAuthenticator } from "../../src/identity/key-authenticator.js";
import type { KeyRecord } from "../../src/identity/model.js";
import { TenantLimiter } from "../../src/identity/tenant-limiter.js";
import { MemoryKeyValue } from "../../src/kv/memory-kv.js";
import { createMetrics } from "../../src/metrics/metrics.js";

/** Counts the hashing and comparing a key check does, through the real functions. */
const work = vi.hoisted(() => ({ hashes: 0, compares: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const crypto = await importOriginal<typeof import("node:crypto")>();
  return {
    ...crypto,
    createHash: (...args: Parameters<typeof crypto.createHash>) => {
      work.hashes++;
      return crypto.createHash(...args);
    },
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      work.compares++;
      return crypto.timingSafeEqual(a, b);
    },
  };
});

/** An authenticator over a real (in-memory) data plane holding one admin key; its clock is `clock.now`. */
async function authenticatorWithAdminKey(failuresPerMinute = 3) {
  const admin = generateApiKey();
  const record: KeyRecord = {
    id: admin.id,
    tenantId: null,
    secretSha256: admin.secretSha256,
    scopes: ["admin"],
    expiresAt: null,
    revokedAt: null,
  };
  const kv = new MemoryKeyValue({ maxEntries: 100, maxValueBytes: 16_384 });
  await kv.put(kvKeyOf("key", admin.id), encodePublishedValue({ kind: "key", record, committedAt: null }));
  const cache = new IdentityCache(kv, createMetrics().identity);
  await cache.start();
  const clock = { now: 1_000_000 };
  const throttled: string[] = [];
  const keys = new KeyAuthenticator(cache, new TenantLimiter(), () => clock.now, {
    guesses: new GuessLimiter(
      { failuresPerMinute },
      () => clock.now,
      100,
      () => 0.5,
    ),
    onThrottled: (surface, by) => throttled.push(`${surface}/${by}`),
  });
  return { keys, admin, clock, throttled, stop: () => cache.stop() };
}

function refusal(check: () => unknown): ProblemError {
  try {
    check();
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

/** The same key id with another secret and a correct checksum: a guess at that key's secret. */
function guessAt(keyId: string, secret = "x".repeat(43)): string {
  return apiKeyToken(keyId.slice("key_".length), secret);
}

describe("checking a key", () => {
  it("does the same hashing and comparing for an unknown key id as for a wrong secret", async () => {
    const { keys, admin, stop } = await authenticatorWithAdminKey(1000);
    const cost = (token: string) => {
      work.hashes = 0;
      work.compares = 0;
      expect(refusal(() => keys.verifyToken(token)).code).toBe("invalid-api-key");
      return { hashes: work.hashes, compares: work.compares };
    };
    const wrongSecret = cost(guessAt(admin.id));
    const unknownId = cost(guessAt(generateApiKey().id));
    expect(wrongSecret).toEqual({ hashes: 1, compares: 1 });
    expect(unknownId).toEqual(wrongSecret);
    stop();
  });

  it("refuses further failures from an address in backoff, but accepts a valid key from it at once", async () => {
    const { keys, admin, throttled, stop } = await authenticatorWithAdminKey(3);
    const from: AuthAttempt = { surface: "admin", address: "10.0.0.9" };
    for (let i = 0; i < 3; i++) {
      expect(refusal(() => keys.verifyToken(guessAt(generateApiKey().id), from)).code).toBe(
        "invalid-api-key",
      );
    }
    const limited = refusal(() => keys.verifyToken(guessAt(generateApiKey().id), from));
    expect(limited).toMatchObject({
      code: "auth-rate-limited",
      status: 429,
      extras: { limitedBy: "address" },
    });
    expect(limited.retryAfterS).toBeGreaterThanOrEqual(1);
    expect(keys.verifyToken(admin.token, from).id).toBe(admin.id);
    expect(throttled).toEqual(["admin/address"]);
    stop();
  });

  it("limits guesses at one key's secret per key id, from any number of addresses, without locking its holder out", async () => {
    const { keys, admin, throttled, stop } = await authenticatorWithAdminKey(3);
    const codes: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const attempt: AuthAttempt = { surface: "sign-in", address: `10.0.1.${i}` };
      codes.push(refusal(() => keys.verifyToken(guessAt(admin.id, `${i}`.repeat(43)), attempt)).code);
    }
    expect(codes).toEqual([
      "invalid-api-key",
      "invalid-api-key",
      "invalid-api-key",
      "sign-in-rate-limited",
      "sign-in-rate-limited",
      "sign-in-rate-limited",
    ]);
    expect(throttled.every((t) => t === "sign-in/key")).toBe(true);
    // Another key's guesses from a fresh address are not affected; the holder signs in from anywhere.
    expect(refusal(() => keys.verifyToken(guessAt(generateApiKey().id), { surface: "sign-in" })).code).toBe(
      "invalid-api-key",
    );
    expect(keys.authenticateAdminKey(admin.token, { surface: "sign-in", address: "10.0.1.1" })).toBe(
      admin.id,
    );
    stop();
  });
});

describe("the guess limiter", () => {
  it("backs off exponentially past the budget, up to the cap, and starts over after a quiet spell", () => {
    let now = 0;
    const limiter = new GuessLimiter(
      { failuresPerMinute: 2, firstBackoffMs: 1000, maxBackoffMs: 8000 },
      () => now,
      100,
      () => 0,
    );
    const fail = () => limiter.fail({ address: "a" }).blockedMs;
    expect([fail(), fail()]).toEqual([0, 0]);
    expect([fail(), fail(), fail(), fail(), fail()]).toEqual([1000, 2000, 4000, 8000, 8000]);
    // Waiting out the pause is not enough: the budget is still spent, and the next failure doubles on.
    now += 8000;
    expect(fail()).toBe(8000);
    // Failures spent the budget into debt; once it has refilled in full, the backoff starts over.
    now += 3 * 60_000;
    expect([fail(), fail(), fail()]).toEqual([0, 0, 1000]);
  });

  it("spreads the retry hint over up to a fifth more than the pause, in whole seconds", () => {
    const hint = (random: number) => {
      const limiter = new GuessLimiter(
        { failuresPerMinute: 1, firstBackoffMs: 10_000 },
        () => 0,
        10,
        () => random,
      );
      limiter.fail({ keyId: "k" });
      return limiter.fail({ keyId: "k" });
    };
    expect(hint(0)).toMatchObject({ blockedMs: 10_000, retryAfterS: 10, by: "key" });
    expect(hint(0.999).retryAfterS).toBe(12);
  });

  it("keeps bounded tables, addresses apart from key ids", () => {
    const limiter = new GuessLimiter({ failuresPerMinute: 1 }, () => 0, 3);
    for (let i = 0; i < 10; i++) limiter.fail({ address: `a${i}`, keyId: `k${i}` });
    for (let i = 0; i < 10; i++) limiter.fail({ keyId: `other${i}` });
    expect(limiter.size).toEqual({ addresses: 3, keys: 3 });
    // The addresses under watch were not evicted by the spray of key ids.
    expect(limiter.fail({ address: "a9" }).blockedMs).toBeGreaterThan(0);
  });
});
