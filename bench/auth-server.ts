/**
 * The authenticated imgfleet of the auth phase: auth.mode=keys (metering on) on a fresh
 * data directory, set up the way an operator would (bootstrap admin key from
 * the first start's banner, a tenant, an API key with the resize scope).
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { checkWorkload, post, resizeUrl } from "./http.js";
import { type RunningServer, startImgfleet } from "./servers.js";
import type { Workload } from "./types.js";

const ADMIN_KEY_LINE = /export IMGFLEET_ADMIN_KEY=(imf_\S+)/;
const BANNER_TIMEOUT_MS = 10_000;
const KEY_VISIBLE_TIMEOUT_MS = 10_000;

/**
 * Limits far above what this machine can serve: the limiter still runs on
 * every request (its cost is part of what is measured) but never refuses one.
 */
export const UNBOUNDED_TENANT = { ratePerSecond: 100_000, burst: 100_000, maxInFlight: 10_000 };

/** Resolves with the admin key once the banner's export line goes by on stderr. */
export function adminKeyWatch() {
  let found: (key: string) => void = () => {};
  const key = new Promise<string>((resolve) => {
    found = resolve;
  });
  const onLine = (line: string) => {
    const match = ADMIN_KEY_LINE.exec(line);
    if (match?.[1]) found(match[1]);
  };
  return { key, onLine };
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** A POST to the admin API; the answer's `field` (a string) or an error with the problem's text. */
export async function adminPost(
  server: Pick<RunningServer, "url">,
  adminKey: string,
  path: string,
  body: object,
  field: string,
) {
  const res = await fetch(`${server.url}/admin/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /admin/v1${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  const value: unknown = (JSON.parse(text) as Record<string, unknown>)[field];
  if (typeof value !== "string")
    throw new Error(`POST /admin/v1${path}: no "${field}" in ${text.slice(0, 300)}`);
  return value;
}

/**
 * A new key reaches the data plane through the outbox, asynchronously: until
 * it has, the key is unknown (401). Waits for the first accepted request.
 */
async function untilKeyAccepted(server: RunningServer, workload: Workload, file: string): Promise<void> {
  const body = readFileSync(file);
  const deadline = performance.now() + KEY_VISIBLE_TIMEOUT_MS;
  let status = 0;
  while (performance.now() < deadline) {
    status = (await post(resizeUrl(server, workload), body, server.headers)).status;
    if (status !== 401) return;
    await sleep(50);
  }
  throw new Error(
    `${server.name}: the new API key was still refused (HTTP ${status}) after ${KEY_VISIBLE_TIMEOUT_MS} ms`,
  );
}

/** Started, provisioned, and answering `workload` with the expected JPEG when sent the API key. */
export async function startAuthenticatedImgfleet(workload: Workload, file: string): Promise<RunningServer> {
  const watch = adminKeyWatch();
  const server = await startImgfleet({ name: "imgfleet-auth", onStderrLine: watch.onLine });
  const adminKey = await withTimeout(
    watch.key,
    BANNER_TIMEOUT_MS,
    `${server.name}: no IMGFLEET_ADMIN_KEY line on stderr within ${BANNER_TIMEOUT_MS} ms of listening (was its data directory empty?)`,
  );
  const tenant = await adminPost(server, adminKey, "/tenants", { name: "bench", ...UNBOUNDED_TENANT }, "id");
  const body = { name: "bench", scopes: ["resize"] };
  const secret = await adminPost(server, adminKey, `/tenants/${tenant}/keys`, body, "secret");
  const authenticated = { ...server, headers: { authorization: `Bearer ${secret}` } };
  await untilKeyAccepted(authenticated, workload, file);
  await checkWorkload(authenticated, workload, file);
  return authenticated;
}
