import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { VERSION } from "../../src/app/version.js";
import { ReportSanitiser, reduceUrls, secretsOf } from "../../src/report/sanitise.js";
import type { ReportSources } from "../../src/report/sources.js";
import { buildSupportReport } from "../../src/report/support-report.js";
import { solidImage } from "../helpers/images.js";
import { type RunningNode, startNode } from "../helpers/node.js";

/**
 * The support report must be safe to send once an administrator has read
 * it: a node with a distinctively named tenant, keys, usage, a flag
 * override, a signed webhook and a cluster secret produces a report, and the
 * report is searched for every one of those secrets and names.
 */

const ROOT = join(import.meta.dirname, "../..");
const token = (prefix: string) => `${prefix}-${randomBytes(18).toString("base64url")}`;

const TENANT_NAME = `Zebulon Quartzworks ${randomBytes(3).toString("hex")}`;
const CLUSTER_SECRET = token("cluster-secret");
const WEBHOOK_SECRET = token("webhook-signing");
const WEBHOOK_PATH = `/services/T0${randomBytes(6).toString("hex")}/B0/${randomBytes(12).toString("hex")}`;
// A closed local port: nothing is ever delivered anywhere.
const WEBHOOK_URL = `https://127.0.0.1:9${WEBHOOK_PATH}`;

interface Setup {
  running: RunningNode;
  tenantId: string;
  tenantKey: string;
  report: string;
  contentType: string | null;
}

let setup: Setup;

async function ok(response: Response, status = 200): Promise<unknown> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as unknown;
}

beforeAll(async () => {
  const running = await startNode(
    {
      fleet: { clusterSecret: CLUSTER_SECRET },
      ops: { webhooks: [{ name: "pager", url: WEBHOOK_URL, kind: "slack", secret: WEBHOOK_SECRET }] },
      usage: { flushIntervalMs: 50, confirmIntervalMs: 50 },
    },
    { stopAfter: "manual" },
  );
  try {
    setup = await prepare(running);
  } catch (error) {
    await running.stop();
    throw error;
  }
  return async () => void (await running.stop());
}, 60_000);

/** A tenant with keys, usage, a flag override, an event and a dead letter; then the report. */
async function prepare(running: RunningNode): Promise<Setup> {
  const admin = running.admin;
  const tenant = (await ok(await admin("POST", "/tenants", { name: TENANT_NAME }), 201)) as { id: string };
  const key = (await ok(await admin("POST", `/tenants/${tenant.id}/keys`, { name: TENANT_NAME }), 201)) as {
    secret: string;
  };
  for (let i = 0; i < 2; i++) {
    const res = await running.post("/v1/resize?w=16&format=webp", await solidImage(32, 32), {
      authorization: `Bearer ${key.secret}`,
    });
    expect(res.status).toBe(200);
  }
  await untilUsage(running, tenant.id, 2);
  await ok(await admin("PUT", `/flags/avif-auto/tenants/${tenant.id}`, { enabled: true }));
  await running.node.ops.events.record("sweep", `test: a message that names ${TENANT_NAME} and ${tenant.id}`);
  await running.node.adapters.db.query(
    `INSERT INTO dead_letters (job_id, tenant_id, worker_node, staged_on, reason, detail, attempts, spec)
     VALUES ('job-1', $1, 'local', 'local', 'worker-crashed', $2, 2, '{}')`,
    [tenant.id, `crashed on an image of ${TENANT_NAME}`],
  );
  const response = await admin("GET", "/report");
  const report = await response.text();
  expect(response.status, report).toBe(200);
  return {
    running,
    tenantId: tenant.id,
    tenantKey: key.secret,
    report,
    contentType: response.headers.get("content-type"),
  };
}

/** Waits (bounded) until the aggregator has committed the tenant's requests to the daily rollups. */
async function untilUsage(running: RunningNode, tenantId: string, requests: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const usage = (await ok(await running.admin("GET", `/usage?tenant=${tenantId}&granularity=day`))) as {
      totals: { requests: number };
    };
    if (usage.totals.requests >= requests) return;
    if (Date.now() > deadline)
      throw new Error(`usage shows ${usage.totals.requests} of ${requests} requests`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every way a secret could leak: whole, in parts, case-folded. */
function expectAbsent(report: string, secrets: Record<string, string>): void {
  const folded = report.toLowerCase();
  for (const [what, secret] of Object.entries(secrets)) {
    expect(folded.includes(secret.toLowerCase()), `the report contains the ${what}`).toBe(false);
  }
}

describe("GET /admin/v1/report", () => {
  it("contains no secret, key, admin key or tenant name or id", () => {
    const { report, tenantId, tenantKey, running } = setup;
    const [, keyId = "", secretPart = ""] = /^imf_([0-9a-z]{26})_(\w+)$/.exec(tenantKey) ?? [];
    expect(secretPart.length).toBeGreaterThan(40);
    expectAbsent(report, {
      "tenant name": TENANT_NAME,
      "tenant name's distinctive word": "Quartzworks",
      "tenant id": tenantId,
      "tenant's API key": tenantKey,
      "tenant's API key secret": secretPart,
      "admin key": running.adminKey,
      "admin key secret": running.adminKey.split("_")[2] ?? running.adminKey,
      "test tenant's API key": running.apiKey,
      "cluster secret": CLUSTER_SECRET,
      "webhook secret": WEBHOOK_SECRET,
      "webhook URL path": WEBHOOK_PATH,
    });
    expect(report).not.toMatch(/imf_[0-9a-z]{26}_/);
    expect(report).not.toMatch(/ten_[0-9a-z]{26}/);
    // The key id is public, but no key is listed in a report anyway.
    expect(report).not.toContain(keyId);
  });

  it("has the versions, this node, the fleet and the redacted configuration", () => {
    const { report, contentType, running } = setup;
    expect(contentType).toMatch(/^text\/markdown/);
    expect(report).toMatch(/^# imgfleet support report\n/);
    const sections = [...report.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual([
      "Versions",
      "This node",
      "Fleet",
      "Effective configuration",
      "Alerts (latest 50)",
      "Events (latest 50)",
      "Key series now, against their baselines",
      "Metric history (last 24 hours)",
      "This node's metrics now",
      "Usage (last 30 days)",
      "Identity",
      "Feature flags",
      "Dead letters",
      "Left out on purpose",
    ]);
    expect(report).toContain(`| imgfleet | ${VERSION} |`);
    expect(report).toContain(`| Node.js | ${process.version} |`);
    expect(report).toContain(`| libvips | ${sharp.versions.vips} |`);
    expect(report).toMatch(/\| nats-server \| not used \(embedded\) \|/);
    expect(report).toMatch(
      /\| database \(pglite\) \| PGlite \d+\.\d+\.\d+ \(PostgreSQL \d+\.\d+ in WebAssembly\), embedded in \S+/,
    );
    const nodeId = running.node.adapters.nodeId;
    expect(report).toMatch(
      new RegExp(`\\| ${nodeId} \\| api,worker,control \\| ${VERSION.replace(/\./g, "\\.")} \\|`),
    );
    expect(report).toContain('clusterSecret: "[redacted]"');
    expect(report).toMatch(/url: https:\/\/127\.0\.0\.1:9\n/);
    expect(report).toMatch(/ {6}secret: "\[redacted\]"\n/);
  });

  it("shows the tenant's usage, events, flag override and dead letter under one pseudonym", () => {
    const { report } = setup;
    // The test tenant made by the helper never sent anything; ours is the only tenant with usage.
    expect(report).toMatch(/\| tenant-1 \| 2 \| 2 \| 0 \| 0 \|/);
    expect(report).toMatch(/flag avif-auto: on for tenant tenant-1/);
    expect(report).toContain("test: a message that names tenant-1 and tenant-1");
    expect(report).toMatch(/\| avif-auto \| yes \| off \| 0% \| 1\/0 \|/);
    expect(report).toContain("1 dead letter(s) kept");
    expect(report).toMatch(/\| live tenant API keys \| 2 \|/);
    expect(report).toMatch(
      /imgfleet_http_request_duration_seconds \| route=\/v1\/resize method=POST status=200 \| count 2,/,
    );
  });

  it("is audited as an export", async () => {
    const audit = (await ok(await setup.running.admin("GET", "/audit?action=report"))) as {
      items: { action: string }[];
    };
    expect(audit.items.map((e) => e.action)).toContain("report.create");
  });
});

describe("the report's configuration section", () => {
  it("hides database and NATS passwords and cuts every URL to scheme and host", async () => {
    const { running } = setup;
    const node = running.node;
    const config = {
      ...node.config,
      database: {
        ...node.config.database,
        url: "postgres://imgfleet:pg-pass-Xy7q9@db.internal:5432/imgfleet",
      },
      fleet: {
        ...node.config.fleet,
        nats: {
          ...node.config.fleet.nats,
          servers: ["nats://natsuser:nats%2Fpass-Q8z@nats-1.internal:4222"],
        },
      },
    };
    const sources: ReportSources = {
      config,
      db: node.adapters.db,
      node: { id: "n1", roles: ["api"], fleet: true, startedAt: Date.now() - 5000, brokerVersion: "2.9.10" },
      nodes: () => node.discovery.list(),
      events: (limit) => node.ops.events.list({ limit }),
      flags: () => node.flags.admin.list(),
      metrics: node.metrics.registry,
    };
    const report = await buildSupportReport(sources);
    expectAbsent(report, {
      "database password": "pg-pass-Xy7q9",
      "NATS password": "nats/pass-Q8z",
      "NATS password (encoded)": "nats%2Fpass-Q8z",
      "database user": "imgfleet:",
      "database name in the URL path": "5432/imgfleet",
    });
    expect(report).toContain("url: postgres://db.internal:5432\n");
    expect(report).toContain("- nats://nats-1.internal:4222\n");
    expect(report).toContain("| nats-server | 2.9.10 |");
    expect(report).toContain("_This node has no metric history to summarise._");
  });
});

describe("ReportSanitiser", () => {
  const a = { id: "ten_01j000000000000000000000aa", name: "Acme Widgets" };
  const b = { id: "ten_01j000000000000000000000bb", name: "Bolt" };

  it("names tenants tenant-1, tenant-2 in order of appearance, the same for a name and its id", () => {
    const s = new ReportSanitiser({ secrets: [], tenants: [a, b] });
    const out = s.apply(`${b.id} then ACME WIDGETS then ${a.id} then bolt, and anonymous`);
    expect(out).toBe("tenant-1 then tenant-2 then tenant-2 then tenant-1, and anonymous");
    expect(s.tenantCount).toBe(2);
    // Ids of tenants no longer in the table still get a pseudonym.
    expect(s.apply("ten_01j000000000000000000000cc")).toBe("tenant-3");
  });

  it("removes secrets, their URL-encoded form, and anything shaped like an API key", () => {
    const s = new ReportSanitiser({ secrets: ["p@ss/word!", "short"], tenants: [] });
    const key = `imf_${"0".repeat(26)}_${"A".repeat(49)}`;
    expect(s.apply(`x p@ss/word! y p%40ss%2Fword! z ${key} short`)).toBe(
      "x [redacted] y [redacted] z [redacted API key] short",
    );
  });

  it("finds a config's secrets, URL passwords and webhook tokens; reduces URLs", () => {
    const config = {
      fleet: { clusterSecret: "c".repeat(40) },
      database: { url: "postgres://u:pw-secret@h:5432/db" },
      ops: { webhooks: [{ url: "https://hooks.slack.com/services/T0/B0/abcdef", secret: "whsec" }] },
    };
    expect(secretsOf(config)).toEqual(
      expect.arrayContaining(["c".repeat(40), "pw-secret", "/services/T0/B0/abcdef", "whsec"]),
    );
    expect(reduceUrls(config)).toMatchObject({
      database: { url: "postgres://h:5432" },
      ops: { webhooks: [{ url: "https://hooks.slack.com" }] },
    });
  });
});

describe("imgfleet report", () => {
  it("writes the report to a file only its owner can read, and says what to check", async () => {
    const dir = mkdtempSync(join(tmpdir(), "imgfleet-report-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "report.md");
    const run = (...args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const env = Object.fromEntries(
          Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_")),
        );
        execFile(
          process.execPath,
          ["--import", "tsx", "src/cli/main.ts", "report", ...args],
          {
            cwd: ROOT,
            env: { ...env, IMGFLEET_URL: setup.running.url, IMGFLEET_ADMIN_KEY: setup.running.adminKey },
            timeout: 30_000,
          },
          (error, stdout, stderr) =>
            resolve({
              code: error ? (typeof error.code === "number" ? error.code : null) : 0,
              stdout,
              stderr,
            }),
        );
      });
    const first = await run("-o", file);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`wrote ${file}`);
    expect(first.stdout).toMatch(/Read it before you send it/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/^# imgfleet support report/);
    expect(text.toLowerCase()).not.toContain("quartzworks");

    const again = await run("-o", file);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; pass --force/);
  });
});
