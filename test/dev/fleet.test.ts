import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import { type DevFleetStatus, findFleetBinaries, stopDevFleet } from "../../src/dev/fleet.js";
import { isAlive } from "../../src/dev/processes.js";

/**
 * Smoke test of a whole dev fleet with real imgfleet nodes, through the CLI
 * as a developer runs it: `up`, `status --json`, a resize through HAProxy,
 * `down`, and every process gone.
 */

const ROOT = join(import.meta.dirname, "../..");
const run = promisify(execFile);
const START_BUDGET_MS = 240_000;

const hasBinaries = (() => {
  try {
    findFleetBinaries();
    return true;
  } catch (error) {
    // CI installs them (.ci/run): missing there is a broken setup, not a reason to skip.
    if (process.env.CI === "true") throw error;
    console.warn(`\n*** SKIPPED: dev fleet suite — ${(error as Error).message} ***\n`);
    return false;
  }
})();

/** `imgfleet <args>` from source under tsx, as a developer runs it; IMGFLEET_* from our environment left out. */
function cli(args: string[], timeoutMs = START_BUDGET_MS) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_")));
  return run(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
    cwd: ROOT,
    env,
    timeout: timeoutMs,
    maxBuffer: 4 * 1024 * 1024,
  });
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
      const exports = /export IMGFLEET_URL=(\S+) IMGFLEET_ADMIN_KEY=(\S+)/.exec(up.stdout);
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
  const admin = (path: string, body: unknown) =>
    fetch(`${url}/admin/v1${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const created = async (path: string, body: unknown) => {
    const response = await admin(path, body);
    const text = await response.text();
    expect(response.status, `POST ${path}: ${text}`).toBe(201);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const tenant = await created("/tenants", { name: `smoke-${Date.now()}` });
  const key = await created(`/tenants/${String(tenant.id)}/keys`, { scopes: ["resize"] });
  // A new key reaches every API node through the identity bucket within seconds.
  const deadline = Date.now() + 15_000;
  let response: Response;
  for (;;) {
    response = await fetch(`${url}/v1/resize?w=100&format=webp`, {
      method: "POST",
      headers: { authorization: `Bearer ${String(key.secret)}`, "content-type": "image/jpeg" },
      body: readFileSync(join(ROOT, "examples/sample.jpg")),
    });
    if (response.status !== 401 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(response.status, await response.clone().text()).toBe(200);
  expect(response.headers.get("content-type")).toBe("image/webp");
}
