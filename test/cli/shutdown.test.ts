import { describe, expect, it, vi } from "vitest";
import { startCliServer } from "../helpers/cli-server.js";
import { noiseImage } from "../helpers/images.js";

async function busyWorkers(url: string): Promise<number> {
  const ready = (await (await fetch(`${url}/readyz`)).json()) as { workers: { busy: number } };
  return ready.workers.busy;
}

describe("graceful shutdown on SIGTERM", () => {
  it("finishes in-flight requests, refuses new ones, and exits 0", async () => {
    const server = await startCliServer(["--workers", "1"]);
    const key = await server.tenantKey();
    const inFlight = fetch(`${server.url}/v1/resize?blur=60`, {
      method: "POST",
      body: await noiseImage(2500),
      headers: { "content-type": "image/jpeg", authorization: `Bearer ${key}` },
    });
    await vi.waitFor(async () => expect(await busyWorkers(server.url)).toBe(1), { timeout: 10_000 });
    server.child.kill("SIGTERM");
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    expect(await server.exited).toBe(0);
    expect(server.logs.some((l) => l.includes("stopped cleanly"))).toBe(true);
  });

  it("exits 1 and says so when in-flight work outlives server.shutdownGraceMs", async () => {
    const server = await startCliServer(["--workers", "1"], { IMGFLEET_SERVER__SHUTDOWN_GRACE_MS: "200" });
    const key = await server.tenantKey();
    const inFlight = fetch(`${server.url}/v1/resize?blur=100`, {
      method: "POST",
      body: await noiseImage(3000),
      headers: { "content-type": "image/jpeg", authorization: `Bearer ${key}` },
    }).then(
      (r) => r.status,
      () => "connection closed",
    );
    await vi.waitFor(async () => expect(await busyWorkers(server.url)).toBe(1), { timeout: 10_000 });
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(1);
    expect(await inFlight).toBe("connection closed");
    expect(server.logs.some((l) => l.includes("did not finish within server.shutdownGraceMs"))).toBe(true);
  });
});
