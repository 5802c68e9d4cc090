import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { OUTPUT_FORMATS } from "../../src/image/formats.js";
import { parseResizeOptions } from "../../src/image/options.js";
import { classifySharpError, ImageRunError, resizeImage } from "../../src/image/pipeline.js";
import { planResize } from "../../src/image/plan.js";
import { probeImage } from "../../src/image/probe.js";
import type { ResizeSpec } from "../../src/image/spec.js";
import { corpusFile, hasCorpus } from "../helpers/corpus.js";
import { animatedGif, noiseImage, solidImage, splitImage } from "../helpers/images.js";

/** A spec with the service's defaults; tests name only what they vary. */
function spec(overrides: Partial<ResizeSpec> = {}): ResizeSpec {
  return {
    inputFormat: "png",
    outputFormat: "png",
    fit: "cover",
    position: "centre",
    strip: true,
    enlarge: false,
    pages: 1,
    limits: { maxInputPixels: 50e6, maxOutputDimension: 8192, timeoutMs: 10_000 },
    ...overrides,
  };
}

/** RGBA of one output pixel. */
async function pixel(image: Buffer, x: number, y: number): Promise<[number, number, number, number]> {
  const { data, info } = await sharp(image).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i] ?? -1, data[i + 1] ?? -1, data[i + 2] ?? -1, data[i + 3] ?? -1];
}

/** Mean of each colour channel, 0–255. */
async function meanRgb(image: Buffer): Promise<[number, number, number]> {
  const { channels } = await sharp(image).stats();
  return [channels[0]?.mean ?? -1, channels[1]?.mean ?? -1, channels[2]?.mean ?? -1];
}

/** Standard deviation of the first channel: how much detail is left. */
async function detail(image: Buffer): Promise<number> {
  return (await sharp(image).stats()).channels[0]?.stdev ?? -1;
}

function expectColour(actual: number[], expected: number[], tolerance = 8): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => {
    expect(Math.abs(v - (expected[i] ?? 0)), `channel ${i}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
      tolerance,
    );
  });
}

const transparentPng = () =>
  sharp({ create: { width: 64, height: 64, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .png()
    .toBuffer();

describe("resizeImage: geometry", () => {
  it.each<[ResizeSpec["fit"], number, number]>([
    ["cover", 100, 100],
    ["contain", 100, 100],
    ["fill", 100, 100],
    ["inside", 100, 50],
    ["outside", 200, 100],
  ])("fit=%s resizes 400×200 to 100×100 as %i×%i", async (fit, width, height) => {
    const input = await solidImage(400, 200, "png");
    const { data, info } = await resizeImage(input, spec({ fit, width: 100, height: 100 }));
    const meta = await sharp(data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", width, height]);
    expect(info).toMatchObject({ format: "png", width, height, bytes: data.length, pages: 1 });
  });

  it("contain pads the short side, and the image stays in the middle", async () => {
    const input = await solidImage(400, 200, "png", { r: 200, g: 30, b: 30, alpha: 1 });
    const { data } = await resizeImage(
      input,
      spec({ fit: "contain", width: 100, height: 100, background: "#00ff00" }),
    );
    expectColour((await pixel(data, 50, 50)).slice(0, 3), [200, 30, 30]);
    expectColour((await pixel(data, 50, 5)).slice(0, 3), [0, 255, 0]);
    expectColour((await pixel(data, 50, 95)).slice(0, 3), [0, 255, 0]);
  });

  it("keeps the aspect ratio with only a width", async () => {
    const { data } = await resizeImage(await solidImage(400, 200, "png"), spec({ width: 100 }));
    const meta = await sharp(data).metadata();
    expect([meta.width, meta.height]).toEqual([100, 50]);
  });

  it("without a size keeps the input size, but never exceeds maxOutputDimension", async () => {
    const input = await solidImage(300, 150, "png");
    const same = await sharp((await resizeImage(input, spec())).data).metadata();
    expect([same.width, same.height]).toEqual([300, 150]);
    const limited = spec({ limits: { maxInputPixels: 50e6, maxOutputDimension: 100, timeoutMs: 10_000 } });
    const capped = await sharp((await resizeImage(input, limited)).data).metadata();
    expect([capped.width, capped.height]).toEqual([100, 50]);
  });

  it.each<[ResizeSpec["position"], [number, number, number]]>([
    ["west", [255, 0, 0]],
    ["east", [0, 0, 255]],
  ])("position=%s crops that side of a left-red/right-blue image", async (position, colour) => {
    const input = await splitImage(400, 200);
    const { data } = await resizeImage(input, spec({ width: 100, height: 100, position }));
    const meta = await sharp(data).metadata();
    expect([meta.width, meta.height]).toEqual([100, 100]);
    expectColour(await meanRgb(data), colour, 4);
  });

  it("position=centre keeps both halves", async () => {
    const { data } = await resizeImage(await splitImage(400, 200), spec({ width: 100, height: 100 }));
    expectColour((await pixel(data, 10, 50)).slice(0, 3), [255, 0, 0]);
    expectColour((await pixel(data, 90, 50)).slice(0, 3), [0, 0, 255]);
  });

  it("enlarge=false keeps a small image small; enlarge=true grows it", async () => {
    const input = await solidImage(50, 40, "png");
    const kept = await sharp((await resizeImage(input, spec({ width: 200, fit: "inside" }))).data).metadata();
    expect([kept.width, kept.height]).toEqual([50, 40]);
    const grown = await sharp(
      (await resizeImage(input, spec({ width: 200, fit: "inside", enlarge: true }))).data,
    ).metadata();
    expect([grown.width, grown.height]).toEqual([200, 160]);
  });

  it("dpr=2 doubles the output size (through options and plan)", async () => {
    const input = await solidImage(800, 400, "png");
    const limits = loadConfig({ env: {} }).limits;
    const probe = await probeImage(input, limits);
    const one = planResize(parseResizeOptions({ w: "100" }, limits), probe, undefined, limits).spec;
    const two = planResize(parseResizeOptions({ w: "100", dpr: "2" }, limits), probe, undefined, limits).spec;
    const a = await sharp((await resizeImage(input, one)).data).metadata();
    const b = await sharp((await resizeImage(input, two)).data).metadata();
    expect([a.width, a.height]).toEqual([100, 50]);
    expect([b.width, b.height]).toEqual([200, 100]);
  });
});

describe("resizeImage: colour and background", () => {
  it("contain pads with the given background colour", async () => {
    const input = await solidImage(400, 200, "png");
    const { data } = await resizeImage(
      input,
      spec({ fit: "contain", width: 100, height: 100, background: "#0000ff" }),
    );
    expect(await pixel(data, 0, 0)).toEqual([0, 0, 255, 255]);
    expect(await pixel(data, 99, 99)).toEqual([0, 0, 255, 255]);
  });

  it("contain pads with transparency by default where the format has alpha, and white for JPEG", async () => {
    const input = await solidImage(400, 200, "png");
    const png = await resizeImage(
      input,
      spec({ fit: "contain", width: 100, height: 100, outputFormat: "png" }),
    );
    expect((await pixel(png.data, 0, 0))[3]).toBe(0);
    const jpeg = await resizeImage(
      input,
      spec({ fit: "contain", width: 100, height: 100, outputFormat: "jpeg" }),
    );
    expectColour((await pixel(jpeg.data, 0, 0)).slice(0, 3), [255, 255, 255], 2);
  });

  it("flattens transparency on white for JPEG output", async () => {
    const { data } = await resizeImage(await transparentPng(), spec({ outputFormat: "jpeg", width: 32 }));
    const meta = await sharp(data).metadata();
    expect([meta.format, meta.channels, meta.hasAlpha]).toEqual(["jpeg", 3, false]);
    expectColour((await pixel(data, 16, 16)).slice(0, 3), [255, 255, 255], 2);
  });

  it("flattens transparency on the background when one is given", async () => {
    const { data } = await resizeImage(
      await transparentPng(),
      spec({ outputFormat: "jpeg", width: 32, background: "#ff0000" }),
    );
    expectColour((await pixel(data, 16, 16)).slice(0, 3), [255, 0, 0], 4);
  });

  it("keeps transparency for PNG output without a background", async () => {
    const { data } = await resizeImage(await transparentPng(), spec({ outputFormat: "png", width: 32 }));
    expect((await pixel(data, 16, 16))[3]).toBe(0);
  });

  it("turns a CMYK JPEG into 3-channel sRGB", { skip: !hasCorpus }, async () => {
    const input = corpusFile("good", "Channel_digital_image_CMYK_color.jpg");
    expect((await sharp(input).metadata()).space).toBe("cmyk");
    const { data } = await resizeImage(
      input,
      spec({ inputFormat: "jpeg", outputFormat: "jpeg", width: 200 }),
    );
    const meta = await sharp(data).metadata();
    expect([meta.format, meta.space, meta.channels, meta.width]).toEqual(["jpeg", "srgb", 3, 200]);
  });
});

describe("resizeImage: metadata", () => {
  const withExif = () =>
    sharp({ create: { width: 120, height: 80, channels: 3, background: "#336699" } })
      .withExif({ IFD0: { Copyright: "imgfleet test copyright", Artist: "imgfleet" } })
      .jpeg()
      .toBuffer();

  it("the input carries EXIF (sanity check of the fixture)", async () => {
    const meta = await sharp(await withExif()).metadata();
    expect(meta.exif?.toString("latin1")).toContain("imgfleet test copyright");
  });

  it("strip=true removes EXIF", async () => {
    const { data } = await resizeImage(
      await withExif(),
      spec({ inputFormat: "jpeg", outputFormat: "jpeg", width: 60 }),
    );
    const meta = await sharp(data).metadata();
    expect(meta.exif).toBeUndefined();
    expect(data.toString("latin1")).not.toContain("imgfleet test copyright");
  });

  it("strip=false keeps EXIF", async () => {
    const { data } = await resizeImage(
      await withExif(),
      spec({ inputFormat: "jpeg", outputFormat: "jpeg", width: 60, strip: false }),
    );
    const meta = await sharp(data).metadata();
    expect(meta.exif?.toString("latin1")).toContain("imgfleet test copyright");
    expect(meta.width).toBe(60);
  });

  it("applies the EXIF orientation and resets it", async () => {
    // 120×80 stored, orientation 6 (rotate 90° clockwise): shown as 80×120.
    const rotated = await sharp({ create: { width: 120, height: 80, channels: 3, background: "#808080" } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const { data } = await resizeImage(
      rotated,
      spec({ inputFormat: "jpeg", outputFormat: "jpeg", strip: false }),
    );
    const meta = await sharp(data).metadata();
    expect([meta.width, meta.height]).toEqual([80, 120]);
    expect(meta.orientation ?? 1).toBe(1);
  });
});

describe("resizeImage: filters and quality", () => {
  it("blur reduces the detail of a noise image", async () => {
    const input = await noiseImage(200);
    const plain = await resizeImage(input, spec({ inputFormat: "jpeg", width: 200 }));
    const blurred = await resizeImage(input, spec({ inputFormat: "jpeg", width: 200, blur: 3 }));
    expect(await detail(blurred.data)).toBeLessThan((await detail(plain.data)) * 0.5);
  });

  it("sharpen increases the detail of a soft image", async () => {
    const soft = await sharp(await noiseImage(200))
      .blur(2)
      .png()
      .toBuffer();
    const plain = await resizeImage(soft, spec({ width: 200 }));
    const sharpened = await resizeImage(soft, spec({ width: 200, sharpen: 3 }));
    expect(await detail(sharpened.data)).toBeGreaterThan((await detail(plain.data)) * 1.1);
  });

  it.each(["jpeg", "webp", "avif"] as const)("lower quality gives fewer %s bytes", async (outputFormat) => {
    const input = await noiseImage(200);
    const low = await resizeImage(input, spec({ inputFormat: "jpeg", outputFormat, quality: 20 }));
    const high = await resizeImage(input, spec({ inputFormat: "jpeg", outputFormat, quality: 90 }));
    expect(low.data.length).toBeLessThan(high.data.length * 0.8);
    expect(low.info.bytes).toBe(low.data.length);
  });

  it("a PNG quality quantises to a palette and shrinks the file", async () => {
    const input = await noiseImage(200);
    const full = await resizeImage(input, spec({ inputFormat: "jpeg", outputFormat: "png" }));
    const palette = await resizeImage(input, spec({ inputFormat: "jpeg", outputFormat: "png", quality: 50 }));
    expect((await sharp(palette.data).metadata()).isPalette).toBe(true);
    expect((await sharp(full.data).metadata()).isPalette).toBe(false);
    expect(palette.data.length).toBeLessThan(full.data.length);
  });
});

describe("resizeImage: formats", () => {
  it.each(OUTPUT_FORMATS)("writes %s", async (outputFormat) => {
    const { data, info } = await resizeImage(
      await splitImage(200, 100),
      spec({ outputFormat, width: 80, height: 40 }),
    );
    const meta = await sharp(data).metadata();
    expect([meta.format === "heif" ? meta.compression : meta.format, meta.width, meta.height]).toEqual([
      outputFormat === "avif" ? "av1" : outputFormat,
      80,
      40,
    ]);
    expect(info).toMatchObject({ format: outputFormat, width: 80, height: 40, pages: 1, bytes: data.length });
    expectColour((await pixel(data, 5, 20)).slice(0, 3), [255, 0, 0], 40);
  });

  it.each(["gif", "webp"] as const)(
    "keeps every frame of an animated GIF as %s with pages > 1",
    async (outputFormat) => {
      const input = await animatedGif(4, 40, 30);
      const { data, info } = await resizeImage(
        input,
        spec({ inputFormat: "gif", outputFormat, pages: 4, width: 20, height: 15 }),
      );
      const meta = await sharp(data, { animated: true }).metadata();
      expect([meta.format, meta.pages, meta.width, meta.pageHeight]).toEqual([outputFormat, 4, 20, 15]);
      expect(info).toMatchObject({ pages: 4, width: 20, height: 15 });
    },
  );

  it("writes one frame of an animated GIF with pages=1", async () => {
    const input = await animatedGif(4, 40, 30);
    const { data, info } = await resizeImage(
      input,
      spec({ inputFormat: "gif", outputFormat: "gif", width: 20 }),
    );
    const meta = await sharp(data, { animated: true }).metadata();
    expect([meta.pages ?? 1, meta.width, meta.height]).toEqual([1, 20, 15]);
    expect(info).toMatchObject({ pages: 1, width: 20, height: 15 });
  });

  it("renders an SVG at the requested size through density, not by enlarging", async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" viewBox="0 0 10 10">' +
        '<rect width="5" height="10" fill="#ff0000"/><rect x="5" width="5" height="10" fill="#0000ff"/></svg>',
    );
    const limits = { ...loadConfig({ env: {} }).limits, inputFormats: ["svg" as const] };
    const probe = await probeImage(svg, limits);
    const { spec: planned } = planResize(parseResizeOptions({ w: "200" }, limits), probe, undefined, limits);
    expect(planned.density).toBe(72 * 20);
    const { data } = await resizeImage(svg, planned);
    const meta = await sharp(data).metadata();
    expect([meta.width, meta.height]).toEqual([200, 200]);
    // Rendered large, the edge between the halves stays sharp.
    expectColour((await pixel(data, 97, 100)).slice(0, 3), [255, 0, 0], 4);
    expectColour((await pixel(data, 102, 100)).slice(0, 3), [0, 0, 255], 4);
    // Without density the 10 px drawing is not enlarged.
    const small = await resizeImage(svg, { ...planned, density: undefined });
    expect(small.info).toMatchObject({ width: 10, height: 10 });
  });
});

describe("resizeImage: failures", () => {
  it("rejects an input beyond maxInputPixels, classified as too-many-pixels", async () => {
    const input = await solidImage(1100, 1000, "png");
    const error = await resizeImage(
      input,
      spec({ width: 10, limits: { maxInputPixels: 1_000_000, maxOutputDimension: 8192, timeoutMs: 10_000 } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(classifySharpError(error).code).toBe("too-many-pixels");
    // Just within the limit it works.
    const ok = await resizeImage(
      await solidImage(1000, 1000, "png"),
      spec({ width: 10, limits: { maxInputPixels: 1_000_000, maxOutputDimension: 8192, timeoutMs: 10_000 } }),
    );
    expect(ok.info.width).toBe(10);
  });

  it("rejects a truncated JPEG, classified as corrupt-image", async () => {
    const whole = await noiseImage(300);
    const truncated = whole.subarray(0, Math.floor(whole.length / 2));
    const error = await resizeImage(
      truncated,
      spec({ inputFormat: "jpeg", outputFormat: "jpeg", width: 100 }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const problem = classifySharpError(error);
    expect(problem.code).toBe("corrupt-image");
    expect(problem.detail).toMatch(/^the image could not be decoded: /);
  });

  it("rejects bytes that are no image, classified as unsupported-format", async () => {
    const error = await resizeImage(Buffer.from("hello, this is not an image"), spec()).catch(
      (e: unknown) => e,
    );
    expect(classifySharpError(error).code).toBe("unsupported-format");
  });

  it.each([
    ["something odd happened", "corrupt-image"],
    ["Input image exceeds pixel limit", "too-many-pixels"],
    ["timeout: 10% complete", "timeout"],
    ["Processed image is too large for the WebP format", "bad-option"],
    ["VipsJpeg: Premature end of input file", "corrupt-image"],
  ])("classifies %j while running over the client's bytes as %s", (message, code) => {
    const problem = classifySharpError(new ImageRunError(new Error(`${message}\nsecond line`)));
    expect(problem.code).toBe(code);
    expect(problem.detail).toContain(message);
    expect(problem.detail).not.toContain("second line");
  });

  it("classifies a failure outside the run (building the pipeline: our bug) as internal, whatever it says", () => {
    for (const message of ["something odd happened", "VipsJpeg: Premature end of input file"])
      expect(classifySharpError(new Error(message)).code).toBe("internal");
    expect(classifySharpError(42)).toEqual({ code: "internal", detail: "resize failed: 42" });
  });

  it("a spec sharp refuses while building is internal, not the client's image", async () => {
    const error = await resizeImage(
      await solidImage(40, 30, "png"),
      spec({ width: 10, height: 10, position: "__proto__" as never }),
    ).catch((e: unknown) => e);
    expect(classifySharpError(error).code).toBe("internal");
  });
});
