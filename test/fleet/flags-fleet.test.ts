import { describe, expect, it } from "vitest";
import { adminClient, hasFleetBinaries, logsOnFailure, startTestFleet } from "../helpers/fleet.js";
import { solidImage } from "../helpers/images.js";

/**
 * A flag changed through the load balancer reaches every API node of a real
 * fleet (3 NATS servers, PostgreSQL, 2 API nodes, workers, control, HAProxy)
 * through the replicated flags bucket, without a restart. Each node is
 * asked directly how *it* evaluates the flag, and the delay is printed.
 */

/** The fleet itself gets 120 s to start (about 10 s on an idle 2-core machine); the rest is the test. */
const BUDGET_MS = 240_000;
/** "Within seconds": a watch delivers in milliseconds; this bound only keeps a broken fleet from hanging. */
const PROPAGATION_BOUND_MS = 15_000;

const hasBinaries = hasFleetBinaries("fleet flags suite");

interface Evaluation {
  flag: string;
  tenant: string;
  value: boolean;
  reason: string;
  node: string;
}

/** An admin call read to the end, so a failed expectation can show the body. */
async function call(base: string, key: string, method: string, path: string, body?: unknown) {
  const response = await adminClient(base, key, 10_000).request(method, path, body);
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/**
 * Polls one node until it evaluates the flag to `value` for `tenant`;
 * resolves with the node's id and the milliseconds since `since`.
 */
async function untilNodeSees(
  nodeUrl: string,
  key: string,
  tenant: string,
  value: boolean,
  since: number,
): Promise<{ node: string; ms: number; reason: string }> {
  const deadline = since + PROPAGATION_BOUND_MS;
  let last = "";
  for (;;) {
    const answer = await call(nodeUrl, key, "GET", `/flags/avif-auto?tenant=${tenant}`).catch(
      (error: Error) => ({ status: 0, text: error.message, json: () => ({}) }),
    );
    last = answer.text;
    if (answer.status === 200) {
      const e = answer.json() as unknown as Evaluation;
      if (e.value === value) return { node: e.node, ms: Date.now() - since, reason: e.reason };
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${nodeUrl} did not see avif-auto=${value} within ${PROPAGATION_BOUND_MS} ms; last: ${last}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(!hasBinaries)("feature flags across a dev fleet", () => {
  it(
    "a change made through HAProxy reaches every API node within seconds, and so does its removal",
    async () => {
      const { fleet, adminKey } = await startTestFleet("imgfleet-flags-fleet-", { stopAfter: "test" });
      logsOnFailure(fleet, ...fleet.byRole("api").map((p) => p.name));
      const apiNodes = fleet.byRole("api");
      expect(apiNodes.length).toBe(2);

      const created = await call(fleet.url, adminKey, "POST", "/tenants", { name: `flags-${Date.now()}` });
      expect(created.status, created.text).toBe(201);
      const tenant = String(created.json().id);
      // Every node starts with the built-in default, off (and the admin key works on each).
      for (const p of apiNodes) await untilNodeSees(p.url, adminKey, tenant, false, Date.now());

      const setAt = Date.now();
      const set = await call(fleet.url, adminKey, "PUT", `/flags/avif-auto/tenants/${tenant}`, {
        enabled: true,
      });
      expect(set.status, set.text).toBe(200);
      const seen = await Promise.all(
        apiNodes.map((p) => untilNodeSees(p.url, adminKey, tenant, true, setAt)),
      );
      expect(new Set(seen.map((s) => s.node)).size).toBe(apiNodes.length);
      for (const s of seen) expect(s.reason).toBe("tenant");
      console.info(
        `flag set through HAProxy: ${seen.map((s, i) => `${apiNodes[i]?.name} (${s.node}) saw it after ${s.ms} ms`).join(", ")}`,
      );

      const unsetAt = Date.now();
      const unset = await call(fleet.url, adminKey, "DELETE", `/flags/avif-auto/tenants/${tenant}`);
      expect(unset.status, unset.text).toBe(200);
      const gone = await Promise.all(
        apiNodes.map((p) => untilNodeSees(p.url, adminKey, tenant, false, unsetAt)),
      );
      console.info(
        `override removed: ${gone.map((s, i) => `${apiNodes[i]?.name} after ${s.ms} ms`).join(", ")}`,
      );

      // And the switch it exists for, through the load balancer: a full rollout makes format=auto answer AVIF.
      const rollout = await call(fleet.url, adminKey, "PUT", "/flags/avif-auto", { percentage: 100 });
      expect(rollout.status, rollout.text).toBe(200);
      await Promise.all(apiNodes.map((p) => untilNodeSees(p.url, adminKey, tenant, true, Date.now())));
      const key = await call(fleet.url, adminKey, "POST", `/tenants/${tenant}/keys`, { scopes: ["resize"] });
      expect(key.status, key.text).toBe(201);
      const secret = String(key.json().secret);
      const image = await solidImage(64, 64);
      const types = new Set<string>();
      const deadline = Date.now() + PROPAGATION_BOUND_MS;
      // Two requests or more: HAProxy alternates, so both API nodes answer (a new key may take a moment to reach both).
      while (types.size === 0 || (types.has("401") && Date.now() < deadline)) {
        types.clear();
        for (let i = 0; i < 2; i++) {
          const response = await fetch(`${fleet.url}/v1/resize?w=32&format=auto`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${secret}`,
              "content-type": "image/jpeg",
              accept: "image/avif,image/webp,*/*",
            },
            body: image,
            signal: AbortSignal.timeout(60_000),
          });
          await response.arrayBuffer();
          types.add(
            response.status === 200 ? (response.headers.get("content-type") ?? "") : String(response.status),
          );
        }
        if (types.has("401")) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect([...types]).toEqual(["image/avif"]);

      // The support report of a fleet names the broker and PostgreSQL versions and every node, never the key.
      const report = await fetch(`${fleet.url}/admin/v1/report`, {
        headers: { authorization: `Bearer ${adminKey}` },
      }).then((r) => r.text());
      expect(report).toMatch(/\| nats-server \| \d+\.\d+\.\d+ \|/);
      expect(report).toMatch(/\| database \(postgres\) \| PostgreSQL \d+/);
      for (const p of fleet.processes.filter((p) => ["api", "worker", "control"].includes(p.role))) {
        expect(report).toContain(`| ${p.name} |`);
      }
      expect(report).not.toContain(secret);
      expect(report).not.toContain(adminKey);
      expect(report).not.toContain(fleet.clusterSecret);
    },
    BUDGET_MS,
  );
});
