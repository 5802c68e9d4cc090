import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { InputFormat } from "../../src/config/schema.js";
import { readHeader } from "../../src/image/header.js";
import { corpusFile, corpusFiles, hasCorpus } from "../helpers/corpus.js";
import { animatedGif, solidImage } from "../helpers/images.js";

/** What libvips says, the reference the JavaScript reader must agree with. */
async function libvipsHeader(bytes: Buffer) {
  const m = await sharp(bytes).metadata();
  return { width: m.width, height: m.pageHeight ?? m.height, pages: m.pages ?? 1, hasAlpha: m.hasAlpha };
}

const FORMATS: Record<string, InputFormat> = {
  jpg: "jpeg",
  jpeg: "jpeg",
  png: "png",
  gif: "gif",
  webp: "webp",
};

describe("readHeader agrees with libvips", () => {
  it.each([
    ["jpeg", () => solidImage(321, 123, "jpeg")],
    [
      "png opaque",
      () =>
        sharp({ create: { width: 70, height: 9, channels: 3, background: "#123456" } })
          .png()
          .toBuffer(),
    ],
    ["png with alpha", () => solidImage(64, 48, "png", { r: 1, g: 2, b: 3, alpha: 0.5 })],
    [
      "png palette with tRNS",
      () =>
        solidImage(40, 30, "png", { r: 0, g: 0, b: 0, alpha: 0 }).then((b) =>
          sharp(b).png({ palette: true }).toBuffer(),
        ),
    ],
    ["webp lossy", () => solidImage(300, 200, "jpeg").then((b) => sharp(b).webp().toBuffer())],
    [
      "webp lossless alpha",
      () =>
        solidImage(30, 20, "png", { r: 9, g: 9, b: 9, alpha: 0.3 }).then((b) =>
          sharp(b).webp({ lossless: true }).toBuffer(),
        ),
    ],
    ["webp animated", () => animatedGif(4).then((b) => sharp(b, { animated: true }).webp().toBuffer())],
    ["gif animated", () => animatedGif(5, 33, 22)],
    ["gif still", () => solidImage(17, 13, "gif")],
  ] as const)("%s", async (name, make) => {
    const bytes = await make();
    const format = (name.split(" ")[0] === "jpeg" ? "jpeg" : name.split(" ")[0]) as InputFormat;
    expect(readHeader(format, bytes)).toEqual(await libvipsHeader(bytes));
  });

  it.runIf(hasCorpus).each(corpusFiles("good").filter((f) => FORMATS[f.split(".").pop() ?? ""]))(
    "corpus good/%s",
    async (name) => {
      const bytes = corpusFile("good", name);
      const format = FORMATS[name.split(".").pop() ?? ""] as InputFormat;
      expect(readHeader(format, bytes)).toEqual(await libvipsHeader(bytes));
    },
  );

  it("gives up, rather than guesses, on a header cut short", async () => {
    const jpeg = await solidImage(100, 100, "jpeg");
    expect(readHeader("jpeg", jpeg.subarray(0, 20))).toBeUndefined();
    expect(readHeader("png", Buffer.from([0x89, 0x50, 0x4e, 0x47]))).toBeUndefined();
    expect(readHeader("tiff", await solidImage(10, 10, "tiff"))).toBeUndefined();
  });
});
