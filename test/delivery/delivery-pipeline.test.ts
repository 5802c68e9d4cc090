import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ImageLimits } from "../../src/config/schema.js";
import { type DeliveryEnvelope, interpretDeliveryPath } from "../../src/delivery/delivery-request.js";
import { MappedResolver } from "../../src/delivery/fetcher/resolver.js";
import { SourceFetcher } from "../../src/delivery/fetcher/source-fetcher.js";
import { presetsFrom, resolveAutoFit } from "../../src/delivery/processing-options.js";
import { type SigningKey, signPath } from "../../src/delivery/signature.js";
import { ProblemError } from "../../src/errors/problem.js";
import { resizeImage } from "../../src/image/pipeline.js";
import { planResize } from "../../src/image/plan.js";
import { probeImage } from "../../src/image/probe.js";
import { Origin } from "../helpers/origin.js";

/**
 * Every supported option, end to end without the HTTP route: a signed
 * imgproxy URL is interpreted, its source fetched from a real origin, then
 * probed, planned and resized by the same functions POST /v1/resize uses.
 */

const limits: ImageLimits = loadConfig({ env: {} }).limits;
const NOW = new Date("2026-06-01T00:00:00Z");
const KEY: SigningKey = { id: "k1", key: "5a".repeat(32), salt: "a5".repeat(32) };

let origin: Origin;
let fetcher: SourceFetcher;
let envelope: DeliveryEnvelope;

function rgbImage(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]) {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(pixel(x, y), (y * width + x) * 3);
  }
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

const noisy = (width: number, height: number) =>
  sharp({
    create: {
      width,
      height,
      channels: 3,
      background: "#808080",
      noise: { type: "gaussian", mean: 128, sigma: 40 },
    },
  });

beforeAll(async () => {
  origin = await Origin.start();
  origin.file(
    "/landscape.jpg",
    await noisy(640, 480)
      .withExif({ IFD0: { Copyright: "Origin Ltd" } })
      .jpeg()
      .toBuffer(),
  );
  origin.file("/portrait.jpg", await noisy(480, 640).jpeg().toBuffer());
  origin.file(
    "/left-white.png",
    await rgbImage(640, 480, (x) => (x < 320 ? [255, 255, 255] : [0, 0, 0]))
      .png()
      .toBuffer(),
  );
  origin.file(
    "/top-white.png",
    await rgbImage(640, 480, (_x, y) => (y < 240 ? [255, 255, 255] : [0, 0, 0]))
      .png()
      .toBuffer(),
  );
  const transparent = {
    width: 100,
    height: 100,
    channels: 4 as const,
    background: { r: 0, g: 0, b: 0, alpha: 0 },
  };
  origin.file("/transparent.png", await sharp({ create: transparent }).png().toBuffer());
  origin.file("/rotated.jpg", await noisy(640, 480).withMetadata({ orientation: 6 }).jpeg().toBuffer());
  origin.file(
    "/big.png",
    await sharp({ create: { width: 2000, height: 1000, channels: 3, background: "#123456" } })
      .png()
      .toBuffer(),
  );
  fetcher = new SourceFetcher({
    resolver: new MappedResolver({ "origin.test": "127.0.0.1" }),
    allowNetworks: ["127.0.0.1/32"],
    allowHttp: true,
    connectTimeoutMs: 5_000,
    totalTimeoutMs: 15_000,
    maxBytes: 20 * 1024 * 1024,
  });
  envelope = {
    signingKeys: [KEY],
    acceptUnsigned: false,
    sources: [origin.url("/", "origin.test")],
    presets: presetsFrom({ thumb: "rs:fill:64:64/q:60" }, limits),
  };
});

afterAll(async () => {
  fetcher.close();
  await origin.close();
});

/** A signed delivery path for `options` (slash-separated) and a source path on the origin. */
function signed(options: string, source: string, extension = ""): string {
  const path = `/${options ? `${options}/` : ""}plain/${origin.url(source, "origin.test")}${extension}`;
  return `/${signPath(path, KEY)}${path}`;
}

async function deliver(path: string, accept?: string, imageLimits: ImageLimits = limits) {
  const delivery = interpretDeliveryPath(path, envelope, { limits: imageLimits, now: NOW });
  const fetched = await fetcher.fetch({
    url: delivery.request.source,
    isAllowedSource: delivery.isAllowedSource,
  });
  if (fetched.kind !== "fetched") throw new Error("expected bytes");
  const probe = await probeImage(fetched.bytes, imageLimits);
  const plan = planResize(resolveAutoFit(delivery.options, probe), probe, accept, imageLimits);
  const result = await resizeImage(fetched.bytes, plan.spec);
  return { ...result, variesByAccept: plan.variesByAccept, meta: await sharp(result.data).metadata() };
}

async function pixel(data: Buffer, x: number, y: number): Promise<number[]> {
  const { data: raw, info } = await sharp(data).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...raw.subarray(at, at + 3)];
}

async function rejection(promise: Promise<unknown>): Promise<ProblemError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    return error as ProblemError;
  }
  throw new Error("delivered");
}

describe("sizes and resizing types through the real pipeline", () => {
  it.each([
    ["rs:fit:100:100", 100, 75],
    ["rs:fill:100:100", 100, 100],
    ["rs:force:100:50", 100, 50],
    ["resize:fill-down:1000:1000", 640, 480],
    ["rs:fit:1000:1000:1", 1000, 750],
    ["s:100:100", 100, 75],
    ["size:100:100/rt:fill", 100, 100],
    ["w:100", 100, 75],
    ["width:100/height:100/resizing_type:force", 100, 100],
    ["h:60", 80, 60],
    ["w:100/dpr:2", 200, 150],
    ["rs:fit:200:200:0:1", 200, 200],
    ["pr:thumb", 64, 64],
  ])("%s gives %i×%i", async (options, width, height) => {
    const { info } = await deliver(signed(options, "/landscape.jpg"));
    expect([info.width, info.height]).toEqual([width, height]);
  });

  it("rt:auto fills a box of the source's orientation and fits one of the other", async () => {
    expect((await deliver(signed("rs:auto:200:100", "/landscape.jpg"))).info).toMatchObject({
      width: 200,
      height: 100,
    });
    expect((await deliver(signed("rs:auto:200:100", "/portrait.jpg"))).info).toMatchObject({
      width: 75,
      height: 100,
    });
  });

  it("EXIF orientation is applied before sizing (a 640×480 file shown turned is 480×640)", async () => {
    expect((await deliver(signed("w:240", "/rotated.jpg"))).info).toMatchObject({ width: 240, height: 320 });
  });
});

describe("gravity, extend and background", () => {
  it("g:we and g:ea keep the left or right of a fill crop; g:no and g:so the top or bottom", async () => {
    expect(
      await pixel((await deliver(signed("rs:fill:50:100/g:we", "/left-white.png"))).data, 25, 50),
    ).toEqual([255, 255, 255]);
    expect(
      await pixel((await deliver(signed("rs:fill:50:100/g:ea", "/left-white.png"))).data, 25, 50),
    ).toEqual([0, 0, 0]);
    expect(
      await pixel((await deliver(signed("rs:fill:100:20/g:no", "/top-white.png"))).data, 50, 10),
    ).toEqual([255, 255, 255]);
    expect(
      await pixel((await deliver(signed("rs:fill:100:20/gravity:so", "/top-white.png"))).data, 50, 10),
    ).toEqual([0, 0, 0]);
    for (const g of ["ce", "sm", "noea", "nowe", "soea", "sowe"]) {
      expect((await deliver(signed(`rs:fill:50:50/g:${g}`, "/landscape.jpg"))).info.width, g).toBe(50);
    }
  });

  it("extend pads with the background at its gravity", async () => {
    const centred = await deliver(signed("rs:fit:200:200:0:1/bg:ff0000/f:png", "/left-white.png"));
    expect(await pixel(centred.data, 100, 2)).toEqual([255, 0, 0]);
    expect(await pixel(centred.data, 100, 197)).toEqual([255, 0, 0]);
    const top = await deliver(signed("s:200:200/ex:1:no/background:0:0:255/f:png", "/left-white.png"));
    expect(await pixel(top.data, 10, 2)).toEqual([255, 255, 255]);
    expect(await pixel(top.data, 10, 197)).toEqual([0, 0, 255]);
  });

  it("background flattens transparency", async () => {
    const { data, info } = await deliver(signed("bg:00ff00/f:jpg", "/transparent.png"));
    expect(info.format).toBe("jpeg");
    const [r = 0, g = 0, b = 0] = await pixel(data, 50, 50);
    expect(g).toBeGreaterThan(240);
    expect(r + b).toBeLessThan(30);
  });
});

describe("format, quality, effects and metadata", () => {
  it("the extension and format pick the output; f:auto follows Accept and says so", async () => {
    expect((await deliver(signed("w:50", "/landscape.jpg", "@webp"))).info.format).toBe("webp");
    expect((await deliver(signed("f:png", "/landscape.jpg"))).info.format).toBe("png");
    expect((await deliver(signed("format:avif/w:50", "/landscape.jpg"))).info.format).toBe("avif");
    expect((await deliver(signed("w:50", "/landscape.jpg"))).info.format).toBe("jpeg");
    const auto = await deliver(signed("f:auto/w:50", "/landscape.jpg"), "image/webp,image/*");
    expect(auto).toMatchObject({ variesByAccept: true, info: { format: "webp" } });
  });

  it("quality changes the bytes", async () => {
    const low = await deliver(signed("w:300/q:10", "/landscape.jpg"));
    const high = await deliver(signed("w:300/quality:95", "/landscape.jpg"));
    expect(low.info.bytes).toBeLessThan(high.info.bytes / 2);
  });

  it("blur smooths and sharpen sharpens", async () => {
    const spread = async (options: string) => {
      const { data } = await deliver(signed(options, "/landscape.jpg"));
      return (await sharp(data).stats()).channels[0]?.stdev ?? 0;
    };
    const plain = await spread("w:200/f:png");
    expect(await spread("w:200/bl:4/f:png")).toBeLessThan(plain * 0.5);
    expect(await spread("w:200/sh:3/f:png")).toBeGreaterThan(plain);
  });

  it("metadata is stripped unless sm:0", async () => {
    expect((await deliver(signed("w:100", "/landscape.jpg"))).meta.exif).toBeUndefined();
    const kept = await deliver(signed("w:100/sm:0", "/landscape.jpg"));
    expect(kept.meta.exif?.toString("latin1")).toContain("Origin Ltd");
  });

  it("a cachebuster changes nothing in the image", async () => {
    const busted = await deliver(signed("w:100/cb:v2/f:png", "/left-white.png"));
    const plain = await deliver(signed("w:100/f:png", "/left-white.png"));
    expect(busted.data.equals(plain.data)).toBe(true);
  });
});

describe("refusals before and after the fetch", () => {
  it("a bad signature, an expired URL, an unsupported option and a source outside the account are refused unfetched", async () => {
    const before = origin.requests("/landscape.jpg");
    const good = signed("w:100", "/landscape.jpg");
    const tampered = good.replace("w:100", "w:101");
    expect((await rejection(deliver(tampered))).code).toBe("invalid-signature");
    expect((await rejection(deliver(signed("exp:1700000000/w:100", "/landscape.jpg")))).code).toBe(
      "url-expired",
    );
    expect((await rejection(deliver(signed("crop:10:10", "/landscape.jpg")))).code).toBe(
      "unsupported-option",
    );
    const elsewhere = "/plain/https://elsewhere.example/landscape.jpg";
    expect((await rejection(deliver(`/${signPath(elsewhere, KEY)}${elsewhere}`))).code).toBe(
      "source-not-allowed",
    );
    expect(origin.requests("/landscape.jpg")).toBe(before);
  });

  it("the input guards of POST /v1/resize apply to the fetched source", async () => {
    const strict: ImageLimits = { ...limits, maxInputPixels: 1_000_000 };
    expect((await rejection(deliver(signed("w:100", "/big.png"), undefined, strict))).code).toBe(
      "too-many-pixels",
    );
    const noPng: ImageLimits = { ...limits, inputFormats: limits.inputFormats.filter((f) => f !== "png") };
    expect((await rejection(deliver(signed("w:100", "/left-white.png"), undefined, noPng))).code).toBe(
      "unsupported-format",
    );
  });
});
