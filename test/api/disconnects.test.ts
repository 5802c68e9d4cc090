import { describe, expect, it } from "vitest";
import { afterLoad, type LoadTenant, runDisconnectLoad } from "../../bench/hostile/disconnect-load.js";
import { noiseImage } from "../helpers/images.js";
import { startNode } from "../helpers/node.js";

/**
 * Issue 13: requests of which 30% disconnect at random moments — before,
 * during and after their upload. Afterwards the in-flight gauge is 0, no
 * staging is held, every tenant is served, and usage equals what clients
 * received. bench/hostile/disconnects.ts runs the same load at 10,000.
 */

const REQUESTS = 1500;
const TENANTS = 4;

describe("clients disconnecting at random moments under load", () => {
  it(`${REQUESTS} requests, 30% leaving before, during or after their upload: nothing leaks, usage equals what clients received`, async () => {
    const n = await startNode({ usage: { flushIntervalMs: 100, confirmIntervalMs: 20 } });
    const tenants: LoadTenant[] = [];
    for (let i = 0; i < TENANTS; i++) {
      const created = await n.admin("POST", "/tenants", { name: `disconnects-${i}`, maxInFlight: 6 });
      const { id } = (await created.json()) as { id: string };
      const issued = await n.admin("POST", `/tenants/${id}/keys`, { scopes: ["resize"] });
      tenants.push({ id, key: ((await issued.json()) as { secret: string }).secret });
    }
    const images = await Promise.all([48, 64, 80].map(noiseImage));

    const results = await runDisconnectLoad({
      url: n.url,
      tenants,
      images,
      requests: REQUESTS,
      concurrency: 16,
      leaveShare: 0.3,
      seed: 13,
    });

    // Clients really left at each moment, without an answer.
    for (const leave of ["before", "during", "after"] as const) {
      expect(results.filter((r) => r.leave === leave && r.status === null).length, leave).toBeGreaterThan(
        REQUESTS * 0.05,
      );
    }
    const after = await afterLoad(n.node, n.url, tenants, results, images[0] as Buffer);
    expect(after.inFlight).toBe(0);
    expect(after.stagingBytes).toBe(0);
    expect(after.usageFlushed).toBe(true);
    for (const t of after.tenants) {
      expect(t.receivedOk, "served during the load").toBeGreaterThan(0);
      expect({ ok: t.usageOk, bytesOut: t.usageBytesOut }).toEqual({
        ok: t.receivedOk,
        bytesOut: t.receivedBytes,
      });
      // A client that left is a client error (499), never a server error.
      expect(t.usageServerErrors).toBe(0);
      expect(t.servedAfter).toBe(200);
    }
    // Exactly one usage record per request, saying what its client got: the status of a whole
    // answer, or for a client that left without one never a success and never a server error.
    const day = new Date().toISOString().slice(0, 10);
    const records = new Map<string, number[]>();
    for (const t of tenants) {
      for (const r of await n.node.usage.archive.read(t.id, day))
        records.set(r.id, [...(records.get(r.id) ?? []), r.status]);
    }
    const wrong = results.filter((c) => {
      const statuses = records.get(c.id) ?? [];
      const status = statuses[0] ?? 0;
      return (
        statuses.length !== 1 || (c.status === null ? status === 200 || status >= 500 : status !== c.status)
      );
    });
    expect(wrong.map((c) => ({ ...c, records: records.get(c.id) }))).toEqual([]);
  }, 240_000);
});
