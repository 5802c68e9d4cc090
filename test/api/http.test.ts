import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { animatedGif, solidImage } from "../helpers/images.js";
import { readMetric, useNode } from "../helpers/node.js";

const MAX_INPUT_BYTES = 300_000;

describe("the resize API over HTTP", () => {
  const node = useNode({
    limits: { maxInputBytes: MAX_INPUT_BYTES, maxInputPixels: 2_000_000, maxFrames: 4 },
  });
  const post = (path: string, body: Buffer | FormData | string, headers?: Record<string, string>) =>
    node().post(path, body as Buffer, headers);
  const problem = async (res: Response) => {
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    return (await res.json()) as { type: string; status: number; detail: string; [k: string]: unknown };
  };

  it("answers the image with its type, length, size headers, ETag and Server-Timing", async () => {
    const res = await post("/v1/resize?w=120&h=80&format=png", await solidImage(600, 400));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get("content-length"))).toBe(body.length);
    expect([res.headers.get("x-image-width"), res.headers.get("x-image-height")]).toEqual(["120", "80"]);
    expect(res.headers.get("etag")).toMatch(/^"[\w-]{20,}"$/);
    const timing = res.headers.get("server-timing") ?? "";
    for (const step of ["auth", "queue", "process", "total"])
      expect(timing).toMatch(new RegExp(`${step};dur=\\d+(\\.\\d+)?`));
    expect((await sharp(body).metadata()).format).toBe("png");
  });

  it("accepts multipart/form-data with the image in the 'image' field", async () => {
    const form = new FormData();
    form.append("image", new Blob([await solidImage(300, 300)], { type: "image/jpeg" }), "photo.jpg");
    const res = await fetch(`${node().url}/v1/resize?w=30`, {
      method: "POST",
      body: form,
      headers: node().auth,
    });
    expect(res.status).toBe(200);
    expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(30);
  });

  it("names the expected field when a multipart upload uses another", async () => {
    const form = new FormData();
    form.append("file", new Blob([await solidImage(50, 50)]), "photo.jpg");
    const res = await fetch(`${node().url}/v1/resize?w=30`, {
      method: "POST",
      body: form,
      headers: node().auth,
    });
    expect(res.status).toBe(400);
    expect((await problem(res)).detail).toContain("'image'");
  });

  it("sniffs the real format instead of trusting Content-Type", async () => {
    const res = await post("/v1/resize?w=20", await solidImage(40, 40, "png"), {
      "content-type": "image/gif",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
  });

  it.each([
    ["text/plain", "hello"],
    ["application/json", "{}"],
  ])("refuses a %s body with 415 unsupported-media-type", async (type, body) => {
    const res = await post("/v1/resize?w=20", body, { "content-type": type });
    expect(res.status).toBe(415);
    expect((await problem(res)).type).toBe("/problems/unsupported-media-type");
  });

  it("refuses an empty body with 400 empty-body", async () => {
    const res = await post("/v1/resize?w=20", Buffer.alloc(0));
    expect(res.status).toBe(400);
    expect((await problem(res)).type).toBe("/problems/empty-body");
  });

  it("refuses an upload over limits.maxInputBytes with 413 too-large, declared or streamed", async () => {
    const big = Buffer.alloc(MAX_INPUT_BYTES + 1, 1);
    const declared = await post("/v1/resize?w=20", big);
    expect(declared.status).toBe(413);
    expect(await problem(declared)).toMatchObject({ type: "/problems/too-large", maxBytes: MAX_INPUT_BYTES });
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(big);
        controller.close();
      },
    });
    const chunked = await fetch(`${node().url}/v1/resize?w=20`, {
      method: "POST",
      body: stream,
      headers: { "content-type": "image/jpeg", ...node().auth },
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it("refuses an image over limits.maxInputPixels from its header with 422 too-many-pixels", async () => {
    const res = await post("/v1/resize?w=20", await solidImage(2000, 1001, "png"));
    expect(res.status).toBe(422);
    expect(await problem(res)).toMatchObject({
      type: "/problems/too-many-pixels",
      width: 2000,
      height: 1001,
    });
  });

  it("names the option, the value and the rule for a bad option", async () => {
    const res = await post("/v1/resize?w=20&fit=squash", await solidImage(40, 40));
    expect(res.status).toBe(400);
    const p = await problem(res);
    expect(p).toMatchObject({ type: "/problems/bad-option", option: "fit", value: "squash" });
    expect(p.detail).toContain("cover");
  });

  it("refuses SVG by default", async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    );
    const res = await post("/v1/resize?w=20", svg, { "content-type": "image/svg+xml" });
    expect(res.status).toBe(415);
    expect(await problem(res)).toMatchObject({ type: "/problems/unsupported-format", format: "svg" });
  });

  describe("format negotiation", () => {
    // AVIF from format=auto is rolled out by the avif-auto flag (off by default): on for this test's tenant.
    beforeAll(async () => {
      const res = await node().admin("PUT", `/flags/avif-auto/tenants/${node().tenant}`, { enabled: true });
      expect(res.status).toBe(200);
    });

    it.each([
      ["image/avif,image/webp,*/*", "image/avif"],
      ["image/webp,*/*", "image/webp"],
      ["image/avif;q=0, image/webp", "image/webp"],
      ["*/*", "image/jpeg"],
    ])("format=auto with Accept %s answers %s and Vary: Accept", async (accept, type) => {
      const res = await post("/v1/resize?w=32&format=auto", await solidImage(64, 64), { accept });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(type);
      expect(res.headers.get("vary")).toBe("Accept");
      expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).format).toBe(
        type.split("/")[1] === "avif" ? "heif" : type.split("/")[1],
      );
    });

    it("format=auto keeps transparency in PNG when nothing better is accepted", async () => {
      const res = await post(
        "/v1/resize?w=32&format=auto",
        await solidImage(64, 64, "png", { r: 0, g: 0, b: 0, alpha: 0.5 }),
      );
      expect(res.headers.get("content-type")).toBe("image/png");
    });

    it("an explicit format does not vary by Accept", async () => {
      const res = await post("/v1/resize?w=32&format=webp", await solidImage(64, 64), {
        accept: "image/avif",
      });
      expect(res.headers.get("content-type")).toBe("image/webp");
      expect(res.headers.get("vary")).toBeNull();
    });
  });

  describe("animated images", () => {
    it("gives the first frame by default", async () => {
      const res = await post("/v1/resize?w=20&format=gif", await animatedGif(3));
      expect(res.status).toBe(200);
      expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).pages).toBe(1);
    });

    it("keeps every frame with animated=true", async () => {
      const res = await post("/v1/resize?w=20&animated=true", await animatedGif(3));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/gif");
      const meta = await sharp(Buffer.from(await res.arrayBuffer()), { animated: true }).metadata();
      expect([meta.pages, meta.width]).toEqual([3, 20]);
    });

    it("refuses more frames than limits.maxFrames with 422 too-many-frames", async () => {
      const res = await post("/v1/resize?w=20&animated=true", await animatedGif(5));
      expect(res.status).toBe(422);
      expect(await problem(res)).toMatchObject({
        type: "/problems/too-many-frames",
        frames: 5,
        maxFrames: 4,
      });
    });
  });

  describe("caching and identity", () => {
    it("gives the same ETag for the same input and options, and 304 to If-None-Match", async () => {
      const image = await solidImage(100, 100);
      const first = await post("/v1/resize?w=50", image);
      const etag = first.headers.get("etag") ?? "";
      const again = await post("/v1/resize?w=50", image);
      expect(again.headers.get("etag")).toBe(etag);
      const other = await post("/v1/resize?w=51", image);
      expect(other.headers.get("etag")).not.toBe(etag);
      const cached = await post("/v1/resize?w=50", image, { "if-none-match": etag });
      expect(cached.status).toBe(304);
      expect((await cached.arrayBuffer()).byteLength).toBe(0);
    });

    it("honours a client's X-Request-Id and makes one up otherwise", async () => {
      const image = await solidImage(20, 20);
      const given = await post("/v1/resize?w=10", image, { "x-request-id": "trace-123.abc" });
      expect(given.headers.get("x-request-id")).toBe("trace-123.abc");
      const invented = await post("/v1/resize?w=10", image, { "x-request-id": "bad id with spaces" });
      expect(invented.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe("service endpoints", () => {
    it("GET /v1/formats lists formats, options and limits", async () => {
      const res = await fetch(`${node().url}/v1/formats`, { headers: node().auth });
      const body = (await res.json()) as {
        input: string[];
        output: string[];
        limits: Record<string, number>;
      };
      expect(body.input).toContain("jpeg");
      expect(body.input).not.toContain("svg");
      expect(body.output).toEqual(expect.arrayContaining(["jpeg", "png", "webp", "avif", "gif", "auto"]));
      expect(body.limits).toMatchObject({
        maxInputBytes: MAX_INPUT_BYTES,
        maxInputPixels: 2_000_000,
        maxFrames: 4,
      });
    });

    it("GET /healthz and /readyz answer while idle", async () => {
      expect((await fetch(`${node().url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${node().url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ ready: true, workers: { running: 1 } });
    });

    it("GET /metrics counts requests, bytes and latency as histograms", async () => {
      const url = node().url;
      const image = await solidImage(200, 200);
      const before = await readMetric(url, "imgfleet_input_bytes_total");
      const res = await post("/v1/resize?w=10", image);
      const out = (await res.arrayBuffer()).byteLength;
      expect(await readMetric(url, "imgfleet_input_bytes_total")).toBe(before + image.length);
      expect(await readMetric(url, "imgfleet_output_bytes_total")).toBeGreaterThanOrEqual(out);
      const text = await (await fetch(`${url}/metrics`)).text();
      expect(text).toMatch(
        /imgfleet_http_request_duration_seconds_bucket\{le="0.1",route="\/v1\/resize",method="POST",status="200"\}/,
      );
      for (const name of [
        "imgfleet_queue_wait_seconds_bucket",
        "imgfleet_processing_seconds_bucket",
        "imgfleet_queue_depth",
        "imgfleet_http_in_flight_requests",
      ]) {
        expect(text).toContain(name);
      }
      expect(await readMetric(url, "imgfleet_queue_capacity")).toBe(64);
      expect(
        await readMetric(url, "imgfleet_rejections_total", { reason: "bad-option" }),
      ).toBeGreaterThanOrEqual(1);
    });

    it("answers unknown routes with a problem, and problem types dereference", async () => {
      const res = await fetch(`${node().url}/v2/nothing`);
      expect(res.status).toBe(404);
      expect((await problem(res)).type).toBe("/problems/not-found");
      const doc = await fetch(`${node().url}/problems/too-many-pixels`, {
        headers: { accept: "application/json" },
      });
      expect(await doc.json()).toMatchObject({ status: 422, title: expect.any(String) });
    });

    it("answers a known path with the wrong method 405, naming the methods in Allow", async () => {
      const cases: Array<[string, string, string]> = [
        ["GET", "/v1/resize?w=10", "POST"],
        ["PUT", "/v1/formats", "GET, HEAD"],
        ["POST", "/healthz", "GET, HEAD"],
        ["PUT", `/admin/v1/tenants/${node().tenant}`, "DELETE, GET, HEAD, PATCH"],
        ["GET", `/admin/v1/tenants/${node().tenant}/suspend`, "POST"],
        ["DELETE", "/problems/too-large", "GET, HEAD"],
      ];
      for (const [method, path, allow] of cases) {
        const res = await fetch(`${node().url}${path}`, { method });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get("allow"), `${method} ${path}`).toBe(allow);
        const body = await problem(res);
        expect(body).toMatchObject({ type: "/problems/method-not-allowed", status: 405 });
        expect(body.allow).toEqual(allow.split(", "));
        expect(body.detail).toContain(method);
      }
      // The type is documented like every other, and an unknown path is still a 404.
      expect((await fetch(`${node().url}/problems/method-not-allowed`)).status).toBe(200);
      expect((await fetch(`${node().url}/v1/resize/nothing`)).status).toBe(404);
    });

    it("serves each problem type's documentation from docs/errors.md as HTML or Markdown", async () => {
      const docs = readFileSync(join(import.meta.dirname, "../../docs/errors.md"), "utf8");
      const section = docs.split("## too-many-pixels\n")[1]?.split("\n## ")[0]?.trim() ?? "";
      expect(section).toContain("limits.maxInputPixels");

      const html = await fetch(`${node().url}/problems/too-many-pixels`, {
        headers: { accept: "text/html" },
      });
      expect(html.status).toBe(200);
      expect(html.headers.get("content-type")).toMatch(/^text\/html/);
      const page = await html.text();
      expect(page).toContain("<h1>The image has too many pixels</h1>");
      expect(page).toContain("<code>limits.maxInputPixels</code>");
      expect(page).not.toContain("docs/errors.md#");

      const md = await fetch(`${node().url}/problems/too-many-pixels`, {
        headers: { accept: "text/markdown" },
      });
      expect(md.headers.get("content-type")).toMatch(/^text\/markdown/);
      expect(await md.text()).toContain(section);

      // A browser's Accept gets the page; an unknown type is a 404 problem.
      const browser = await fetch(`${node().url}/problems/timeout`, {
        headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
      });
      expect(browser.headers.get("content-type")).toMatch(/^text\/html/);
      const unknown = await fetch(`${node().url}/problems/no-such-type`);
      expect(unknown.status).toBe(404);
      expect((await problem(unknown)).type).toBe("/problems/not-found");
    });
  });
});
