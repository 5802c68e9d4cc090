import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { corpusFile, corpusFiles, hasCorpus } from "../helpers/corpus.js";
import { type RunningNode, useNode } from "../helpers/node.js";

const MIME: Record<string, string> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  gif: "image/gif",
  avif: "image/avif",
};

/** The documented problem type for every file of the bad corpus. */
const EXPECTED_PROBLEMS: Record<string, { type: string; status: number }> = {
  "65536-uint32-limit.png": { type: "/problems/too-many-pixels", status: 422 },
  "corrupt-header.jpg": { type: "/problems/corrupt-image", status: 422 },
  "empty.jpg": { type: "/problems/empty-body", status: 400 },
  "giant-image.jpg": { type: "/problems/too-many-pixels", status: 422 },
  "header-claims-100000x100000.png": { type: "/problems/too-many-pixels", status: 422 },
  "not-an-image.jpg": { type: "/problems/unsupported-format", status: 415 },
  "relax.jp2": { type: "/problems/unsupported-format", status: 415 },
  "svg-script.svg": { type: "/problems/unsupported-format", status: 415 },
  "truncated.jpg": { type: "/problems/corrupt-image", status: 422 },
  "truncated.png": { type: "/problems/corrupt-image", status: 422 },
};

describe.runIf(hasCorpus)("the real corpus over HTTP", () => {
  // SVG is allowed here so that check.svg can be resized; svg-script.svg must still be refused.
  const node = useNode({
    limits: { inputFormats: ["jpeg", "png", "webp", "avif", "gif", "tiff", "heif", "svg"] },
  });

  it.each(corpusFiles("good"))("resizes good/%s to 160×120 in the requested format", async (name) => {
    for (const format of ["jpeg", "webp"] as const) {
      const res = await node().post(
        `/v1/resize?w=160&h=120&fit=fill&format=${format}`,
        corpusFile("good", name),
        {
          "content-type": "application/octet-stream",
        },
      );
      expect(res.status, await res.clone().text()).toBe(200);
      expect(res.headers.get("content-type")).toBe(MIME[format]);
      const out = Buffer.from(await res.arrayBuffer());
      expect(Number(res.headers.get("content-length"))).toBe(out.length);
      const meta = await sharp(out).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([format, 160, 120]);
    }
  });

  it("every bad file is covered by the expected-problem table", () => {
    expect(corpusFiles("bad")).toEqual(Object.keys(EXPECTED_PROBLEMS).sort());
  });

  it.each(corpusFiles("bad"))(
    "rejects bad/%s with its documented problem, and stays healthy",
    async (name) => {
      const expected = EXPECTED_PROBLEMS[name];
      const res = await node().post("/v1/resize?w=100", corpusFile("bad", name), {
        "content-type": "image/jpeg",
      });
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      const problem = (await res.json()) as { type: string; status: number; detail: string };
      expect({ status: res.status, type: problem.type }).toEqual(expected);
      expect(problem.status).toBe(res.status);
      expect(problem.detail.length).toBeGreaterThan(10);
      const after = await node().post("/v1/resize?w=50", corpusFile("good", "Landscape_1.jpg"));
      expect(after.status).toBe(200);
      expect((await fetch(`${node().url}/healthz`)).status).toBe(200);
    },
  );

  it("turns every EXIF orientation upright", async () => {
    const reference = await upright(node(), "Landscape_1.jpg");
    for (const kind of ["Landscape", "Portrait"]) {
      const ref = kind === "Landscape" ? reference : await upright(node(), "Portrait_1.jpg");
      for (let n = 1; n <= 8; n++) {
        const out = await upright(node(), `${kind}_${n}.jpg`);
        expect([out.width, out.height], `${kind}_${n}`).toEqual([ref.width, ref.height]);
        expect(
          meanAbsoluteDifference(out.pixels, ref.pixels),
          `${kind}_${n} differs from ${kind}_1`,
        ).toBeLessThan(12);
      }
    }
  });
});

async function upright(running: RunningNode, name: string) {
  const res = await running.post("/v1/resize?w=64&format=png", corpusFile("good", name));
  expect(res.status).toBe(200);
  const { data, info } = await sharp(Buffer.from(await res.arrayBuffer()))
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, pixels: data };
}

function meanAbsoluteDifference(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs((a[i] ?? 0) - (b[i] ?? 0));
  return sum / a.length;
}
