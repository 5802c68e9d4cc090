import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { beforeAll, onTestFinished } from "vitest";
import { createNode, type ImgfleetNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import type { RawConfig } from "../../src/config/sources.js";
import { mergeDeep } from "../../src/config/sources.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

export interface RunningNode {
  node: ImgfleetNode;
  url: string;
  /** The admin key the first start created. */
  adminKey: string;
  /** A tenant made for the test, with an API key holding every scope. */
  tenant: string;
  apiKey: string;
  /** `Authorization` header with the tenant's API key. */
  auth: Record<string, string>;
  /** POST with the tenant's API key (overridable through `headers`). */
  post(path: string, body: Buffer, headers?: Record<string, string>): Promise<Response>;
  /** A JSON call to the admin API with the admin key. */
  admin(method: string, path: string, body?: unknown, key?: string): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Stops the node and removes its data directory. */
  stop(): Promise<void>;
}

/** Test defaults: a free port, quiet logs, one worker (the machine has two cores and suites run in pairs). */
const TEST_DEFAULTS: RawConfig = {
  server: { port: 0, host: "127.0.0.1" },
  log: { level: "silent" },
  workers: { count: 1 },
  // Generous, so suites about resizing are never rate limited by accident.
  auth: { tenantDefaults: { ratePerSecond: 10_000, burst: 10_000, maxInFlight: 1000 } },
};

/** Starts a real node (HTTP on a random port, real worker processes); stopped when the test ends. */
export async function startNode(
  overrides: RawConfig = {},
  options: { stopAfter?: "test" | "manual"; logger?: Logger } = {},
): Promise<RunningNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-test-"));
  const config = loadConfig({
    env: {},
    overrides: mergeDeep(mergeDeep(TEST_DEFAULTS, { dataDir }), overrides),
  });
  const node = await createNode(config, { logger: options.logger });
  const cleanup = async () => {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  if (options.stopAfter !== "manual") onTestFinished(cleanup);
  const url = await node.listen();
  const adminKey = node.identity.bootstrapKey?.secret;
  if (!adminKey) throw new Error("a fresh data directory should have produced a bootstrap admin key");
  const admin = (method: string, path: string, body?: unknown, key = adminKey) =>
    adminCall(url, key, method, path, body);
  const tenant = (await (await admin("POST", "/tenants", { name: "test tenant" })).json()) as { id: string };
  const issued = await admin("POST", `/tenants/${tenant.id}/keys`, {
    name: "test",
    scopes: ["resize", "jobs", "usage:read"],
  });
  const apiKey = ((await issued.json()) as { secret: string }).secret;
  const auth = { authorization: `Bearer ${apiKey}` };
  return {
    node,
    url,
    adminKey,
    tenant: tenant.id,
    apiKey,
    auth,
    admin,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, {
        method: "POST",
        body,
        headers: { "content-type": "image/jpeg", ...auth, ...headers },
      }),
    metric: (name, labels) => readMetric(url, name, labels),
    stop: cleanup,
  };
}

/** A JSON request to `/admin/v1` with the given admin key. */
export function adminCall(
  url: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${url}/admin/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** One sample's value from /metrics, 0 when the series does not exist yet. */
export async function readMetric(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(" ");
    if (series === undefined || value === undefined) continue;
    const base = series.split("{")[0];
    if (base !== name) continue;
    if (wanted.every((w) => series.includes(w))) return Number(value);
  }
  return 0;
}

/** A node shared by every test of a file: started in beforeAll, stopped by that hook's cleanup. */
export function useNode(overrides: RawConfig = {}): () => RunningNode {
  let running: RunningNode | undefined;
  beforeAll(async () => {
    running = await startNode(overrides, { stopAfter: "manual" });
    return async () => void (await running?.stop());
  });
  return () => {
    if (!running) throw new Error("the shared node has not started");
    return running;
  };
}

/** The node's worker pool; every test node has the worker role. */
export function poolOf(node: ImgfleetNode): WorkerPool {
  if (!node.pool) throw new Error("this node has no worker role");
  return node.pool;
}
