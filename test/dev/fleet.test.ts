import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { type DevFleetStatus, stopDevFleet } from "../../src/dev/fleet.js";
import { isAlive } from "../../src/dev/processes.js";
import { adminClient, hasFleetBinaries, imgfleet, ROOT } from "../helpers/fleet.js";

/**
 * Smoke test of a whole dev fleet with real imgfleet nodes, through the CLI
 * as a developer runs it: `up`, `status --json`, a resize through HAProxy,
 * `down`, and every process gone.
 */

const START_BUDGET_MS = 240_000;

const hasBinaries = hasFleetBinaries("dev fleet suite");

/** `imgfleet <args>` from source under tsx, as a developer runs it. */
function cli(args: string[], timeoutMs = START_BUDGET_MS) {
  return imgfleet(args, { timeoutMs });
}

describe.skipIf(!hasBinaries)("imgfleet dev fleet (full)", () => {
  it(
    "comes up ready, resizes through the load balancer, and goes down leaving no process",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "imgfleet-devfleet-"));
      onTestFinished(async () => {
        await stopDevFleet(dir);
        rmSync(dir, { recursive: true, force: true });
      });

      const up = await cli(["dev", "fleet", "up", "--dir", dir]);
      // The two export lines a user pastes, as printed.
      const exports = /export IMGFLEET_URL=(\S+)\s+export IMGFLEET_ADMIN_KEY=(\S+)/.exec(up.stdout);
      expect(exports, `${up.stdout}\n${up.stderr}`).not.toBeNull();
      const [, url = "", adminKey = ""] = exports ?? [];
      expect(adminKey).toMatch(/^imf_/);

      const { stdout } = await cli(["dev", "fleet", "status", "--dir", dir, "--json"], 30_000);
      const status = JSON.parse(stdout) as DevFleetStatus;
      expect(status.url).toBe(url);
      expect(status.processes.map((p) => p.name).sort()).toEqual(
        [
          "api-1",
          "api-2",
          "control-1",
          "haproxy",
          "nats-1",
          "nats-2",
          "nats-3",
          "postgres",
          "worker-1",
          "worker-2",
        ].sort(),
      );
      expect(status.processes.filter((p) => !p.alive || !p.ready)).toEqual([]);

      await expectResizeThrough(url, adminKey);

      const down = await cli(["dev", "fleet", "down", "--dir", dir], 60_000);
      expect(down.stdout).toMatch(/haproxy/);
      for (const p of status.processes)
        expect(isAlive(p.pid, p.startTime), `${p.name} pid ${p.pid}`).toBe(false);
    },
    START_BUDGET_MS + 60_000,
  );
});

/** A tenant, a key, and one resize, all through HAProxy. */
async function expectResizeThrough(url: string, adminKey: string): Promise<void> {
  const admin = adminClient(url, adminKey);
  const tenant = await admin.created<{ id: string }>("/tenants", { name: `smoke-${Date.now()}` });
  const key = await admin.created<{ secret: string }>(`/tenants/${tenant.id}/keys`, { scopes: ["resize"] });
  // A new key reaches every API node through the identity bucket within seconds.
  const deadline = Date.now() + 15_000;
  let response: Response;
  for (;;) {
    response = await fetch(`${url}/v1/resize?w=100&format=webp`, {
      method: "POST",
      headers: { authorization: `Bearer ${key.secret}`, "content-type": "image/jpeg" },
      body: readFileSync(join(ROOT, "examples/sample.jpg")),
    });
    if (response.status !== 401 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(response.status, await response.clone().text()).toBe(200);
  expect(response.headers.get("content-type")).toBe("image/webp");
}
