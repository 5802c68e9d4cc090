import { once } from "node:events";
import sharp from "sharp";
import { describe, expect, it, vi } from "vitest";
import type { ImgfleetNode } from "../../src/app/node.js";
import { utcDay } from "../../src/usage/archive.js";
import { noiseImage, solidImage } from "../helpers/images.js";
import { poolOf, startNode } from "../helpers/node.js";

/** Kills each worker the moment it is handed a job, `times` times. */
function killOnJobStart(node: ImgfleetNode, times: number): number[] {
  const killed: number[] = [];
  poolOf(node).on("job-start", ({ pid }) => {
    if (killed.length >= times) return;
    killed.push(pid);
    process.kill(pid, "SIGKILL");
  });
  return killed;
}

async function problemOf(res: Response) {
  return (await res.json()) as { type: string; status: number; detail: string };
}

describe("worker supervision", () => {
  it("a worker killed mid-job: the job is redelivered, the client gets its image, the worker is replaced", async () => {
    const { node, post, metric } = await startNode({ queue: { maxAttempts: 2 } });
    const killed = killOnJobStart(node, 1);
    const res = await post("/v1/resize?w=300&blur=20", await noiseImage(1500));
    expect(res.status).toBe(200);
    expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(300);
    expect(killed).toHaveLength(1);
    const pids = poolOf(node)
      .workers()
      .map((w) => w.pid);
    expect(pids).toHaveLength(1);
    expect(pids).not.toContain(killed[0]);
    expect(await metric("imgfleet_worker_restarts_total", { reason: "crash" })).toBe(1);
    expect(await metric("imgfleet_jobs_redelivered_total")).toBe(1);
  });

  it("a job that kills every worker it reaches is answered 502 worker-crashed, and the next request is served", async () => {
    const { node, post, admin, tenant } = await startNode({ queue: { maxAttempts: 2 } });
    const killed = killOnJobStart(node, 2);
    const res = await post("/v1/resize?w=100", await solidImage(400, 300));
    expect(res.status).toBe(502);
    const problem = await problemOf(res);
    expect(problem.type).toBe("/problems/worker-crashed");
    expect(problem.detail).toContain("2 attempts");
    expect(killed).toHaveLength(2);
    // Given up for good: the operator finds it among the dead letters, with why and how often it was tried.
    const dead = (await (await admin("GET", "/dead-letters")).json()) as {
      items: { tenant: string; reason: string; attempts: number; detail: string }[];
    };
    expect(dead.items).toHaveLength(1);
    expect(dead.items[0]).toMatchObject({ tenant, reason: "worker-crashed", attempts: 2 });
    const next = await post("/v1/resize?w=100", await solidImage(400, 300));
    expect(next.status).toBe(200);
  });

  it("a worker whose memory passed workers.maxRssMb is recycled after its job, which still succeeds", async () => {
    const { node, post, metric } = await startNode({ workers: { maxRssMb: 1 } });
    const [before] = poolOf(node)
      .workers()
      .map((w) => w.pid);
    const recycled = once(poolOf(node), "restart");
    const res = await post("/v1/resize?w=100", await solidImage(800, 600));
    expect(res.status).toBe(200);
    const [event] = (await recycled) as [{ pid: number; reason: string }];
    expect(event).toEqual({ pid: before, reason: "memory" });
    const next = await post("/v1/resize?w=100", await solidImage(800, 600));
    expect(next.status).toBe(200);
    expect(
      poolOf(node)
        .workers()
        .map((w) => w.pid),
    ).not.toContain(before);
    expect(await metric("imgfleet_worker_restarts_total", { reason: "memory" })).toBeGreaterThanOrEqual(1);
  });

  it("an image that outlives limits.processingTimeoutMs is answered 504 and its worker replaced", async () => {
    const { node, post, metric } = await startNode({ limits: { processingTimeoutMs: 300 } });
    const [before] = poolOf(node)
      .workers()
      .map((w) => w.pid);
    const res = await post("/v1/resize?blur=100", await noiseImage(3000));
    expect(res.status).toBe(504);
    const problem = await problemOf(res);
    expect(problem.type).toBe("/problems/timeout");
    expect(problem.detail).toContain("300 ms");
    expect(await metric("imgfleet_worker_restarts_total", { reason: "timeout" })).toBe(1);
    const next = await post("/v1/resize?w=50", await solidImage(200, 100));
    expect(next.status).toBe(200);
    expect(
      poolOf(node)
        .workers()
        .map((w) => w.pid),
    ).not.toContain(before);
  });

  it("a job whose request deadline comes while it runs is stopped there and billed, instead of running on for nobody", async () => {
    const { node, post, metric, tenant } = await startNode({
      queue: { deadlineMs: 1000 },
      usage: { flushIntervalMs: 50, confirmIntervalMs: 20 },
    });
    const [before] = poolOf(node)
      .workers()
      .map((w) => w.pid);
    // ~3.5 s of blur on an idle core (49 MP, σ=100) against a 1 s deadline; the 10 s processing limit is not reached.
    const res = await post("/v1/resize?blur=100", await solidImage(7000, 7000));
    expect(res.status).toBe(504);
    expect((await problemOf(res)).type).toBe("/problems/timeout");
    expect(await metric("imgfleet_worker_restarts_total", { reason: "timeout" })).toBe(1);
    expect(await node.usage.flush(15_000)).toBe(true);
    const archived = await node.usage.archive.read(tenant, utcDay(Date.now()));
    const record = archived.find((r) => r.id === res.headers.get("x-request-id"));
    expect(record?.cpuMs).toBeGreaterThan(0);
    // Replaced (a request now would have too little of its 1 s deadline left on a busy machine to assert on).
    await vi.waitFor(
      () => {
        const pids = poolOf(node)
          .workers()
          .map((w) => w.pid);
        expect(pids).toHaveLength(1);
        expect(pids).not.toContain(before);
      },
      { timeout: 15_000 },
    );
  });
});
