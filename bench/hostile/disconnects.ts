/**
 * Issue 13, "10,000 requests of which 30% disconnect at random moments
 * (before, during and after the upload): afterwards the in-flight gauge is
 * 0, every tenant is served, and usage equals what clients received".
 *
 * An embedded node from the sources, in this process, with several
 * tenants; raw TCP clients (disconnect-load.ts, the same code
 * test/api/disconnects.test.ts runs at 1,500) upload small generated
 * images, and 30% of them leave right after their headers, part-way
 * through their body, or while their job runs. Prints a table per tenant
 * and one JSON line; exits 1 when the gauge or staging is not back to 0,
 * a tenant was not served (during the load or after it), usage differs
 * from what clients received (200s and bytes out), or a client that left
 * was counted as a server error.
 *
 *   npx tsx bench/hostile/disconnects.ts [--quick] [--requests N]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { createNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import { type AfterLoad, afterLoad, type LoadTenant, runDisconnectLoad } from "./disconnect-load.js";

const QUICK = process.argv.includes("--quick");
const REQUESTS = Number(argValue("--requests") ?? (QUICK ? 1000 : 10_000));
const TENANTS = 6;
const CONCURRENCY = 32;
const LEAVE_SHARE = 0.3;

function argValue(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function noise(side: number): Promise<Buffer> {
  const create = {
    width: side,
    height: side,
    channels: 3 as const,
    background: "#808080",
    noise: { type: "gaussian" as const, mean: 128, sigma: 50 },
  };
  return sharp({ create }).jpeg().toBuffer();
}

async function adminPost(
  url: string,
  key: string,
  path: string,
  body: unknown,
): Promise<Record<string, string>> {
  const res = await fetch(`${url}/admin/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, string>;
}

/** Every check of the issue, by name: true when it held. */
function checksOf(after: AfterLoad): Record<string, boolean> {
  const all = (test: (t: AfterLoad["tenants"][number]) => boolean) => after.tenants.every(test);
  return {
    inFlightZero: after.inFlight === 0,
    stagingZero: after.stagingBytes === 0,
    usageFlushed: after.usageFlushed,
    everyTenantServed: all((t) => t.receivedOk > 0 && t.servedAfter === 200),
    usageEqualsReceived: all((t) => t.usageOk === t.receivedOk && t.usageBytesOut === t.receivedBytes),
    noServerErrors: all((t) => t.usageServerErrors === 0),
  };
}

function printTable(after: AfterLoad): void {
  const header = [
    "tenant",
    "200s received",
    "200s in usage",
    "bytes received",
    "bytes in usage",
    "client errors",
    "server errors",
    "after",
  ];
  const rows = after.tenants.map((t) => [
    t.tenant,
    t.receivedOk,
    t.usageOk,
    t.receivedBytes,
    t.usageBytesOut,
    t.usageClientErrors,
    t.usageServerErrors,
    t.servedAfter,
  ]);
  console.log(header.join("\t"));
  for (const row of rows) console.log(row.join("\t"));
}

const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-disconnects-"));
const config = loadConfig({
  env: {},
  overrides: {
    dataDir,
    server: { port: 0, host: "127.0.0.1" },
    log: { level: "warn" },
    usage: { flushIntervalMs: 200 },
    auth: { tenantDefaults: { ratePerSecond: 100_000, burst: 100_000, maxInFlight: 8 } },
  },
});
const node = await createNode(config);
let failed = true;
try {
  const url = await node.listen();
  const adminKey = node.identity.bootstrapKey?.secret as string;
  const tenants: LoadTenant[] = [];
  for (let i = 0; i < TENANTS; i++) {
    const tenant = await adminPost(url, adminKey, "/tenants", { name: `disconnects ${i}` });
    const key = await adminPost(url, adminKey, `/tenants/${tenant.id}/keys`, { scopes: ["resize"] });
    tenants.push({ id: tenant.id as string, key: key.secret as string });
  }
  const images = await Promise.all([48, 64, 80, 96].map(noise));
  const started = performance.now();
  const results = await runDisconnectLoad({
    url,
    tenants,
    images,
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    leaveShare: LEAVE_SHARE,
    seed: 13,
  });
  const seconds = (performance.now() - started) / 1000;
  const left = { before: 0, during: 0, after: 0 };
  for (const r of results) if (r.status === null && r.leave !== "none") left[r.leave] += 1;
  const after = await afterLoad(node, url, tenants, results, images[0] as Buffer);
  printTable(after);
  const checks = checksOf(after);
  failed = !Object.values(checks).every(Boolean);
  console.log(
    `${REQUESTS} requests in ${seconds.toFixed(1)} s; clients that left without an answer: ${left.before} before, ${left.during} during, ${left.after} after their upload; gauge ${after.inFlight}, staging ${after.stagingBytes} B: ${failed ? "FAIL" : "pass"}`,
  );
  console.log(
    JSON.stringify({
      bench: "disconnects",
      requests: REQUESTS,
      seconds,
      left,
      ...after,
      checks,
      pass: !failed,
    }),
  );
} finally {
  await node.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
