import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProblemHandlers } from "../../src/api/problem-handler.js";
import { installRequestLog } from "../../src/api/request-log.js";
import { CONSOLE_CSP, consoleRoutes } from "../../src/api/routes/console.js";
import { createMetrics } from "../../src/metrics/metrics.js";

/** Serving the console's files: a stand-in bundle in a temporary directory, and a missing one. */

let dir: string;
let built: FastifyInstance;
let missing: FastifyInstance;

/** What the node logged, one parsed line each. */
const logged: { msg: string; dir?: string }[] = [];

async function server(consoleDir: string): Promise<FastifyInstance> {
  const stream = { write: (line: string) => void logged.push(JSON.parse(line)) };
  const app = Fastify({ logger: { level: "warn", stream } });
  const metrics = createMetrics();
  installRequestLog(app, metrics);
  installProblemHandlers(app, metrics, 1024);
  consoleRoutes(app, { dir: consoleDir });
  await app.ready();
  return app;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "imgfleet-console-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>imgfleet</title>");
  writeFileSync(join(dir, "assets", "index-abc123.js"), "console.log(1)");
  writeFileSync(join(dir, "assets", "index-abc123.css"), "body{}");
  writeFileSync(join(dir, "favicon.svg"), "<svg/>");
  writeFileSync(join(tmpdir(), "imgfleet-console-outside.txt"), "secret");
  built = await server(dir);
  missing = await server(join(dir, "nowhere"));
});

afterAll(async () => {
  await built?.close();
  await missing?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the console's static files", () => {
  it("serves index.html uncached with a strict CSP, at /console and every deep link", async () => {
    for (const url of ["/console", "/console/", "/console/tenants/ten_123", "/console/alerts?state=firing"]) {
      const res = await built.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(res.headers["cache-control"]).toBe("no-cache");
      expect(res.headers["content-security-policy"]).toBe(CONSOLE_CSP);
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.headers["x-frame-options"]).toBe("DENY");
      expect(res.body).toContain("<title>imgfleet</title>");
    }
    expect(CONSOLE_CSP).toMatch(/^default-src 'self'; script-src 'self';/);
  });

  it("serves hashed assets with their type and a year-long immutable cache", async () => {
    const js = await built.inject({ url: "/console/assets/index-abc123.js" });
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(js.body).toBe("console.log(1)");
    const css = await built.inject({ url: "/console/assets/index-abc123.css" });
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    const svg = await built.inject({ url: "/console/favicon.svg" });
    expect([svg.headers["content-type"], svg.headers["cache-control"]]).toEqual([
      "image/svg+xml",
      "no-cache",
    ]);
  });

  it("answers 404 for a missing asset instead of the page, and never leaves its directory", async () => {
    const gone = await built.inject({ url: "/console/assets/index-old.js" });
    expect(gone.statusCode).toBe(404);
    expect(gone.headers["content-type"]).toMatch(/^application\/problem\+json/);
    for (const url of [
      "/console/../imgfleet-console-outside.txt",
      "/console/%2e%2e/imgfleet-console-outside.txt",
      "/console/assets/..%2f..%2fimgfleet-console-outside.txt",
    ]) {
      const res = await built.inject({ url });
      expect(res.body, url).not.toContain("secret");
    }
  });

  it("answers a clear 503 problem when the bundle was never built, and tells the operator where it looked, not the caller", async () => {
    const res = await missing.inject({ url: "/console/overview" });
    expect(res.statusCode).toBe(503);
    const body = res.json() as { type: string; detail: string };
    expect(body.type).toBe("/problems/console-not-built");
    expect(body.detail).toMatch(/run `npm run build`/);
    // Anonymous callers learn nothing of the installation's file system.
    expect(res.body).not.toContain(dir);
    expect(res.body).not.toMatch(/\/(tmp|home|usr|opt|srv|var|work)\//);
    const lines = logged.filter((l) => l.msg.includes("console is not built"));
    expect(lines.map((l) => l.dir)).toEqual([join(dir, "nowhere")]);
    // Once an interval, not once per page load.
    await missing.inject({ url: "/console" });
    expect(logged.filter((l) => l.msg.includes("console is not built"))).toHaveLength(1);
  });
});
