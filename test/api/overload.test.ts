import { once } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { CI_POLL } from "../helpers/ci.js";
import { startCliServer } from "../helpers/cli-server.js";
import { noiseImage, solidImage } from "../helpers/images.js";
import { poolOf, readMetric, startNode } from "../helpers/node.js";

describe("overload", () => {
  it("answers 503 with Retry-After once the queue is full, and still serves what it accepted", async () => {
    const { node, post, url } = await startNode({ queue: { capacity: 2 } });
    const small = await solidImage(300, 200);
    const busy = post("/v1/resize?blur=100", await noiseImage(2500));
    await once(poolOf(node), "job-start");
    // One job waits inside the worker behind the busy one; two more fill the queue.
    const queued = [40, 41, 42].map((w) => post(`/v1/resize?w=${w}`, small));
    await vi.waitFor(() => expect(node.adapters.queue.stats().depth).toBe(2), CI_POLL);

    const rejected = await Promise.all([1, 2, 3].map(() => post("/v1/resize?w=42", small)));
    for (const res of rejected) {
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const problem = (await res.json()) as { type: string; limit: string; detail: string };
      expect(problem).toMatchObject({ type: "/problems/overloaded", limit: "queue" });
      expect(problem.detail).toMatch(/retry after \d+ s/);
    }
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reasons: string[] }).reasons).toContain("job queue full");

    expect((await busy).status).toBe(200);
    expect(await Promise.all(queued.map(async (r) => (await r).status))).toEqual([200, 200, 200]);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(
      await node.metrics.rejections
        .get()
        .then((m) => m.values.find((v) => v.labels.reason === "overloaded")?.value),
    ).toBe(3);
  });

  it("frees a client's staged upload when it leaves while its image is being resized", async () => {
    const { node, url, auth } = await startNode();
    const leaving = new AbortController();
    const request = fetch(`${url}/v1/resize?blur=80`, {
      method: "POST",
      body: await noiseImage(2500),
      headers: { "content-type": "image/jpeg", ...auth },
      signal: leaving.signal,
    }).catch(() => "aborted");
    await once(poolOf(node), "job-start");
    expect(node.adapters.staging.bytes).toBeGreaterThan(0);
    leaving.abort();
    expect(await request).toBe("aborted");
    await vi.waitFor(() => expect(node.adapters.staging.bytes).toBe(0), CI_POLL);
    await vi.waitFor(async () => expect(await readMetric(url, "imgfleet_late_results_total")).toBe(1), {
      timeout: 15_000,
    });
  });

  it("keeps the server's memory bounded while a client floods it with uploads", async () => {
    const server = await startCliServer(["--workers", "1"], {
      IMGFLEET_STAGING__MAX_BYTES: String(12 * 2 ** 20),
      IMGFLEET_QUEUE__CAPACITY: "1000",
    });
    const key = await server.tenantKey({ ratePerSecond: 10_000, burst: 10_000, maxInFlight: 1000 });
    // ~4.5 MB of incompressible JPEG: 150 of them offer ~650 MB, far beyond the ~35-50 MiB that
    // 150 open connections cost whatever they send, so the bound below tells the two apart.
    const upload = await noiseImage(2400);
    const warm = await postTo(server.url, key, upload);
    expect(warm).toBe(200);
    const rssBefore = server.rssBytes();
    let peakRss = rssBefore;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, server.rssBytes());
    }, 10);
    const clients = 150;
    const statuses = await Promise.all(
      Array.from({ length: clients }, () => postTo(server.url, key, upload)),
    );
    clearInterval(sampler);
    const offered = upload.length * clients;
    const counts = new Map<string, number>();
    for (const s of statuses) counts.set(String(s), (counts.get(String(s)) ?? 0) + 1);
    expect(counts.get("503"), JSON.stringify([...counts])).toBeGreaterThan(0);
    expect(counts.get("200")).toBeGreaterThan(0);
    // Everything is either served or refused with 503 (a refused upload may see its connection closed mid-send).
    expect([...counts.keys()].filter((k) => !["200", "503", "connection closed"].includes(k))).toEqual([]);
    const grew = `RSS grew ${((peakRss - rssBefore) / 2 ** 20).toFixed(1)} MiB for ${(offered / 2 ** 20).toFixed(0)} MiB offered`;
    console.info(`overload: ${grew}`);
    expect(peakRss - rssBefore, grew).toBeLessThan(Math.min(offered / 4, 100 * 2 ** 20));
    expect(await postTo(server.url, key, upload)).toBe(200);
    expect(await readMetric(server.url, "imgfleet_staging_bytes")).toBe(0);
  });
});

async function postTo(url: string, key: string, body: Buffer): Promise<number | string> {
  try {
    const res = await fetch(`${url}/v1/resize?w=64`, {
      method: "POST",
      body,
      headers: { "content-type": "image/jpeg", authorization: `Bearer ${key}` },
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return "connection closed";
  }
}
