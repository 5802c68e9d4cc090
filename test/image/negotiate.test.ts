import { describe, expect, it } from "vitest";
import type { InputFormat } from "../../src/config/schema.js";
import { OUTPUT_FORMATS } from "../../src/image/formats.js";
import { chooseOutputFormat } from "../../src/image/negotiate.js";

const still = (format: InputFormat, hasAlpha = false) => ({ format, hasAlpha, animated: false });
const BROWSER = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

describe("chooseOutputFormat: explicit format", () => {
  it.each(OUTPUT_FORMATS)("format=%s wins over Accept and input, and does not vary by Accept", (format) => {
    for (const input of [
      still("png", true),
      still("tiff"),
      { format: "gif" as const, hasAlpha: true, animated: true },
    ]) {
      expect(chooseOutputFormat(format, BROWSER, input)).toEqual({ format, variesByAccept: false });
      expect(chooseOutputFormat(format, undefined, input)).toEqual({ format, variesByAccept: false });
    }
  });
});

describe("chooseOutputFormat: format=auto", () => {
  it.each<[string | undefined, boolean, boolean, string]>([
    ["image/avif,image/webp,*/*", false, false, "avif"],
    [BROWSER, false, false, "avif"],
    ["image/webp,*/*", false, false, "webp"],
    ["image/webp", true, false, "webp"],
    ["image/avif;q=0, image/webp", false, false, "webp"],
    ["image/avif; q=0, image/webp;q=0.5", false, false, "webp"],
    ["IMAGE/AVIF;Q=0.0,image/webp;q=0", false, false, "jpeg"],
    ["image/avif;q=0.1", false, false, "avif"],
    ["*/*", false, false, "jpeg"],
    ["", false, false, "jpeg"],
    [undefined, false, false, "jpeg"],
    [undefined, true, false, "png"],
    ["text/html,*/*", true, false, "png"],
    // libheif writes no animated AVIF: animation falls to webp, or gif.
    ["image/avif,image/webp,*/*", false, true, "webp"],
    ["image/avif,*/*", false, true, "gif"],
    [undefined, true, true, "gif"],
  ])("Accept %j, alpha %s, animated %s → %s", (accept, hasAlpha, animated, expected) => {
    expect(chooseOutputFormat("auto", accept, { format: "jpeg", hasAlpha, animated })).toEqual({
      format: expected,
      variesByAccept: true,
    });
  });
});

describe("chooseOutputFormat: no format", () => {
  it.each(["jpeg", "png", "webp", "avif", "gif"] as const)(
    "keeps %s input as %s and ignores Accept",
    (format) => {
      for (const hasAlpha of [false, true]) {
        expect(chooseOutputFormat(undefined, BROWSER, still(format, hasAlpha))).toEqual({
          format,
          variesByAccept: false,
        });
      }
    },
  );

  it("keeps an animated gif a gif", () => {
    expect(
      chooseOutputFormat(undefined, BROWSER, { format: "gif", hasAlpha: false, animated: true }),
    ).toEqual({
      format: "gif",
      variesByAccept: false,
    });
  });

  it.each(["tiff", "heif", "svg"] as const)("writes %s input as jpeg, or png when it has alpha", (format) => {
    expect(chooseOutputFormat(undefined, "image/avif,image/webp", still(format, false))).toEqual({
      format: "jpeg",
      variesByAccept: false,
    });
    expect(chooseOutputFormat(undefined, "image/avif,image/webp", still(format, true))).toEqual({
      format: "png",
      variesByAccept: false,
    });
  });
});
