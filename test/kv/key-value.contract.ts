import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type KeyValue, type KvChange, KvFullError } from "../../src/kv/key-value.js";

export interface KvHarness {
  /** A fresh, empty bucket bounded to `maxEntries`, expiring entries after `maxAgeMs` (0: never). */
  open(options: { maxEntries: number; maxAgeMs: number }): Promise<KeyValue>;
}

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
    });

    it("gives each write a higher revision", async () => {
      const first = await kv.put("a", "1");
      const second = await kv.put("a", "2");
      expect(second).toBeGreaterThan(first);
    });

    it("rejects keys a NATS KV bucket would reject", async () => {
      await expect(kv.put("has space", "x")).rejects.toThrow(/invalid KV key/);
      await expect(kv.put("trailing.", "x")).rejects.toThrow(/invalid KV key/);
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
      await vi.waitFor(() => expect(seen).toHaveLength(4));
      expect(seen.slice(1).map((c) => [c.key, c.value])).toEqual([
        ["key.b", "2"],
        ["key.a", "3"],
        ["key.b", null],
      ]);
      const revisions = seen.map((c) => c.revision);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
      watch.stop();
      await kv.put("key.c", "4");
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toHaveLength(4);
    });

    it("refuses new keys beyond its bound, but still updates existing ones", async () => {
      const small = await harness.open({ maxEntries: 2, maxAgeMs: 0 });
      await small.put("a", "1");
      await small.put("b", "2");
      await expect(small.put("c", "3")).rejects.toBeInstanceOf(KvFullError);
      await small.put("a", "updated");
      expect(await small.get("a")).toBe("updated");
      await small.close();
    });

    it("expires entries after the bucket's max age and tells watchers", async () => {
      const expiring = await harness.open({ maxEntries: 10, maxAgeMs: 200 });
      const seen: KvChange[] = [];
      await expiring.watch("", (c) => seen.push(c));
      await expiring.put("node.1", "alive");
      expect(await expiring.get("node.1")).toBe("alive");
      await vi.waitFor(async () => expect(await expiring.get("node.1")).toBeNull(), { timeout: 5000 });
      await vi.waitFor(() => expect(seen.at(-1)).toMatchObject({ key: "node.1", value: null }), {
        timeout: 5000,
      });
      await expiring.close();
    });
  });
}
