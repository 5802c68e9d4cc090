import { crc32, deflateSync } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ImageLimits, InputFormat } from "../../src/config/schema.js";
import { ProblemError } from "../../src/errors/problem.js";
import { sniffFormat } from "../../src/image/formats.js";
import { framesToDecode, type Probe, probeImage } from "../../src/image/probe.js";
import { corpusFile, hasCorpus } from "../helpers/corpus.js";
import { animatedGif, solidImage } from "../helpers/images.js";

const defaults: ImageLimits = loadConfig({ env: {} }).limits;
const withSvg: ImageLimits = { ...defaults, inputFormats: [...defaults.inputFormats, "svg"] };

/** The ProblemError probeImage rejects with; fails the test when it resolves. */
async function rejection(input: Buffer, limits: ImageLimits = defaults): Promise<ProblemError> {
  const result = await probeImage(input, limits).then(
    (probe) => new Error(`accepted as ${JSON.stringify(probe)}`),
    (error: unknown) => error,
  );
  expect(result).toBeInstanceOf(ProblemError);
  return result as ProblemError;
}

/** A PNG chunk with its length and a correct CRC. */
function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG that is little more than a header: it claims width×height RGB but holds one row of pixel data at most. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, adaptive filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(Buffer.alloc(Math.min(width * 3 + 1, 1024)))),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

const svg = (body: string, head = "") =>
  Buffer.from(`${head}<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">${body}</svg>`);

describe("probeImage: real images", () => {
  it.each(["jpeg", "png", "webp", "gif", "avif", "tiff"] as const)(
    "recognises %s made by sharp and reads its size",
    async (format) => {
      const input = await solidImage(64, 48, format);
      expect(sniffFormat(input)).toEqual({ kind: "image", format });
      const probe = await probeImage(input, defaults);
      expect(probe).toMatchObject({ format, width: 64, height: 48, pages: 1 });
    },
  );

  it("reports alpha", async () => {
    const opaque = await probeImage(await solidImage(8, 8, "jpeg"), defaults);
    const alpha = await probeImage(await solidImage(8, 8, "png", { r: 0, g: 0, b: 0, alpha: 0.5 }), defaults);
    expect([opaque.hasAlpha, alpha.hasAlpha]).toEqual([false, true]);
  });

  it("reads the frame count and the height of one frame of an animated GIF", async () => {
    const probe = await probeImage(await animatedGif(3, 40, 30), defaults);
    expect(probe).toMatchObject({ format: "gif", width: 40, height: 30, pages: 3 });
  });

  it("sniffs by content, not by what the bytes are called", async () => {
    const png = await solidImage(10, 10, "png");
    // A JPEG signature is three bytes; anything else is judged by its own magic.
    expect((await probeImage(png, defaults)).format).toBe("png");
    expect(sniffFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]))).toEqual({
      kind: "image",
      format: "jpeg",
    });
  });

  it.each([
    ["heic", "heif"],
    ["heix", "heif"],
    ["mif1", "heif"],
    ["avif", "avif"],
    ["avis", "avif"],
  ])("sniffs an ISO-BMFF file with brand %s as %s", (brand, format) => {
    const head = Buffer.concat([
      Buffer.from([0, 0, 0, 0x18]),
      Buffer.from(`ftyp${brand}`, "latin1"),
      Buffer.alloc(12),
    ]);
    expect(sniffFormat(head)).toEqual({ kind: "image", format });
  });
});

describe("probeImage: refused formats", () => {
  it.each<[string, Buffer, string, string]>([
    [
      "JPEG 2000 (jp2 box)",
      Buffer.from("0000000c6a5020200d0a870a00000014667479706a703220", "hex"),
      "jp2",
      "JPEG 2000",
    ],
    ["JPEG 2000 (codestream)", Buffer.from("ff4fff51002f0000", "hex"), "jp2", "JPEG 2000"],
    ["JPEG 2000 (ftyp jp2)", Buffer.from("00000014667479706a703220", "hex"), "jp2", "JPEG 2000"],
    ["JPEG XL", Buffer.from("ff0afa7f00000000", "hex"), "jxl", "JPEG XL"],
    ["BMP", Buffer.concat([Buffer.from("BM", "latin1"), Buffer.alloc(52)]), "bmp", "BMP"],
    ["ICO", Buffer.from("0000010001001010", "hex"), "ico", "ICO"],
    ["PDF", Buffer.from("%PDF-1.7\n%âãÏÓ\n1 0 obj\n", "latin1"), "pdf", "PDF"],
    ["PSD", Buffer.from("8BPS\0\x01\0\0\0\0\0\0", "latin1"), "psd", "Photoshop PSD"],
  ])("refuses %s as unsupported-format naming it", async (_label, input, format, name) => {
    const error = await rejection(input);
    expect(error.code).toBe("unsupported-format");
    expect(error.status).toBe(415);
    expect(error.extras.format).toBe(format);
    expect(error.message).toContain(`${name} input is not accepted here`);
    expect(error.message).toContain("jpeg, png, webp");
  });

  it("refuses the corpus JPEG 2000 file", { skip: !hasCorpus }, async () => {
    const error = await rejection(corpusFile("bad", "relax.jp2"));
    expect([error.code, error.extras.format]).toEqual(["unsupported-format", "jp2"]);
  });

  it.each(["jpeg", "png", "webp", "gif", "avif", "tiff"] as const)(
    "refuses %s when inputFormats does not list it",
    async (format) => {
      const limits: ImageLimits = {
        ...defaults,
        inputFormats: defaults.inputFormats.filter((f: InputFormat) => f !== format),
      };
      const error = await rejection(await solidImage(16, 16, format), limits);
      expect(error.code).toBe("unsupported-format");
      expect(error.extras).toMatchObject({ format, accepted: limits.inputFormats });
      expect(error.message).toMatch(new RegExp(`^${format} input is not accepted here`));
    },
  );

  it("refuses bytes that are no image at all", async () => {
    const error = await rejection(Buffer.from("just some text, not an image"));
    expect(error.code).toBe("unsupported-format");
    expect(error.message).toContain("not an image");
    expect(error.extras.accepted).toEqual(defaults.inputFormats);
  });

  it("answers an empty body with empty-body", async () => {
    const error = await rejection(Buffer.alloc(0));
    expect([error.code, error.status]).toEqual(["empty-body", 400]);
  });

  it("answers a PNG with a broken header with corrupt-image", async () => {
    const broken = Buffer.concat([
      Buffer.from("89504e470d0a1a0a", "hex"),
      Buffer.from("garbage that is no chunk"),
    ]);
    expect((await rejection(broken)).code).toBe("corrupt-image");
  });
});

describe("probeImage: pixel limits from the header", () => {
  it("the crafted header is a readable PNG header (sanity check of the fixture)", async () => {
    const meta = await sharp(pngHeaderOnly(300, 200)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 300, 200]);
  });

  it("refuses a PNG that claims 100000×100000 as too-many-pixels without decoding it", async () => {
    // The file holds a few hundred bytes of pixel data: a decoder would call it truncated, the header check says too big.
    const error = await rejection(pngHeaderOnly(100_000, 100_000));
    expect(error.code).toBe("too-many-pixels");
    expect(error.status).toBe(422);
    expect(error.extras).toMatchObject({ width: 100_000, height: 100_000, maxPixels: 50_000_000 });
    expect(error.message).toContain("100000×100000");
  });

  it("refuses the corpus header bomb", { skip: !hasCorpus }, async () => {
    expect((await rejection(corpusFile("bad", "header-claims-100000x100000.png"))).code).toBe(
      "too-many-pixels",
    );
  });

  it("applies the configured maxInputPixels exactly", async () => {
    const limits = { ...defaults, maxInputPixels: 10_000 };
    expect((await probeImage(pngHeaderOnly(100, 100), limits)).width).toBe(100);
    const error = await rejection(pngHeaderOnly(101, 100), limits);
    expect(error.code).toBe("too-many-pixels");
  });
});

describe("probeImage: SVG", () => {
  const plain = svg('<rect width="40" height="20" fill="red"/>');

  it("refuses SVG unless inputFormats lists it", async () => {
    const error = await rejection(plain);
    expect([error.code, error.extras.format]).toEqual(["unsupported-format", "svg"]);
    expect(error.message).toMatch(/^svg input is not accepted here/);
  });

  it("accepts a plain SVG when listed, with its size", async () => {
    expect(await probeImage(plain, withSvg)).toMatchObject({
      format: "svg",
      width: 40,
      height: 20,
      pages: 1,
    });
  });

  it("accepts an SVG with an XML declaration, internal references and data: images", async () => {
    const dot = await solidImage(2, 2, "png");
    const input = svg(
      `<defs><rect id="r" width="4" height="4"/></defs><use href="#r"/><use xlink:href="#r"/>` +
        `<image width="2" height="2" href="data:image/png;base64,${dot.toString("base64")}"/>`,
      '<?xml version="1.0" encoding="UTF-8"?>\n',
    ).toString("utf8");
    const withXlink = Buffer.from(input.replace("<svg ", '<svg xmlns:xlink="http://www.w3.org/1999/xlink" '));
    expect((await probeImage(withXlink, withSvg)).format).toBe("svg");
  });

  it.each([
    ["a <script> element", svg("<script>alert(1)</script>")],
    ["a <script> with attributes", svg('<script type="text/ecmascript">alert(1)</script>')],
    ["an onload handler", svg('<rect width="1" height="1" onload="alert(1)"/>')],
    ["an onclick handler", svg('<g onclick = "alert(1)"></g>')],
    ["an external href", svg('<image width="10" height="10" href="https://evil.example/x.png"/>')],
    ["an external xlink:href", svg("<image width='10' height='10' xlink:href='file:///etc/passwd'/>")],
    ["a javascript: link", svg('<a href="javascript:alert(1)"><rect width="1" height="1"/></a>')],
    ["a CSS @import", svg("<style>@import url(https://evil.example/x.css);</style>")],
    [
      "a CSS url() to another host",
      svg('<rect width="1" height="1" style="fill:url(http://evil.example/p)"/>'),
    ],
    [
      "a data: link that is not an image",
      svg('<a href="data:text/html,hi"><rect width="1" height="1"/></a>'),
    ],
    [
      "an entity declaration",
      svg("<text>&x;</text>", '<?xml version="1.0"?>\n<!DOCTYPE svg [ <!ENTITY x "boom"> ]>\n'),
    ],
  ])("refuses an SVG with %s", async (_label, input) => {
    const error = await rejection(input, withSvg);
    expect(error.code).toBe("unsupported-format");
    expect(error.extras.format).toBe("svg");
    expect(error.message).toContain("SVG with scripts");
  });

  it("refuses the corpus SVG with a script", { skip: !hasCorpus }, async () => {
    expect((await rejection(corpusFile("bad", "svg-script.svg"), withSvg)).code).toBe("unsupported-format");
  });
});

describe("framesToDecode", () => {
  const animation = (pages: number, width = 100, height = 100): Probe => ({
    format: "gif",
    width,
    height,
    pages,
    hasAlpha: false,
  });
  const limits: ImageLimits = { ...defaults, maxFrames: 10, maxInputPixels: 100_000 };

  it("decodes one frame unless animated output is asked for", () => {
    expect(framesToDecode(animation(500, 1000, 1000), false, limits)).toBe(1);
    expect(framesToDecode(animation(1), true, limits)).toBe(1);
  });

  it("decodes every frame within the limits", () => {
    expect(framesToDecode(animation(10), true, limits)).toBe(10);
  });

  it("refuses more than maxFrames frames with too-many-frames", () => {
    let error: unknown;
    try {
      framesToDecode(animation(11, 10, 10), true, limits);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ code: "too-many-frames", extras: { frames: 11, maxFrames: 10 } });
    expect((error as Error).message).toContain("omit it to get the first frame");
  });

  it("refuses frames whose total pixels exceed maxInputPixels", () => {
    // 9 frames of 150×100 = 135 000 px > 100 000, though each frame alone is within the limit.
    expect(() => framesToDecode(animation(9, 150, 100), true, limits)).toThrowError(
      expect.objectContaining({ code: "too-many-pixels", extras: { frames: 9, maxPixels: 100_000 } }),
    );
    expect(framesToDecode(animation(6, 150, 100), true, limits)).toBe(6);
  });

  it("works with a probe of a real animated GIF", async () => {
    const probe = await probeImage(await animatedGif(5, 40, 30), defaults);
    expect(framesToDecode(probe, true, defaults)).toBe(5);
    expect(() => framesToDecode(probe, true, { ...defaults, maxFrames: 4 })).toThrowError(
      expect.objectContaining({ code: "too-many-frames" }),
    );
  });
});
