import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { FlagCache } from "../../src/flags/flag-cache.js";
import { FlagStore, flagKey } from "../../src/flags/flag-store.js";
import { evaluateFlag, type Flag, ROLLOUT_BUCKETS, rolloutBucket } from "../../src/flags/model.js";
import { builtInFlag, KNOWN_FLAGS } from "../../src/flags/registry.js";
import { chooseOutputFormat } from "../../src/image/negotiate.js";
import { MemoryKeyValue } from "../../src/kv/memory-kv.js";

const quiet = pino({ level: "silent" });
const tenants = (n: number) => Array.from({ length: n }, (_, i) => `ten_${String(i).padStart(26, "0")}`);

function flag(overrides: Partial<Flag> = {}): Flag {
  return { ...builtInFlag("test-flag"), ...overrides };
}

function newKv(): MemoryKeyValue {
  const kv = new MemoryKeyValue({ maxEntries: 100, maxValueBytes: 256 * 1024 });
  onTestFinished(() => kv.close());
  return kv;
}

describe("flag evaluation", () => {
  it("takes a tenant override first, then the percentage, then the default", () => {
    const [a = "", b = ""] = tenants(2);
    const f = flag({ default: false, percentage: 100, tenants: { [a]: false } });
    expect(evaluateFlag(f, a)).toEqual({ value: false, reason: "tenant" });
    expect(evaluateFlag(f, b)).toEqual({ value: true, reason: "percentage" });
    expect(evaluateFlag({ ...f, percentage: 0 }, b)).toEqual({ value: false, reason: "default" });
    expect(evaluateFlag({ ...f, percentage: 0, default: true }, b)).toEqual({
      value: true,
      reason: "default",
    });
  });

  it("gives requests without a tenant (auth.mode none) the default, whatever the rollout", () => {
    expect(evaluateFlag(flag({ percentage: 100 }), null)).toEqual({ value: false, reason: "default" });
    expect(evaluateFlag(flag({ default: true }), null)).toEqual({ value: true, reason: "default" });
  });

  it("puts a tenant in the same bucket every time, and in unrelated buckets for different flags", () => {
    // Pinned: a change of the hash would silently reshuffle every rollout in production.
    expect(rolloutBucket("avif-auto", "ten_0000000000000000000000000")).toBe(7614);
    const ids = tenants(2000);
    const one = ids.map((t) => rolloutBucket("flag-one", t));
    const two = ids.map((t) => rolloutBucket("flag-two", t));
    const same = one.filter((b, i) => b === two[i]).length;
    expect(same).toBeLessThan(5);
    for (const b of one) expect(b >= 0 && b < ROLLOUT_BUCKETS).toBe(true);
  });

  it("turns on about the given share of tenants, and raising the percentage only adds tenants", () => {
    const ids = tenants(10_000);
    const on = (percentage: number) =>
      new Set(ids.filter((t) => evaluateFlag(flag({ percentage }), t).value));
    const ten = on(10);
    const twentyFive = on(25);
    expect(ten.size).toBeGreaterThan(900);
    expect(ten.size).toBeLessThan(1100);
    expect(twentyFive.size).toBeGreaterThan(2350);
    expect(twentyFive.size).toBeLessThan(2650);
    for (const t of ten) expect(twentyFive.has(t)).toBe(true);
    expect(on(0).size).toBe(0);
    expect(on(100).size).toBe(ids.length);
    // 0.01 % steps: one bucket in ten thousand.
    expect(on(0.01).size).toBeLessThan(10);
  });

  it("registers avif-auto, off by default, with a description", () => {
    expect(KNOWN_FLAGS["avif-auto"].default).toBe(false);
    expect(builtInFlag("avif-auto").description).toMatch(/AVIF/);
    expect(builtInFlag("no-such-flag")).toMatchObject({ default: false, percentage: 0, tenants: {} });
  });
});

describe("format=auto and the avif-auto switch", () => {
  const still = { format: "jpeg" as const, hasAlpha: false, animated: false };
  it("offers AVIF only when the flag is on", () => {
    const accept = "image/avif,image/webp,*/*";
    expect(chooseOutputFormat("auto", accept, still, null, { avif: true }).format).toBe("avif");
    expect(chooseOutputFormat("auto", accept, still, null, { avif: false }).format).toBe("webp");
    // An explicit format is the client's choice, not a rollout's.
    expect(chooseOutputFormat("avif", accept, still, null, { avif: false }).format).toBe("avif");
    // A tenant allowed AVIF only still gets AVIF.
    expect(chooseOutputFormat("auto", accept, still, ["avif"], { avif: false }).format).toBe("avif");
  });
});

describe("FlagStore", () => {
  it("writes compare-and-set: a write from a stale read is refused", async () => {
    const store = new FlagStore(newKv());
    const first = await store.read("avif-auto");
    expect(first).toMatchObject({ stored: false, revision: null });
    expect(await store.write({ ...first.flag, percentage: 10 }, first.revision)).toBe(true);
    // A second writer that read before the first write loses and must read again.
    expect(await store.write({ ...first.flag, percentage: 20 }, first.revision)).toBe(false);
    const second = await store.read("avif-auto");
    expect(second.flag.percentage).toBe(10);
    expect(await store.write({ ...second.flag, percentage: 20 }, second.revision)).toBe(true);
    expect((await store.read("avif-auto")).flag.percentage).toBe(20);
    expect((await store.list()).map((f) => f.name)).toEqual(["avif-auto"]);
  });

  it("answers 503 flags-unavailable, not a 500, when the bucket does not answer", async () => {
    const kv = newKv();
    const broken = Object.assign(Object.create(kv) as MemoryKeyValue, {
      entry: async () => {
        throw new Error("TIMEOUT");
      },
    });
    await expect(new FlagStore(broken).read("avif-auto")).rejects.toMatchObject({
      code: "flags-unavailable",
      status: 503,
      retryAfterS: 5,
      message: expect.stringMatching(/TIMEOUT.*nothing was changed/),
    });
  });

  it("treats a value it cannot read as built-in settings and leaves it out of the list", async () => {
    const kv = newKv();
    await kv.put(flagKey("avif-auto"), '{"name":"avif-auto","percentage":"lots"}');
    const store = new FlagStore(kv);
    expect((await store.read("avif-auto")).flag).toEqual(builtInFlag("avif-auto"));
    expect(await store.list()).toEqual([]);
  });
});

describe("FlagCache", () => {
  it("loads what is stored, then follows every change and deletion from memory", async () => {
    const kv = newKv();
    const store = new FlagStore(kv);
    const [t = ""] = tenants(1);
    await store.write({ ...builtInFlag("avif-auto"), tenants: { [t]: true } }, null);
    const cache = new FlagCache(kv, quiet);
    await cache.start();
    onTestFinished(() => cache.stop());
    expect(cache.loaded).toBe(true);
    expect(cache.evaluate("avif-auto", t)).toEqual({ value: true, reason: "tenant" });

    const read = await store.read("avif-auto");
    await store.write({ ...read.flag, tenants: {}, default: true }, read.revision);
    await expect.poll(() => cache.evaluate("avif-auto", t)).toEqual({ value: true, reason: "default" });
    expect(cache.get("avif-auto").revision).toBeGreaterThan(read.revision ?? 0);

    await store.remove("avif-auto");
    await expect.poll(() => cache.enabled("avif-auto", t)).toBe(false);
    expect(cache.get("avif-auto").revision).toBeNull();
  });

  it("keeps its last settings when an unreadable value arrives", async () => {
    const kv = newKv();
    const cache = new FlagCache(kv, quiet);
    await cache.start();
    onTestFinished(() => cache.stop());
    const store = new FlagStore(kv);
    await store.write({ ...builtInFlag("avif-auto"), default: true }, null);
    await expect.poll(() => cache.enabled("avif-auto", null)).toBe(true);
    await kv.put(flagKey("avif-auto"), "not json");
    await kv.put(flagKey("marker"), JSON.stringify(builtInFlag("marker")));
    await expect.poll(() => cache.get("marker").revision).not.toBeNull();
    expect(cache.enabled("avif-auto", null)).toBe(true);
  });
});
