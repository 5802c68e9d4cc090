import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, onTestFailed, onTestFinished, vi } from "vitest";
import {
  type DevFleet,
  findFleetBinaries,
  type NodeRole,
  startDevFleet,
  stopDevFleet,
} from "../../src/dev/fleet.js";
import { type ArchivedRecord, UsageArchive, utcDay } from "../../src/usage/archive.js";
import { isCI } from "./ci.js";

/**
 * What the suites that run a whole dev fleet (3 NATS servers, PostgreSQL, API,
 * worker and control nodes, HAProxy) share: the skip rule, starting and
 * removing a fleet, a resize client whose failures are data, the client-side
 * ledger the usage report is checked against, and /metrics reading.
 */

export const ROOT = join(import.meta.dirname, "../..");
/** imgfleet from source, so a test runs the code it sits next to without a build. */
const SOURCE_ENTRY = ["--import", "tsx", join(ROOT, "src/cli/main.ts")];
/** Hook budget for a fleet start; the fleet itself gets 120 s (it takes ~10 s on an idle 2-core machine). */
export const START_BUDGET_MS = 180_000;
const READY_TIMEOUT_MS = 120_000;

/**
 * Whether this machine can run a fleet. Outside CI a missing binary skips the
 * suite with a loud line naming it; CI installs them (.ci/run), so missing
 * there is a broken setup, not a reason to skip.
 */
export function hasFleetBinaries(suite: string): boolean {
  try {
    findFleetBinaries();
    return true;
  } catch (error) {
    if (isCI()) throw error;
    console.warn(`\n*** SKIPPED: ${suite} — ${(error as Error).message} ***\n`);
    return false;
  }
}

const run = promisify(execFile);

/**
 * `imgfleet <args>` from source as an operator runs it: our own IMGFLEET_*
 * variables left out, so only `env` configures it.
 */
export function imgfleet(args: string[], options: { timeoutMs: number; env?: Record<string, string> }) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_")),
  );
  return run(process.execPath, [...SOURCE_ENTRY, ...args], {
    cwd: ROOT,
    env: { ...inherited, ...options.env },
    timeout: options.timeoutMs,
    maxBuffer: 4 * 1024 * 1024,
  });
}

export interface TestFleet {
  fleet: DevFleet;
  /** The bootstrap admin key; a fleet that did not report one never reaches a test. */
  adminKey: string;
  /** How long startDevFleet took, for the suite to print. */
  startMs: number;
  /** Stops every process and removes the state directory. */
  stop(): Promise<void>;
}

/**
 * Starts a fleet from source in a fresh state directory. With `stopAfter:
 * "test"` its removal is registered before the start, so a failed start or
 * assertion cannot leak a fleet; "manual" is for beforeAll, which returns
 * `stop` as its cleanup. A failed start prints what the nodes warned about.
 */
export async function startTestFleet(
  prefix: string,
  options: { stopAfter: "test" | "manual"; roleEnv?: Partial<Record<NodeRole, Record<string, string>>> },
): Promise<TestFleet> {
  const stateDir = mkdtempSync(join(tmpdir(), prefix));
  let fleet: DevFleet | undefined;
  // stopDevFleet as well as fleet.stop: it also finds what a start that failed halfway left running.
  const stop = async () => {
    await fleet?.stop();
    await stopDevFleet(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  };
  if (options.stopAfter === "test") onTestFinished(stop);
  // A start that fails goes now; in "test" mode the stop registered above does it.
  const abandon = async () => {
    if (options.stopAfter === "manual") await stop();
  };
  const started = Date.now();
  try {
    fleet = await startDevFleet({
      stateDir,
      entry: SOURCE_ENTRY,
      cwd: ROOT,
      readyTimeoutMs: READY_TIMEOUT_MS,
      ...(options.roleEnv ? { roleEnv: options.roleEnv } : {}),
    });
  } catch (error) {
    printStartWarnings(stateDir);
    await abandon();
    throw error;
  }
  const startMs = Date.now() - started;
  if (!fleet.adminKey) {
    await abandon();
    throw new Error("the fleet did not report the bootstrap admin key");
  }
  return { fleet, adminKey: fleet.adminKey, startMs, stop };
}

/**
 * Every warning and error the nodes logged: the first lines of a start are
 * what the launcher's tail of one log leaves out.
 */
function printStartWarnings(stateDir: string): void {
  const logs = join(stateDir, "logs");
  let files: string[] = [];
  try {
    files = readdirSync(logs).filter((f) => /^(api|worker|control)-\d+\.log$/.test(f));
  } catch {
    return;
  }
  for (const file of files.sort()) {
    const lines = readFileSync(join(logs, file), "utf8")
      .split("\n")
      .filter((l) => /"level":"(warn|error|fatal)"|^imgfleet:/.test(l) && !l.includes("production needs"))
      .slice(0, 20)
      .map(describeLogLine);
    if (lines.length > 0) console.error(`----- ${file}: warnings and errors -----\n${lines.join("\n")}`);
  }
}

/** A pino line as time, message, error and the first frames of its stack: raw JSON hides the stack. */
function describeLogLine(line: string): string {
  try {
    const entry = JSON.parse(line) as {
      time?: string;
      msg?: string;
      err?: { message?: string; stack?: string };
    };
    const frames = (entry.err?.stack ?? "").split("\n").slice(1, 8).join("\n");
    return `${entry.time} ${entry.msg ?? ""}${entry.err ? ` — ${entry.err.message}\n${frames}` : ""}`;
  } catch {
    return line.slice(0, 600);
  }
}

/** On failure, the last lines of these processes' logs: the evidence. */
export function logsOnFailure(fleet: DevFleet, ...names: string[]): void {
  onTestFailed(async () => {
    for (const name of names) {
      console.error(`\n----- ${name} (last lines) -----\n${await fleet.process(name).logTail(40)}`);
    }
  });
}

/**
 * The admin API with one key. Each call is bounded (`timeoutMs`) where a
 * suite breaks the fleet on purpose, so a hung call fails the test instead of
 * eating its whole budget.
 */
export function adminClient(baseUrl: string, adminKey: string, timeoutMs?: number) {
  const request = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${baseUrl}/admin/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      ...(timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
    });

  /** A POST that must answer 201; its body parsed. */
  const created = async <T>(path: string, body: unknown): Promise<T> => {
    const response = await request("POST", path, body);
    const text = await response.text();
    expect(response.status, `POST ${path}: ${text}`).toBe(201);
    return JSON.parse(text) as T;
  };

  /** A tenant with limits no test reaches, and a resize key for it. */
  const newTenant = async (name: string) => {
    const tenant = await created<{ id: string }>("/tenants", {
      name: `${name}-${Date.now()}`,
      ratePerSecond: 10_000,
      burst: 10_000,
      maxInFlight: 1000,
    });
    const key = await created<{ id: string; secret: string }>(`/tenants/${tenant.id}/keys`, {
      scopes: ["resize"],
    });
    return { tenant: tenant.id, keyId: key.id, secret: key.secret };
  };

  return { request, created, newTenant };
}

export type AdminClient = ReturnType<typeof adminClient>;

export interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
  /** performance.now() when the request was sent and when its answer (or failure) was complete. */
  startedAt: number;
  endedAt: number;
  /** Set when the request failed before any HTTP answer. */
  error?: string;
  /** The X-Request-Id the request was sent with (the node keeps it). */
  requestId: string;
}

export const latency = (a: Answer) => Math.round(a.endedAt - a.startedAt);

/**
 * One POST /v1/resize. A network failure is status 0, never a throw: a suite
 * that kills nodes counts failures rather than stopping at the first.
 */
export async function resize(
  base: string,
  key: string,
  query: string,
  body: Buffer,
  timeoutMs = 60_000,
): Promise<Answer> {
  const startedAt = performance.now();
  const requestId = randomUUID();
  try {
    const response = await fetch(`${base}/v1/resize?${query}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "image/jpeg", "x-request-id": requestId },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    return {
      status: response.status,
      headers: response.headers,
      body: bytes,
      startedAt,
      endedAt: performance.now(),
      requestId,
    };
  } catch (error) {
    return {
      status: 0,
      headers: new Headers(),
      body: Buffer.alloc(0),
      startedAt,
      endedAt: performance.now(),
      error: (error as Error).message,
      requestId,
    };
  }
}

/** Outcome of an answer as the usage report names it; null when nothing is billed. */
function outcomeOf(a: Answer): "ok" | "client_error" | "server_error" | null {
  // HAProxy's own answers and network failures carry no request id: no API node metered them.
  if (a.status === 0 || !a.headers.get("x-request-id")) return null;
  // A key a node does not know (never issued, revoked, not arrived yet) has no tenant to bill.
  if (a.status === 401) return null;
  if (a.status < 400) return "ok";
  return a.status < 500 ? "client_error" : "server_error";
}

/** What a client saw, per outcome and per request id, to compare with the usage report and archive. */
export class Ledger {
  readonly counts = { ok: 0, client_error: 0, server_error: 0 };
  bytesOut = 0;
  /** Each billable answer by its X-Request-Id: the status and the bytes the client received. */
  readonly byRequestId = new Map<string, { status: number; bytes: number }>();
  /**
   * Requests whose connection failed without an answer. A node killed between
   * journaling an answer's usage record (always before sending it: no 200 goes
   * out unbilled) and writing it bills what its client never got; only these may be.
   */
  readonly unanswered = new Set<string>();
  add(a: Answer): Answer {
    const outcome = outcomeOf(a);
    if (a.status === 0) this.unanswered.add(a.requestId);
    if (!outcome) return a;
    this.counts[outcome]++;
    if (outcome === "ok") this.bytesOut += a.body.length;
    const id = a.headers.get("x-request-id") as string;
    if (this.byRequestId.has(id)) throw new Error(`two answers carried the request id ${id}`);
    this.byRequestId.set(id, { status: a.status, bytes: outcome === "ok" ? a.body.length : 0 });
    return a;
  }
}

/**
 * Waits until `secret` works on every API node, asked directly (each 200 is
 * recorded in `ledger`): a new key reaches the nodes through the identity
 * bucket, and a test through HAProxy must not race it.
 */
export async function untilKeyWorksEverywhere(
  fleet: DevFleet,
  secret: string,
  image: Buffer,
  ledger: Ledger,
  resizeTimeoutMs?: number,
): Promise<void> {
  for (const node of fleet.byRole("api")) {
    await vi.waitFor(
      async () => {
        const a = ledger.add(await resize(node.url, secret, "w=16&format=png", image, resizeTimeoutMs));
        expect(a.status, `${node.name}: ${a.body.toString()}`).toBe(200);
      },
      { timeout: 15_000, interval: 100 },
    );
  }
}

/** Runs `count` tasks, at most `concurrency` at a time, keeping their order. */
export async function pooled<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** Sum of the samples of `name` whose labels include `labels`, in a Prometheus exposition. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

/** A node's /metrics text; bounded, because the node asked may be the one a test just killed. */
export async function metricsOf(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  expect(response.status).toBe(200);
  return response.text();
}

/**
 * Resolves once every record each API node metered is committed to
 * PostgreSQL (every spool empty), with how long that took: only then can
 * the usage report be compared with the ledger.
 */
export async function untilSpoolsDrained(fleet: DevFleet, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  await vi.waitFor(
    async () => {
      for (const node of fleet.byRole("api")) {
        const bytes = metricValue(await metricsOf(node.url), "imgfleet_usage_spool_bytes");
        expect(bytes, `${node.name} imgfleet_usage_spool_bytes`).toBe(0);
      }
    },
    { timeout: timeoutMs, interval: 250 },
  );
  return Date.now() - started;
}

/** Requests per outcome of one tenant, from yesterday to tomorrow (a run across midnight included). */
export async function usageByOutcome(admin: AdminClient, tenant: string) {
  const day = 86_400_000;
  const from = new Date(Date.now() - day).toISOString().slice(0, 10);
  const to = new Date(Date.now() + day).toISOString().slice(0, 10);
  const response = await admin.request(
    "GET",
    `/usage?tenant=${tenant}&granularity=day&by=outcome&from=${from}&to=${to}`,
  );
  const text = await response.text();
  expect(response.status, text).toBe(200);
  const report = JSON.parse(text) as {
    rows: { outcome: string; requests: number; bytesOut: number }[];
  };
  const counts = { ok: 0, client_error: 0, server_error: 0 };
  let bytesOut = 0;
  for (const row of report.rows) {
    counts[row.outcome as keyof typeof counts] += row.requests;
    if (row.outcome === "ok") bytesOut += row.bytesOut;
  }
  return { counts, bytesOut };
}

/**
 * The raw meter records of one tenant (yesterday to tomorrow, UTC) in the
 * archive the control nodes' usage aggregator writes under its data
 * directory, each once.
 */
export async function archivedUsage(fleet: DevFleet, tenant: string): Promise<ArchivedRecord[]> {
  const day = 86_400_000;
  const days = [-day, 0, day].map((offset) => utcDay(Date.now() + offset));
  const records = new Map<string, ArchivedRecord>();
  for (const node of fleet.byRole("control")) {
    const archive = new UsageArchive(join(fleet.stateDir, "nodes", node.name, "usage", "archive"), 90);
    for (const d of days) for (const r of await archive.read(tenant, d)) records.set(`${r.b}/${r.n}`, r);
  }
  return [...records.values()];
}

/**
 * Every request the client got an answer for is billed exactly once, under
 * its request id, with the status and (for a success) the bytes the client
 * received; nothing else is billed to the tenant. Waits for the archive,
 * which the aggregator writes right after counting a batch.
 */
export async function expectBilledPerRequest(
  fleet: DevFleet,
  tenant: string,
  ledger: Ledger,
  timeoutMs = 60_000,
): Promise<{ status: number; bytes: number }[]> {
  let records: ArchivedRecord[] = [];
  await vi
    .waitFor(
      async () => {
        records = await archivedUsage(fleet, tenant);
        expect(records.length).toBeGreaterThanOrEqual(ledger.byRequestId.size);
      },
      { timeout: timeoutMs, interval: 250 },
    )
    .catch(() => {});
  const billed = new Map<string, { status: number; bytes: number; times: number }>();
  for (const r of records) {
    const seen = billed.get(r.id);
    billed.set(r.id, { status: r.status, bytes: r.outBytes, times: (seen?.times ?? 0) + 1 });
  }
  const expected = new Map([...ledger.byRequestId].map(([id, a]) => [id, { ...a, times: 1 }]));
  const unanswered = [...billed].filter(([id]) => ledger.unanswered.has(id));
  for (const [id, record] of unanswered) {
    expect(record.times, `request ${id} billed more than once`).toBe(1);
    billed.delete(id);
  }
  expect(Object.fromEntries(billed), "archived meter records by request id").toEqual(
    Object.fromEntries(expected),
  );
  return unanswered.map(([, record]) => record);
}
