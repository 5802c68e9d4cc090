import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { createNode, type ImgfleetNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import type { RawConfig } from "../../src/config/sources.js";
import { mergeDeep } from "../../src/config/sources.js";
import { solidImage } from "../helpers/images.js";
import { hasNats, natsForTest } from "../helpers/nats.js";
import { hasPostgres, startPostgres } from "../helpers/postgres.js";

const SECRET = "fleet-test-secret-0123456789abcdefghijklmnop";

async function fleetNode(base: RawConfig, extra: RawConfig): Promise<{ node: ImgfleetNode; url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-fleet-"));
  const config = loadConfig({ env: {}, overrides: mergeDeep(mergeDeep(base, { dataDir }), extra) });
  const node = await createNode(config);
  onTestFinished(async () => {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { node, url: await node.listen() };
}

describe.skipIf(!hasNats || !hasPostgres)(
  "a fleet in one test process: API + control node, worker node",
  () => {
    it("resizes across nodes through JetStream and HTTP, and meters the request once", async () => {
      const nats = await natsForTest(1);
      const pg = await startPostgres();
      onTestFinished(() => pg.stop());
      const base: RawConfig = {
        server: { port: 0 },
        log: { level: "silent" },
        workers: { count: 1 },
        database: { url: pg.url },
        fleet: { nats: { servers: nats.urls }, clusterSecret: SECRET, discoveryRefreshMs: 200 },
        usage: { flushIntervalMs: 50, confirmIntervalMs: 50 },
      };
      const api = await fleetNode(base, { roles: ["api", "control"], fleet: { nodeId: "api-1" } });
      const worker = await fleetNode(base, { roles: ["worker"], fleet: { nodeId: "worker-1" } });
      expect(api.node.pool).toBeNull();
      const adminKey = api.node.identity.bootstrapKey?.secret as string;
      const admin = (path: string, body?: unknown) =>
        fetch(`${api.url}/admin/v1${path}`, {
          method: body ? "POST" : "GET",
          headers: {
            authorization: `Bearer ${adminKey}`,
            ...(body ? { "content-type": "application/json" } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
        });
      const tenant = (await (await admin("/tenants", { name: "fleet" })).json()) as { id: string };
      const key = (await (await admin(`/tenants/${tenant.id}/keys`, {})).json()) as { secret: string };
      let res: Response | undefined;
      for (let i = 0; i < 100; i++) {
        res = await fetch(`${api.url}/v1/resize?w=32&format=png`, {
          method: "POST",
          body: await solidImage(200, 100),
          headers: { authorization: `Bearer ${key.secret}`, "content-type": "image/jpeg" },
        });
        if (res.status !== 401) break;
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, 100));
      }
      const r = res as Response;
      expect(r.status, await r.clone().text()).toBe(200);
      expect(r.headers.get("x-image-width")).toBe("32");
      expect(r.headers.get("server-timing")).toMatch(/fetch;dur=/);
      const nodes = (await (await admin("/nodes")).json()) as { items: { id: string; roles: string[] }[] };
      expect(nodes.items.map((n) => n.id).sort()).toEqual(["api-1", "worker-1"]);
      expect(await api.node.usage.flush(15_000)).toBe(true);
      const [row] = await api.node.adapters.db.query<{ n: number }>(
        "SELECT sum(requests)::bigint AS n FROM usage_rollups WHERE granularity = 'day' AND tenant_id = $1",
        [tenant.id],
      );
      expect(row?.n).toBe(1);
      expect(worker.node.usage.meter).toBeNull();
    }, 120_000);
  },
);
