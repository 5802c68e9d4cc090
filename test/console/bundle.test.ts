import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { type ConsoleBuild, ensureConsoleBuilt } from "../helpers/console-build.js";

/** The console bundle stays small and self-contained: a size bound, not a timing. */
const MAX_GZIPPED_JS_BYTES = 150 * 1024;

let build: ConsoleBuild;

beforeAll(async () => {
  build = await ensureConsoleBuilt();
  if (build.buildMs !== null) console.log(`console: vite build took ${build.buildMs} ms`);
}, 180_000);

function assets(ext: string): { name: string; raw: number; gzipped: number }[] {
  const dir = join(build.dir, "assets");
  return readdirSync(dir)
    .filter((name) => name.endsWith(ext))
    .map((name) => {
      const bytes = readFileSync(join(dir, name));
      return { name, raw: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
    });
}

describe("the console bundle", () => {
  it(`is under ${MAX_GZIPPED_JS_BYTES / 1024} KB of gzipped JavaScript`, () => {
    const js = assets(".js");
    expect(js.length).toBeGreaterThan(0);
    const raw = js.reduce((a, f) => a + f.raw, 0);
    const gzipped = js.reduce((a, f) => a + f.gzipped, 0);
    const css = assets(".css").reduce((a, f) => a + f.gzipped, 0);
    console.log(
      `console bundle: ${js.length} JS file(s), ${(raw / 1024).toFixed(1)} KB raw, ${(gzipped / 1024).toFixed(1)} KB gzipped; CSS ${(css / 1024).toFixed(1)} KB gzipped`,
    );
    expect(gzipped).toBeLessThan(MAX_GZIPPED_JS_BYTES);
  });

  it("loads only its own files: hashed assets under /console/, no other origin, no inline script", () => {
    const html = readFileSync(join(build.dir, "index.html"), "utf8");
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? "");
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref, ref).toMatch(/^(\/console\/assets\/[\w.-]+\.(js|css)|data:,)$/);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    for (const file of assets(".css")) {
      const css = readFileSync(join(build.dir, "assets", file.name), "utf8");
      expect(css, file.name).not.toMatch(/@import|url\(\s*["']?(https?:)?\/\//);
    }
  });
});
