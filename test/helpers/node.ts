import { beforeAll, onTestFinished } from "vitest";
import { createNode, type ImgfleetNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import type { RawConfig } from "../../src/config/sources.js";
import { mergeDeep } from "../../src/config/sources.js";

export interface RunningNode {
  node: ImgfleetNode;
  url: string;
  post(path: string, body: Buffer, headers?: Record<string, string>): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** Test defaults: a free port, quiet logs, one worker (the machine has two cores and suites run in pairs). */
const TEST_DEFAULTS: RawConfig = {
  server: { port: 0, host: "127.0.0.1" },
  log: { level: "silent" },
  workers: { count: 1 },
};

/** Starts a real node (HTTP on a random port, real worker processes); stopped when the test ends. */
export async function startNode(
  overrides: RawConfig = {},
  options: { stopAfter?: "test" | "manual" } = {},
): Promise<RunningNode> {
  const config = loadConfig({ env: {}, overrides: mergeDeep(TEST_DEFAULTS, overrides) });
  const node = await createNode(config);
  if (options.stopAfter !== "manual") onTestFinished(async () => void (await node.stop()));
  const url = await node.listen();
  return {
    node,
    url,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, { method: "POST", body, headers: { "content-type": "image/jpeg", ...headers } }),
    metric: (name, labels) => readMetric(url, name, labels),
  };
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
    return async () => void (await running?.node.stop());
  });
  return () => {
    if (!running) throw new Error("the shared node has not started");
    return running;
  };
}
