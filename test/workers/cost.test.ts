import { once } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { utcDay } from "../../src/usage/archive.js";
import { solidImage } from "../helpers/images.js";
import { poolOf, type RunningNode, startNode } from "../helpers/node.js";

/**
 * A job that holds a worker for ~3.5 s on an idle core (blur σ=100 over 49 MP
 * of a flat picture: a small upload, the most work the limits allow).
 */
async function heavyJob(): Promise<{ body: Buffer; path: string }> {
  return { body: await solidImage(7000, 7000), path: "/v1/resize?blur=100" };
}

const FAST_FLUSH = { usage: { flushIntervalMs: 50, confirmIntervalMs: 20 } };

/** A second tenant on the same node, with its own key: `post` as that tenant. */
async function otherTenant(n: RunningNode, name: string) {
  const tenant = (await (await n.admin("POST", "/tenants", { name })).json()) as { id: string };
  const issued = await n.admin("POST", `/tenants/${tenant.id}/keys`, { name: "k", scopes: ["resize"] });
  const { secret } = (await issued.json()) as { secret: string };
  return {
    id: tenant.id,
    post: (path: string, body: Buffer) => n.post(path, body, { authorization: `Bearer ${secret}` }),
  };
}

describe("work is billed and shared by its cost", () => {
  it("a job killed at its time limit is billed the CPU its worker spent until the kill", async () => {
    const n = await startNode({ ...FAST_FLUSH, limits: { processingTimeoutMs: 1000 } });
    const heavy = await heavyJob();
    const res = await n.post(heavy.path, heavy.body);
    expect(res.status).toBe(504);
    expect(await n.metric("imgfleet_worker_restarts_total", { reason: "timeout" })).toBe(1);
    expect(await n.node.usage.flush(15_000)).toBe(true);
    const archived = await n.node.usage.archive.read(n.tenant, utcDay(Date.now()));
    const record = archived.find((r) => r.id === res.headers.get("x-request-id"));
    expect(record).toMatchObject({ status: 504, inBytes: heavy.body.length });
    // A second of a core at the limit, less scheduling gaps on a busy machine.
    expect(record?.cpuMs).toBeGreaterThan(100);
    // It ran to the limit: a timer may fire a fraction of a millisecond before the clock reads 1000.
    expect(record?.processMs).toBeGreaterThanOrEqual(990);
  });

  it("a job waiting behind one killed at its time limit is served, charged no attempt, and not dead-lettered", async () => {
    // One attempt: on a charged crash the waiting job would be given up at once. A limit under the
    // pool's 500 ms "long job" mark, so the waiting job is still in the worker when it is killed.
    const n = await startNode({ limits: { processingTimeoutMs: 400 }, queue: { maxAttempts: 1 } });
    const heavy = await heavyJob();
    const slow = n.post(heavy.path, heavy.body);
    await once(poolOf(n.node), "job-start");
    // Handed to the same worker's second lane while the heavy job runs; the worker is killed under it.
    const innocent = await n.post("/v1/resize?w=50", await solidImage(300, 200));
    expect(innocent.status).toBe(200);
    expect((await slow).status).toBe(504);
    expect(await n.metric("imgfleet_worker_restarts_total", { reason: "timeout" })).toBe(1);
    const dead = (await (await n.admin("GET", "/dead-letters")).json()) as { items: unknown[] };
    expect(dead.items).toEqual([]);
  });

  it("a job whose client left while it waited in a worker is never started", async () => {
    const n = await startNode();
    const started: string[] = [];
    poolOf(n.node).on("job-start", ({ jobId }) => started.push(jobId));
    const heavy = await heavyJob();
    const slow = n.post(heavy.path, heavy.body);
    await once(poolOf(n.node), "job-start");
    const leaving = new AbortController();
    const gone = fetch(`${n.url}/v1/resize?w=50`, {
      method: "POST",
      body: await solidImage(300, 200),
      headers: { "content-type": "image/jpeg", ...n.auth },
      signal: leaving.signal,
    }).catch(() => "aborted");
    // Its job waits behind the heavy one (in the worker's second lane if it came within the heavy job's
    // first 500 ms, else in the queue); then its client goes.
    await vi.waitFor(
      () => {
        const { depth, inFlight } = n.node.adapters.queue.stats();
        expect(depth + inFlight).toBe(2);
      },
      { timeout: 15_000 },
    );
    leaving.abort();
    expect(await gone).toBe("aborted");
    expect((await slow).status).toBe(200);
    // The worker runs jobs in order: had the abandoned job started, it would have before this one.
    expect((await n.post("/v1/resize?w=50", await solidImage(300, 200))).status).toBe(200);
    expect(started).toHaveLength(2);
    expect(await n.metric("imgfleet_jobs_expired_total")).toBe(1);
  });

  it("a cheap job is not kept waiting in a worker behind another tenant's long job", async () => {
    const n = await startNode({ workers: { count: 2 }, queue: { deadlineMs: 120_000 } });
    const light = await otherTenant(n, "light tenant");
    const small = await solidImage(300, 200);
    // Its key is known to the node before the race begins.
    expect((await light.post("/v1/resize?w=50", small)).status).toBe(200);
    const order: (string | null)[] = [];
    poolOf(n.node).on("job-start", ({ tenant }) => order.push(tenant));
    const heavy = await heavyJob();
    // Four long jobs for two workers: each worker runs one, and would queue the next behind it.
    const backlog = Array.from({ length: 4 }, () => n.post(heavy.path, heavy.body));
    await vi.waitFor(() => expect(order.length).toBeGreaterThanOrEqual(2), { timeout: 30_000 });
    const cheap = await light.post("/v1/resize?w=50", small);
    expect(cheap.status).toBe(200);
    // Served by the first worker to be free, before the long jobs that were waiting in the workers.
    expect(order.indexOf(light.id)).toBe(2);
    expect((await Promise.all(backlog)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it("a tenant looping expensive jobs does not keep another tenant's cheap jobs behind its backlog", async () => {
    const n = await startNode({ queue: { deadlineMs: 120_000 }, limits: { processingTimeoutMs: 60_000 } });
    const light = await otherTenant(n, "light tenant");
    const small = await solidImage(300, 200);
    expect((await light.post("/v1/resize?w=50", small)).status).toBe(200);
    const order: (string | null)[] = [];
    poolOf(n.node).on("job-start", ({ tenant }) => order.push(tenant));
    const heavy = await heavyJob();
    const backlog = Array.from({ length: 4 }, () => n.post(heavy.path, heavy.body));
    // Once the first long job has cost what it costs (a job's cost is known when it ends; before,
    // the queue charges the tenant's average so far), the light tenant sends two small resizes.
    expect((await Promise.race(backlog)).status).toBe(200);
    const cheap = [];
    for (let i = 0; i < 2; i++) cheap.push(await light.post("/v1/resize?w=50", small));
    expect(cheap.map((r) => r.status)).toEqual([200, 200]);
    expect((await Promise.all(backlog)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // First in first out would start all four long jobs before them; by cost, at least the last
    // one still waiting comes after them.
    const firstLight = order.indexOf(light.id);
    expect(firstLight).toBeGreaterThan(0);
    expect(order.slice(firstLight).filter((t) => t === n.tenant).length).toBeGreaterThanOrEqual(1);
  });
});
