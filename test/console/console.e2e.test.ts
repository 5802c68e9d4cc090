import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FLEET_NODE, type MetricPoint, type SeriesName } from "../../src/ops/series.js";
import { deadLetters } from "../../src/queue/dead-letters.js";
import { isCI } from "../helpers/ci.js";
import { ensureConsoleBuilt } from "../helpers/console-build.js";
import { splitImage } from "../helpers/images.js";
import { type RunningNode, startNode } from "../helpers/node.js";
import { type Receiver, startReceiver } from "../helpers/webhook-receiver.js";
import { message } from "../queue/job-queue.contract.js";

/**
 * The web console in real Chromium (Debian's, driven by playwright-core)
 * against a real embedded node: the whole administrator's round from the
 * issue, a narrow screen, the keyboard, a forged cross-site write and an
 * expired session. Every request the page makes to anything but 127.0.0.1
 * is blocked and fails the suite. Screenshots of each page are written to
 * test-results/screenshots/ (not committed).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ROOT = join(import.meta.dirname, "../..");
const SHOTS = join(ROOT, "test-results", "screenshots");
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-dev-shm-usage",
];

let n: RunningNode;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
let evil: Server;
let receiver: Receiver;
const external: string[] = [];

const CHROMIUM_MISSING = `${CHROMIUM} not found; install the Debian package 'chromium'`;
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  // CI installs the package (.ci/run): a missing browser there is a broken setup, not a reason to skip.
  if (isCI()) throw new Error(`the console suite needs Chromium in CI: ${CHROMIUM_MISSING}`);
  console.warn(`\n*** SKIPPED: web console suite — ${CHROMIUM_MISSING} ***\n`);
}
const pageErrors: string[] = [];

/** Filled in as the round goes on. */
const state = { tenantId: "", tenantName: "Acme Photos", secret: "", keyId: "" };

async function shot(name: string, target: Page = page): Promise<void> {
  await target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function go(path: string, target: Page = page): Promise<void> {
  await target.goto(`${n.url}/console${path}`);
}

async function nav(label: string): Promise<void> {
  await page
    .getByRole("navigation", { name: "Console" })
    .getByRole("link", { name: label, exact: true })
    .click();
  await expect.poll(() => page.locator("h1").first().textContent()).toBe(label);
}

describe.skipIf(!hasChromium)("the web console in Chromium", { timeout: 120_000 }, () => {
  beforeAll(async () => {
    const build = await ensureConsoleBuilt();
    console.log(
      `console: ${build.buildMs === null ? "bundle up to date" : `vite build took ${build.buildMs} ms`}`,
    );
    mkdirSync(SHOTS, { recursive: true });
    n = await startNode(
      {
        ops: { sampleIntervalMs: 1000, alerts: { spoolBacklogMaxS: 10 } },
        usage: { flushIntervalMs: 100, confirmIntervalMs: 100, spool: { segmentBytes: 4096 } },
        console: { signInsPerMinute: 100 },
      },
      { stopAfter: "manual" },
    );
    await seedHistory(n);
    receiver = await startReceiver([], { stopAfter: "manual" });
    userDataDir = mkdtempSync(join(tmpdir(), "imgfleet-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 860 },
      permissions: ["clipboard-read", "clipboard-write"],
    });
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === "127.0.0.1") return route.continue();
      external.push(url.href);
      return route.abort("blockedbyclient");
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (error) => pageErrors.push(error.message));
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await n?.stop();
    await receiver?.close();
    await new Promise((resolve) => (evil ? evil.close(resolve) : resolve(undefined)));
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it("signs in with the keyboard alone: Tab reaches the key field and the button, Enter submits", async () => {
    await go("/");
    await page.getByLabel("Admin key").waitFor();
    await page.keyboard.press("Tab");
    expect(await page.locator(":focus").getAttribute("id")).toBe("admin-key");
    await page.keyboard.type(n.adminKey);
    await page.keyboard.press("Tab");
    expect(await page.locator(":focus").textContent()).toBe("Sign in");
    await shot("sign-in");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "imgfleet_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    // Tab from the top reaches the navigation and its links.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    expect(await page.locator(":focus").textContent()).toBe("imgfleet");
  });

  it("creates a tenant and a key whose secret is shown once with a copy button", async () => {
    await nav("Tenants");
    await expect
      .poll(() => page.getByText("No tenants yet").or(page.locator("table")).count())
      .toBeGreaterThan(0);
    await page.locator("#new-tenant-name").fill(state.tenantName);
    await page.getByRole("button", { name: "Create tenant" }).click();
    await page.getByRole("heading", { name: state.tenantName }).waitFor();
    state.tenantId = decodeURIComponent(new URL(page.url()).pathname.split("/").at(-1) ?? "");
    expect(state.tenantId).toMatch(/^ten_/);
    await page.getByText("No keys yet").waitFor();

    await page.locator("#key-name").fill("e2e");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = page.getByTestId("secret");
    await secret.waitFor();
    state.secret = (await secret.textContent()) ?? "";
    expect(state.secret).toMatch(/^imf_\w+_\w+$/);
    await page.getByRole("button", { name: "Copy" }).click();
    await page.getByRole("button", { name: "Copied", exact: true }).waitFor();
    expect(await page.evaluate("navigator.clipboard.readText()")).toBe(state.secret);
    const row = page.locator("tr[data-key]");
    await expect.poll(() => row.count()).toBe(1);
    state.keyId = (await row.getAttribute("data-key")) ?? "";
    await shot("tenant-new-key");
    await page.getByRole("button", { name: "I have copied it" }).click();
    expect(await page.getByTestId("secret").count()).toBe(0);
    // Bookmarkable: the tenant page is its own URL and reloads as itself.
    await page.reload();
    await page.getByRole("heading", { name: state.tenantName }).waitFor();
  });

  it("resizes a picture in the playground and shows it beside the original with its Server-Timing", async () => {
    await nav("Playground");
    await resizeInPlayground(state.secret);
    await page.getByTestId("result-type").waitFor();
    expect(await page.getByTestId("result-type").textContent()).toBe("image/webp");
    expect(await page.getByTestId("picture-result").textContent()).toMatch(/300 × 200, image\/webp/);
    const timing = (await page.getByTestId("server-timing").textContent()) ?? "";
    expect(timing).toMatch(/process/);
    expect(timing).toMatch(/total/);
    await shot("playground");
  });

  it("shows the usage appear on the tenant page, with the cost estimate", async () => {
    await go(`/tenants/${state.tenantId}`);
    const requests = page.getByTestId("usage-requests");
    await expect
      .poll(
        async () => {
          await page.getByRole("button", { name: "Refresh" }).click();
          await requests.waitFor();
          return requests.textContent();
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe("1");
    expect(await page.getByTestId("cost").textContent()).toMatch(/Cost estimate for \d{4}-\d{2}/);
    // This month by day: the chart spans the whole UTC month, whatever day it is.
    const now = new Date();
    const monthStartS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) / 1000;
    const nextMonthS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) / 1000;
    expect(await chartRange()).toEqual([monthStartS, nextMonthS]);
    await page.getByRole("button", { name: "Today by hour" }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get("usage")).toBe("hour");
    await requests.waitFor();
    const dayStartS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) / 1000;
    await expect.poll(chartRange).toEqual([dayStartS, dayStartS + 86_400]);
    expect(await page.getByRole("link", { name: "Export CSV" }).getAttribute("href")).toContain("format=csv");
    await shot("tenant");
  });

  it("revokes the key after a confirmation, and the playground sees it rejected", async () => {
    await go(`/tenants/${state.tenantId}`);
    await page.locator(`tr[data-key="${state.keyId}"]`).getByRole("button", { name: "Revoke" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await shot("confirm-revoke");
    await dialog.getByRole("button", { name: "Revoke key" }).click();
    await expect.poll(() => page.locator(`tr[data-key="${state.keyId}"]`).count()).toBe(0);

    await nav("Playground");
    await expect
      .poll(
        async () => {
          await resizeInPlayground(state.secret);
          await page.getByRole("alert").or(page.getByTestId("result-type")).first().waitFor();
          return page.getByRole("alert").textContent();
        },
        { timeout: 10_000, interval: 300 },
      )
      .toMatch(/revoked/);
    await shot("playground-revoked");
  });

  it("sets a flag for the tenant and by percentage, with who changed it in the history", async () => {
    await nav("Flags");
    const card = page.locator('[data-flag="avif-auto"]');
    await card.locator("#ovr-avif-auto").fill(state.tenantId);
    await card.getByRole("button", { name: "Turn on for this tenant" }).click();
    await expect.poll(() => card.locator(".overrides").textContent()).toContain(state.tenantId);
    await card.locator("#pct-avif-auto").fill("10");
    await card.getByRole("button", { name: "Set percentage" }).click();
    await card.getByText("10% of tenants").waitFor();
    const history = page.getByTestId("flag-history");
    await expect.poll(() => history.locator("tbody tr").count()).toBe(2);
    const session = (await context.cookies()).find((c) => c.name === "imgfleet_session");
    expect(session).toBeDefined();
    const adminKeyId = `key_${n.adminKey.split("_")[1]}`;
    expect(await history.textContent()).toContain(adminKeyId);
    const evaluated = await n.admin("GET", `/flags/avif-auto?tenant=${state.tenantId}`);
    expect(await evaluated.json()).toMatchObject({ value: true, reason: "tenant" });
    await shot("flags");
  });

  it("adds a notification channel and sends it a test", async () => {
    await go("/alerts?tab=channels");
    await page.getByText(/No notification channel/).waitFor();
    await page.locator("#ch-name").fill("team");
    await page.locator("#ch-url").fill(receiver.url);
    await page.locator("#ch-secret").fill("a-signing-secret-0123456789");
    await page.getByRole("button", { name: "Add channel" }).click();
    const row = page.locator("tr", { hasText: "team" });
    await row.waitFor();
    await row.getByRole("button", { name: "Send test" }).click();
    await page.getByText(/delivered\s*team/).waitFor();
    const test = await receiver.next((r) => (r.json as { type?: string })?.type === "test", 5000);
    expect(test.headers["x-imgfleet-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    await shot("channels");
  });

  it("shows an alert fire with its runbook line, and acknowledges it", async () => {
    // The cause: nobody commits usage, so batches wait in the spool past spoolBacklogMaxS (10 s).
    await n.node.usage.aggregator.stop();
    const image = await splitImage(64, 48);
    for (let i = 0; i < 5; i++) expect((await n.post("/v1/resize?w=16", image)).status).toBe(200);
    await go("/alerts");
    const alert = page.locator('[data-rule="spool-backlog"]');
    await expect
      .poll(
        async () => {
          await page.reload();
          await page
            .getByText(/No alert is open|spool-backlog/)
            .first()
            .waitFor();
          return alert.count();
        },
        { timeout: 60_000, interval: 2000 },
      )
      .toBe(1);
    expect(await alert.textContent()).toMatch(/What to do:.*usage-aggregator lease/);
    await alert.getByRole("button", { name: "Acknowledge" }).click();
    await alert.getByTestId("acked").waitFor();
    expect(await alert.getByTestId("acked").textContent()).toMatch(/^Acknowledged by key_/);
    await shot("alerts");
    n.node.usage.aggregator.start();
    await go("/alerts?tab=events");
    await page.getByText("alert.fired").first().waitFor();
    await shot("events");
    const fired = await receiver.next((r) => (r.json as { type?: string })?.type === "alert.fired", 10_000);
    expect(JSON.stringify(fired.json)).toContain("spool-backlog");
  });

  it("shows the overview with health and baselines, the fleet and the settings", async () => {
    await go("/?range=24h");
    const health = page.getByTestId("health");
    await health.waitFor();
    await expect.poll(() => page.locator(".chart canvas").count(), { timeout: 10_000 }).toBe(6);
    expect(await page.getByTestId("sentence-latency_p99").textContent()).toMatch(
      /^p99 latency is [\d.]+ ms; usually [\d.]+ ± [\d.]+ ms/,
    );
    expect(await health.getAttribute("class")).toMatch(/\b(green|amber|red)\b/);
    await shot("overview");

    // Recorded as the worker pool records a job whose every delivery crashed its worker.
    const given = message();
    await deadLetters.record(n.node.adapters.db, {
      job: given,
      workerNode: n.node.adapters.nodeId,
      reason: "worker-crashed",
      detail: "every delivery crashed its worker (signal SIGSEGV)",
      attempts: 3,
    });
    await nav("Fleet");
    await page.locator("table").getByText(n.node.adapters.nodeId).first().waitFor();
    const letter = page.getByRole("row").filter({ hasText: given.id });
    await letter.waitFor();
    expect(await letter.textContent()).toMatch(/worker-crashed.*3.*signal SIGSEGV/);
    await expect.poll(() => page.locator(".grid.nodes .chart canvas").count(), { timeout: 10_000 }).toBe(1);
    // The last resize was over ten seconds ago (the alert test waited for its alert): the node's p99
    // is not current, and the card and the sentences above it say how old it is, with the same value.
    const card = page.locator(".grid.nodes .card.series");
    const shown = (await card.locator(".value").textContent()) ?? "";
    expect(shown).toMatch(/^[\d.]+ ms · \d+ (s|min) ago$/);
    const value = shown.split(" · ")[0] ?? "";
    expect(await card.locator(".sentence").textContent()).toMatch(
      new RegExp(`^p99 latency was ${value} \\d+ (s|min) ago; no sample since$`),
    );
    const fleetSentence = (await page.getByTestId("fleet-sentence").textContent()) ?? "";
    if (!fleetSentence.startsWith(`p99 latency is ${value};`))
      expect(fleetSentence).toMatch(
        new RegExp(`^p99 latency: no sample in the last 30 s; the last, ${value} on `),
      );
    await shot("fleet");

    await nav("Settings");
    await page.getByTestId("config").waitFor();
    expect(await page.getByTestId("config").textContent()).toContain('"idleTimeoutMs"');
    expect(await page.getByTestId("database").textContent()).toMatch(
      /^PGlite \d+\.\d+\.\d+ \(PostgreSQL \d+\.\d+ in WebAssembly\), embedded in \/\S+$/,
    );
    expect(await page.getByRole("link", { name: "Download support report" }).getAttribute("href")).toBe(
      "/admin/v1/report",
    );
    await shot("settings");
    await nav("Tenants");
    await page.getByRole("link", { name: state.tenantName }).waitFor();
    await shot("tenants");
  });

  it("draws every overview chart over exactly the selected range, the same span on every card", async () => {
    for (const [range, spanS] of [
      ["1h", 3600],
      ["24h", 86_400],
      ["7d", 7 * 86_400],
    ] as const) {
      await go(range === "1h" ? "/" : `/?range=${range}`);
      const charts = page.locator(".chart[data-x-max]");
      await expect.poll(() => charts.count(), { timeout: 10_000 }).toBe(6);
      const spans = await Promise.all(
        (await charts.all()).map(async (c) => [
          Number(await c.getAttribute("data-x-min")),
          Number(await c.getAttribute("data-x-max")),
        ]),
      );
      const nowS = Date.now() / 1000;
      for (const [min = 0, max = 0] of spans) {
        expect(max - min, range).toBeCloseTo(spanS, 3);
        // Ends now (the page loaded within the last minute), however little of the range has samples.
        expect(Math.abs(nowS - max), range).toBeLessThan(60);
      }
      expect(new Set(spans.map((s) => s.join())).size, `${range}: cards cover different spans`).toBe(1);
      await shot(`overview-${range}`);
    }
  });

  it("works on a 390 px screen without sideways scrolling", async () => {
    const narrow = await context.newPage();
    await narrow.setViewportSize({ width: 390, height: 844 });
    try {
      for (const [name, path] of [
        ["narrow-overview", "/"],
        ["narrow-tenant", `/tenants/${state.tenantId}`],
        ["narrow-playground", "/playground"],
        ["narrow-alerts", "/alerts?state=resolved"],
      ] as const) {
        await go(path, narrow);
        await narrow.locator("h1").first().waitFor();
        await narrow.waitForLoadState("networkidle");
        const overflow = Number(
          await narrow.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
        );
        expect(overflow, `${path} scrolls sideways by ${overflow} px`).toBeLessThanOrEqual(0);
        const menu = narrow.getByRole("navigation", { name: "Console" });
        expect(await menu.getByRole("link", { name: "Tenants", exact: true }).isVisible()).toBe(true);
        await shot(name, narrow);
      }
    } finally {
      await narrow.close();
    }
  });

  it("rejects a forged write from a page on another origin (CSRF)", async () => {
    evil = await startEvilSite(n.url);
    const { port } = evil.address() as AddressInfo;
    const forged = await context.newPage();
    try {
      // The same site for the browser (127.0.0.1), another origin: SameSite lets the cookie through, the token does not.
      await forged.goto(`http://127.0.0.1:${port}/`);
      await forged.waitForURL(`${n.url}/admin/v1/tenants`);
      const body = (await forged.textContent("body")) ?? "";
      expect(body).toContain("/problems/csrf-failed");
      await shot("csrf-rejected", forged);
    } finally {
      await forged.close();
    }
    const list = (await (await n.admin("GET", "/tenants?search=forged")).json()) as { items: unknown[] };
    expect(list.items).toEqual([]);
    // The console's own page, but a write without the token (as a script injected without it would send).
    const status = await page.evaluate(async () => {
      const res = await fetch("/admin/v1/tenants", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "forged too" }),
      });
      return res.status;
    });
    expect(status).toBe(403);
  });

  it("shows a clear page when the session expires, and signs in again where it was", async () => {
    await go(`/tenants/${state.tenantId}`);
    await page.getByRole("heading", { name: state.tenantName }).waitFor();
    // The page's own requests first, so the next click is what meets the expired session.
    await page.waitForLoadState("networkidle");
    // Idle for longer than console.idleTimeoutMs, without the test waiting 30 minutes.
    const kv = n.node.adapters.sessionsKv;
    for (const entry of await kv.entries("s.")) {
      const record = JSON.parse(entry.value) as { lastSeenAt: number };
      await kv.put(entry.key, JSON.stringify({ ...record, lastSeenAt: Date.now() - 31 * 60_000 }));
    }
    await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Alerts" }).click();
    await page.getByRole("heading", { name: "Session ended" }).waitFor();
    expect(await page.getByTestId("ended-reason").textContent()).toMatch(/after a period without activity/);
    await shot("session-ended");
    expect((await context.cookies()).find((c) => c.name === "imgfleet_session")).toBeUndefined();
    await page.getByRole("button", { name: "Sign in again" }).click();
    await page.getByLabel("Admin key").fill(n.adminKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Alerts" }).waitFor();
  });

  it("signs out: the session ends and the console asks to sign in", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Session ended" }).waitFor();
    expect(await page.getByTestId("ended-reason").textContent()).toBe("You are signed out.");
    await shot("signed-out");
    expect((await context.cookies()).find((c) => c.name === "imgfleet_session")).toBeUndefined();
    await go("/tenants");
    await page.getByLabel("Admin key").waitFor();
    expect(await n.node.adapters.sessionsKv.keys("s.")).toEqual([]);
  });

  it("made no request to any other host and threw no page error", () => {
    expect(external).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

/** The x range the page's one chart draws (epoch seconds), from the chart's data-x-min and data-x-max. */
async function chartRange(): Promise<[number, number]> {
  const chart = page.locator(".chart[data-x-max]");
  await chart.waitFor();
  const [min, max] = await Promise.all([chart.getAttribute("data-x-min"), chart.getAttribute("data-x-max")]);
  return [Number(min), Number(max)];
}

async function resizeInPlayground(secret: string): Promise<void> {
  await page.locator("#pg-key").fill(secret);
  await page.locator("#pg-file").setInputFiles({
    name: "split.png",
    mimeType: "image/png",
    buffer: await splitImage(1200, 800),
  });
  await page.getByTestId("picture-original").locator("img").waitFor();
  await page.locator("#pg-w").fill("300");
  await page.locator("#pg-h").fill("200");
  await page.locator("#pg-format").selectOption("webp");
  await page.getByRole("button", { name: "Resize", exact: true }).click();
}

/** A page on another origin that, once opened, posts a tenant to the admin API as a form would. */
async function startEvilSite(target: string): Promise<Server> {
  const html = `<!doctype html><form method="post" enctype="text/plain" action="${target}/admin/v1/tenants">
<input name='{"name":"forged","x":"' value='"}'></form><script>document.forms[0].submit()</script>`;
  const server = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(html));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/**
 * Three days of history for the overview's series (fleet-wide and this
 * node's), so the charts have baselines to draw: what a node that has run
 * for a while shows. Ends a minute ago; the sampler adds the real samples.
 */
async function seedHistory(node: RunningNode): Promise<void> {
  const typical: Partial<Record<SeriesName, (hour: number) => number>> = {
    request_rate: (h) => 3 + 2 * Math.sin((h / 24) * 2 * Math.PI),
    error_rate: () => 0.002,
    latency_p50: (h) => 25 + 4 * Math.sin((h / 24) * 2 * Math.PI),
    latency_p99: (h) => 80 + 15 * Math.sin((h / 24) * 2 * Math.PI),
    queue_depth: () => 0.4,
    queue_oldest_age: () => 0.2,
  };
  const now = Date.now();
  const points: MetricPoint[] = [];
  for (let at = now - 3 * 86_400_000; at < now - 60_000; at += 600_000) {
    const hour = new Date(at).getUTCHours() + new Date(at).getUTCMinutes() / 60;
    for (const [i, [series, f]] of (
      Object.entries(typical) as [SeriesName, (h: number) => number][]
    ).entries()) {
      // Slow, different wobbles per series: plausible traffic, not a square wave.
      const wobble = 1 + 0.06 * Math.sin(at / (2_300_000 + i * 400_000)) + 0.03 * Math.sin(at / 700_000);
      for (const who of [FLEET_NODE, node.node.adapters.nodeId])
        points.push({ series, node: who, at, value: f(hour) * wobble });
    }
  }
  await node.node.ops.history.write(points);
}
