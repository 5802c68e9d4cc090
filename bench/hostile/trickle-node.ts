/**
 * The node under test of trickle.ts, in a process of its own (so the
 * attack and the load do not share its event loop): an embedded node
 * from the sources, with three tenants. Prints one JSON line
 * `{ url, victim, attackers }` (API keys), then runs until SIGTERM.
 * argv[2]: config overrides as JSON.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import { mergeDeep, type RawConfig } from "../../src/config/sources.js";

const BASE: RawConfig = {
  server: { port: 0, host: "127.0.0.1" },
  log: { level: "warn" },
  // Tenants' own rate limits are not what is measured.
  auth: { tenantDefaults: { ratePerSecond: 100_000, burst: 100_000, maxInFlight: 1000 } },
};

async function adminPost(
  url: string,
  adminKey: string,
  path: string,
  body: unknown,
): Promise<Record<string, string>> {
  const res = await fetch(`${url}/admin/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, string>;
}

async function tenantKey(url: string, adminKey: string, name: string): Promise<string> {
  const tenant = await adminPost(url, adminKey, "/tenants", { name });
  const key = await adminPost(url, adminKey, `/tenants/${tenant.id}/keys`, { name, scopes: ["resize"] });
  return key.secret as string;
}

const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-trickle-"));
const overrides = JSON.parse(process.argv[2] ?? "{}") as RawConfig;
const node = await createNode(loadConfig({ env: {}, overrides: mergeDeep(BASE, { dataDir }, overrides) }));
const stop = async () => {
  await node.stop();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
const url = await node.listen();
const adminKey = node.identity.bootstrapKey?.secret;
if (!adminKey) throw new Error("a fresh data directory should have produced a bootstrap admin key");
const victim = await tenantKey(url, adminKey, "victim");
const attackers = [
  await tenantKey(url, adminKey, "trickler one"),
  await tenantKey(url, adminKey, "trickler two"),
];
console.log(JSON.stringify({ url, victim, attackers }));
