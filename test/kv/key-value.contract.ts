import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type KeyValue, type KvChange, KvFullError } from "../../src/kv/key-value.js";

export interface KvHarness {
  /** A fresh, empty bucket bounded to `maxEntries`, expiring entries after `maxAgeMs` (0: never). */
  open(options: { maxEntries: number; maxAgeMs: number }): Promise<KeyValue>;
  /**
   * Whether watchers are told (`value: null`) when max age removes an entry.
   * The embedded adapter sweeps and tells; nats-server 2.9 removes aged
   * messages silently (subject delete markers need 2.11), so NATS does not.
   */
  notifiesExpiry: boolean;
  /**
   * Whether a watcher sees every write, or may skip a value superseded
   * before it read it. The embedded adapter calls watchers on each write. A
   * NATS bucket with history 1 keeps only each key's latest message: when
   * writes outrun a watcher (a loaded machine), the server has already
   * dropped the superseded value and delivers the latest, still in revision
   * order. Every user here (identity cache, flags, discovery) needs only the
   * latest state.
   */
  deliversEveryChange: boolean;
}

/** The state a watcher has built from its changes: live keys and their values. */
function stateOf(changes: readonly KvChange[]): Map<string, string> {
  const state = new Map<string, string>();
  for (const c of changes) {
    if (c.value === null) state.delete(c.key);
    else state.set(c.key, c.value);
  }
  return state;
}

/** True when `part` appears in `whole` in the same order (possibly with gaps). */
function isSubsequence<T>(part: readonly T[], whole: readonly T[]): boolean {
  let i = 0;
  for (const item of whole) if (i < part.length && JSON.stringify(part[i]) === JSON.stringify(item)) i++;
  return i === part.length;
}

/** Generous for a real server on a 2-core machine; the waits end as soon as the condition holds. */
const EVENTUALLY = { timeout: 10_000, interval: 50 };

/** The contract every KeyValue adapter keeps: the same suite runs against each. */
export function describeKeyValue(name: string, harness: KvHarness): void {
  describe(`KeyValue contract: ${name}`, () => {
    let kv: KeyValue;
    beforeEach(async () => {
      kv = await harness.open({ maxEntries: 100, maxAgeMs: 0 });
    });
    afterEach(async () => kv.close());

    it("stores, reads, lists and deletes values", async () => {
      await kv.put("key.a", '{"n":1}');
      await kv.put("key.b", "2");
      await kv.put("tenant.c", "3");
      expect(await kv.get("key.a")).toBe('{"n":1}');
      expect(await kv.get("missing")).toBeNull();
      expect((await kv.keys("key.")).sort()).toEqual(["key.a", "key.b"]);
      await kv.delete("key.a");
      expect(await kv.get("key.a")).toBeNull();
      expect(await kv.keys("key.")).toEqual(["key.b"]);
      expect((await kv.keys()).sort()).toEqual(["key.b", "tenant.c"]);
    });

    it("lists by any string prefix, not only whole dot-separated tokens", async () => {
      await kv.put("node.alpha", "1");
      await kv.put("node.beta", "2");
      await kv.put("nodes", "3");
      expect((await kv.keys("node.a")).sort()).toEqual(["node.alpha"]);
      expect((await kv.keys("node")).sort()).toEqual(["node.alpha", "node.beta", "nodes"]);
    });

    it("gives each write a higher revision", async () => {
      const first = await kv.put("a", "1");
      const second = await kv.put("a", "2");
      expect(second).toBeGreaterThan(first);
    });

    it("rejects keys a NATS KV bucket would reject", async () => {
      await expect(kv.put("has space", "x")).rejects.toThrow(/invalid KV key/);
      await expect(kv.put("trailing.", "x")).rejects.toThrow(/invalid KV key/);
      await expect(kv.put(".leading", "x")).rejects.toThrow(/invalid KV key/);
      await expect(kv.create("a..b", "x")).rejects.toThrow(/invalid KV key/);
      await expect(kv.update("has space", "x", 1)).rejects.toThrow(/invalid KV key/);
      await expect(kv.delete("has space")).rejects.toThrow(/invalid KV key/);
      expect(await kv.get("has space")).toBeNull();
    });

    it("entry gives the value with its revision and write time; entries lists live ones in revision order", async () => {
      const before = Date.now();
      await kv.put("svc.b", "1");
      const revA = await kv.put("svc.a", "2");
      await kv.put("svc.c", "3");
      await kv.put("other", "x");
      const revB = await kv.put("svc.b", "4");
      await kv.delete("svc.c");
      const a = await kv.entry("svc.a");
      expect(a).toEqual({ key: "svc.a", value: "2", revision: revA, updatedAt: expect.any(Number) });
      // The server's clock in a fleet: same machine here, so within a few seconds.
      expect(a?.updatedAt).toBeGreaterThanOrEqual(before - 2000);
      expect(a?.updatedAt).toBeLessThanOrEqual(Date.now() + 2000);
      expect(await kv.entry("svc.c")).toBeNull();
      expect(await kv.entry("missing")).toBeNull();
      const listed = await kv.entries("svc.");
      expect(listed.map((e) => [e.key, e.value, e.revision])).toEqual([
        ["svc.a", "2", revA],
        ["svc.b", "4", revB],
      ]);
      expect((await kv.entries()).map((e) => e.key)).toEqual(["svc.a", "other", "svc.b"]);
    });

    it("entries lists every key exactly once while its keys are being rewritten", async () => {
      const keys = Array.from({ length: 8 }, (_, i) => `busy.k${i}`);
      for (const key of keys) await kv.put(key, "0");
      // Two writers rewrite the keys without pause, as discovery's nodes do, while listings run.
      let writing = true;
      const writer = async (offset: number) => {
        for (let n = 1; writing; n++) await kv.put(keys[(n + offset) % keys.length] as string, String(n));
      };
      const writers = [writer(0), writer(3)];
      try {
        for (let round = 0; round < 20; round++) {
          const listed = (await kv.entries("busy.")).map((e) => e.key);
          expect(listed.slice().sort(), `round ${round}`).toEqual(keys);
        }
      } finally {
        writing = false;
        await Promise.all(writers);
      }
    });
    it("create writes only when the key has no live value", async () => {
      const rev = await kv.create("lease.agg", "node-1");
      expect(rev).toEqual(expect.any(Number));
      expect(await kv.create("lease.agg", "node-2")).toBeNull();
      expect(await kv.get("lease.agg")).toBe("node-1");
      await kv.delete("lease.agg");
      const again = await kv.create("lease.agg", "node-2");
      expect(again).toBeGreaterThan(rev as number);
      expect(await kv.entry("lease.agg")).toMatchObject({ value: "node-2", revision: again });
    });

    it("update writes only from the key's latest revision", async () => {
      const first = await kv.put("lease.x", "a");
      const second = await kv.update("lease.x", "b", first);
      expect(second).toBeGreaterThan(first);
      expect(await kv.update("lease.x", "c", first)).toBeNull();
      expect(await kv.get("lease.x")).toBe("b");
      expect(await kv.update("missing", "c", second as number)).toBeNull();
      expect(await kv.get("missing")).toBeNull();
      await kv.delete("lease.x");
      expect(await kv.update("lease.x", "d", second as number)).toBeNull();
      expect(await kv.get("lease.x")).toBeNull();
    });

    it("of two concurrent creates of one key, exactly one wins", async () => {
      for (let round = 0; round < 5; round++) {
        const key = `race.create.${round}`;
        const results = await Promise.all([kv.create(key, "A"), kv.create(key, "B")]);
        const winners = results.filter((r) => r !== null);
        expect(winners).toHaveLength(1);
        expect(await kv.get(key)).toBe(results[0] !== null ? "A" : "B");
      }
    });

    it("of two concurrent updates from one revision, exactly one wins", async () => {
      let revision = await kv.put("race.update", "0");
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all([
          kv.update("race.update", `A${round}`, revision),
          kv.update("race.update", `B${round}`, revision),
        ]);
        const winners = results.filter((r): r is number => r !== null);
        expect(winners).toHaveLength(1);
        revision = winners[0] as number;
        expect(await kv.entry("race.update")).toMatchObject({ revision });
      }
    });

    it("watch delivers current values first, then every change in order, until stopped", async () => {
      await kv.put("key.a", "1");
      await kv.put("other.x", "ignored");
      const seen: KvChange[] = [];
      const watch = await kv.watch("key.", (c) => seen.push(c));
      await watch.initialLoaded;
      expect(seen.map((c) => [c.key, c.value])).toEqual([["key.a", "1"]]);
      await kv.put("key.b", "2");
      await kv.put("key.a", "3");
      await kv.delete("key.b");
      const written = [
        ["key.b", "2"],
        ["key.a", "3"],
        ["key.b", null],
      ];
      if (harness.deliversEveryChange) {
        await vi.waitFor(() => expect(seen).toHaveLength(4), EVENTUALLY);
        expect(seen.slice(1).map((c) => [c.key, c.value])).toEqual(written);
      } else {
        await vi.waitFor(() => expect(stateOf(seen)).toEqual(new Map([["key.a", "3"]])), EVENTUALLY);
        expect(
          isSubsequence(
            seen.slice(1).map((c) => [c.key, c.value]),
            written,
          ),
        ).toBe(true);
      }
      const revisions = seen.map((c) => c.revision);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
      const deliveredBeforeStop = seen.length;
      watch.stop();
      // A second watcher that sees key.c proves the write happened after the stop, without a fixed sleep.
      const witness: KvChange[] = [];
      const second = await kv.watch("key.c", (c) => witness.push(c));
      await kv.put("key.c", "4");
      await vi.waitFor(() => expect(witness.map((c) => c.value)).toEqual(["4"]), EVENTUALLY);
      second.stop();
      expect(seen).toHaveLength(deliveredBeforeStop);
    });

    it("watch delivers the initial values in revision order, then changes after them", async () => {
      await kv.put("cfg.b", "1");
      await kv.put("cfg.a", "1");
      await kv.put("cfg.c", "1");
      await kv.put("cfg.b", "2");
      await kv.delete("cfg.c");
      const seen: KvChange[] = [];
      const watch = await kv.watch("cfg.", (c) => seen.push(c));
      await watch.initialLoaded;
      expect(seen.map((c) => [c.key, c.value])).toEqual([
        ["cfg.a", "1"],
        ["cfg.b", "2"],
      ]);
      const initialMax = Math.max(...seen.map((c) => c.revision));
      await kv.put("cfg.a", "2");
      await kv.put("cfg.d", "1");
      await vi.waitFor(() => expect(seen).toHaveLength(4), EVENTUALLY);
      expect(seen.slice(2).map((c) => [c.key, c.value])).toEqual([
        ["cfg.a", "2"],
        ["cfg.d", "1"],
      ]);
      expect(seen[2]?.revision).toBeGreaterThan(initialMax);
      expect((seen[3]?.revision ?? 0) > (seen[2]?.revision ?? 0)).toBe(true);
      watch.stop();
    });

    it("refuses new keys beyond its bound, but still updates existing ones", async () => {
      const small = await harness.open({ maxEntries: 2, maxAgeMs: 0 });
      try {
        await small.put("a", "1");
        const b = await small.put("b", "2");
        await expect(small.put("c", "3")).rejects.toBeInstanceOf(KvFullError);
        await expect(small.create("c", "3")).rejects.toBeInstanceOf(KvFullError);
        await small.put("a", "updated");
        expect(await small.get("a")).toBe("updated");
        expect(await small.update("b", "updated", b)).toEqual(expect.any(Number));
      } finally {
        await small.close();
      }
    });

    it("a deleted key gives its slot back (at once, or once its delete marker is compacted)", async () => {
      const small = await harness.open({ maxEntries: 2, maxAgeMs: 0 });
      try {
        await small.put("a", "1");
        await small.put("b", "2");
        await small.delete("a");
        await vi.waitFor(() => small.put("c", "3"), EVENTUALLY);
        expect((await small.keys()).sort()).toEqual(["b", "c"]);
      } finally {
        await small.close();
      }
    });

    it("refuses a value larger than its bound", async () => {
      await expect(kv.put("big", "x".repeat(64 * 1024 + 1))).rejects.toBeInstanceOf(KvFullError);
    });

    it(`expires entries after the bucket's max age${harness.notifiesExpiry ? " and tells watchers" : ""}`, async () => {
      // Long enough that the first read, right after the write, cannot miss it on a loaded machine.
      const expiring = await harness.open({ maxEntries: 10, maxAgeMs: 1000 });
      try {
        const seen: KvChange[] = [];
        await expiring.watch("", (c) => seen.push(c));
        await expiring.put("node.1", "alive");
        expect(await expiring.get("node.1")).toBe("alive");
        await vi.waitFor(async () => expect(await expiring.get("node.1")).toBeNull(), EVENTUALLY);
        expect(await expiring.entry("node.1")).toBeNull();
        expect(await expiring.entries("node.")).toEqual([]);
        expect(await expiring.keys()).toEqual([]);
        expect(await expiring.create("node.1", "back")).toEqual(expect.any(Number));
        if (harness.notifiesExpiry) {
          expect(seen.map((c) => c.value)).toEqual(["alive", null, "back"]);
        } else {
          await vi.waitFor(() => expect(seen.at(-1)?.value).toBe("back"), EVENTUALLY);
          // Not told of the expiry; "alive" itself may have expired before a lagging watcher read it.
          const values = seen.map((c) => c.value);
          if (harness.deliversEveryChange) expect(values).toEqual(["alive", "back"]);
          else expect(isSubsequence(values, ["alive", "back"])).toBe(true);
        }
      } finally {
        await expiring.close();
      }
    });
  });
}
