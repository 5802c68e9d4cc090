import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ImageLimits } from "../../src/config/schema.js";
import { parseDeliveryPath } from "../../src/delivery/imgproxy-url.js";
import {
  type DeliveryOptions,
  type Presets,
  parsePresetDefinition,
  presetsFrom,
  resolveAutoFit,
  resolveDeliveryOptions,
} from "../../src/delivery/processing-options.js";
import { ProblemError } from "../../src/errors/problem.js";
import { parseResizeOptions } from "../../src/image/options.js";

const limits: ImageLimits = loadConfig({ env: {} }).limits;
const NOW = new Date("2026-06-01T00:00:00Z");
const NO_PRESETS: Presets = new Map();

/** Options of a URL whose path after the signature is `options` (slash-separated), plain source. */
function resolve(options: string, presets: Presets = NO_PRESETS, extension?: string): DeliveryOptions {
  const request = parseDeliveryPath(
    `/sig/${options ? `${options}/` : ""}plain/https://example.com/a.jpg${extension ? `@${extension}` : ""}`,
  );
  return resolveDeliveryOptions(request, { limits, presets, now: NOW });
}

function rejection(options: string, presets: Presets = NO_PRESETS): ProblemError {
  try {
    resolve(options, presets);
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    return error as ProblemError;
  }
  throw new Error(`accepted ${options}`);
}

describe("resolveDeliveryOptions: the same validated options as POST /v1/resize", () => {
  it("no options: imgproxy's defaults (fit, centre, no size), strip metadata", () => {
    const { resize, query } = resolve("");
    expect(query).toEqual({ fit: "inside", position: "centre" });
    expect(resize).toEqual(parseResizeOptions({ fit: "inside", position: "centre" }, limits));
    expect(resize.strip).toBe(true);
  });

  it("rs: type, width, height, enlarge; equal to the POST query it names", () => {
    const { resize, query } = resolve("rs:fill:300:400:1");
    expect(query).toEqual({ fit: "cover", position: "centre", w: "300", h: "400", enlarge: "true" });
    expect(resize).toEqual(parseResizeOptions(query, limits));
  });

  it("rs and s leave omitted arguments as they were", () => {
    expect(resolve("w:100/h:50/rs:fill::80").query).toMatchObject({ fit: "cover", w: "100", h: "80" });
    expect(resolve("rt:fill/s:200").query).toMatchObject({ fit: "cover", w: "200" });
    expect(resolve("el:1/s:10:20").resize.enlarge).toBe(true);
  });

  it("width 0 or height 0 means 'from the aspect ratio'", () => {
    const { resize } = resolve("w:300/h:0");
    expect(resize.w).toBe(300);
    expect(resize.h).toBeUndefined();
    expect(resolve("w:300/w:0").resize.w).toBeUndefined();
  });

  it.each([
    ["fit", "inside"],
    ["fill", "cover"],
    ["fill-down", "cover"],
    ["force", "fill"],
  ])("rt:%s is fit=%s", (type, fit) => {
    expect(resolve(`rt:${type}/w:10/h:10`).resize.fit).toBe(fit);
    expect(resolve(`resizing_type:${type}`).resize.fit).toBe(fit);
  });

  it("fill-down never enlarges (a smaller source is not cropped to the box's ratio: noted difference)", () => {
    expect(resolve("rs:fill-down:100:100").resize).toMatchObject({ fit: "cover", enlarge: false });
  });

  it("rt:auto fills when source and box share an orientation, else fits", () => {
    const options = resolve("rs:auto:400:300");
    expect(options.autoFit).toBe(true);
    expect(resolveAutoFit(options, { width: 1600, height: 900 }).fit).toBe("cover");
    expect(resolveAutoFit(options, { width: 900, height: 1600 }).fit).toBe("inside");
    const oneSide = resolve("rs:auto:400:0");
    expect(oneSide.autoFit).toBe(false);
    expect(resolveAutoFit(oneSide, { width: 900, height: 1600 })).toBe(oneSide.resize);
  });

  it.each([
    ["no", "north"],
    ["so", "south"],
    ["ea", "east"],
    ["we", "west"],
    ["noea", "northeast"],
    ["nowe", "northwest"],
    ["soea", "southeast"],
    ["sowe", "southwest"],
    ["ce", "centre"],
    ["sm", "attention"],
  ])("g:%s is position=%s", (gravity, position) => {
    expect(resolve(`rs:fill:10:10/g:${gravity}`).resize.position).toBe(position);
    expect(resolve(`gravity:${gravity}`).resize.position).toBe(position);
  });

  it("gravity offsets of 0 are accepted; others, and fp, are unsupported-option", () => {
    expect(resolve("g:no:0:0").resize.position).toBe("north");
    const offset = rejection("g:no:10:0");
    expect(offset.code).toBe("unsupported-option");
    expect(offset.status).toBe(400);
    expect(offset.extras.option).toBe("g");
    expect(rejection("g:fp:0.5:0.5").code).toBe("unsupported-option");
    expect(rejection("g:sm:1").code).toBe("bad-option");
    expect(rejection("g:middle").code).toBe("bad-option");
  });

  it("enlarge and strip_metadata read Go's booleans; other words are refused (imgproxy reads them as false)", () => {
    for (const yes of ["1", "t", "true", "TRUE"]) expect(resolve(`el:${yes}`).resize.enlarge).toBe(true);
    for (const no of ["0", "f", "false"]) expect(resolve(`enlarge:${no}`).resize.enlarge).toBe(false);
    expect(resolve("sm:0").resize.strip).toBe(false);
    expect(resolve("strip_metadata:1").resize.strip).toBe(true);
    expect(rejection("el:yes")).toMatchObject({ code: "bad-option", extras: { option: "el", value: "yes" } });
  });

  it("extend pads the image to the box (fit=contain) at its gravity; not with fill", () => {
    expect(resolve("rs:fit:300:300:0:1").resize).toMatchObject({ fit: "contain", position: "centre" });
    expect(resolve("s:300:300/ex:1:so").resize).toMatchObject({ fit: "contain", position: "south" });
    expect(resolve("extend:1:noea/w:10/h:10").resize).toMatchObject({
      fit: "contain",
      position: "northeast",
    });
    expect(resolve("ex:0/rt:fill").resize.fit).toBe("cover");
    expect(rejection("rs:fill:300:300:0:1")).toMatchObject({
      code: "unsupported-option",
      extras: { option: "extend" },
    });
    expect(rejection("ex:1:sm").code).toBe("bad-option");
  });

  it("quality 1-100; 0 is the default", () => {
    expect(resolve("q:75").resize.q).toBe(75);
    expect(resolve("quality:0").resize.q).toBeUndefined();
    expect(rejection("q:101").code).toBe("bad-option");
  });

  it("format and the extension; the extension wins, as in imgproxy", () => {
    expect(resolve("f:jpg").resize.format).toBe("jpeg");
    expect(resolve("format:webp").resize.format).toBe("webp");
    expect(resolve("ext:avif").resize.format).toBe("avif");
    expect(resolve("", NO_PRESETS, "png").resize.format).toBe("png");
    expect(resolve("f:webp", NO_PRESETS, "gif").resize.format).toBe("gif");
    expect(resolve("f:auto").resize.format).toBe("auto");
    expect(rejection("f:tiff")).toMatchObject({ code: "bad-option", extras: { option: "f", value: "tiff" } });
  });

  it("dpr multiplies within POST's 1-4 (imgproxy allows below 1: noted difference)", () => {
    expect(resolve("dpr:2/w:100").resize).toMatchObject({ dpr: 2, w: 100 });
    expect(rejection("dpr:0.5")).toMatchObject({ code: "bad-option", extras: { option: "dpr" } });
    // The output limit counts w × dpr, and names the URL's option.
    expect(rejection("dpr:4/rs:fit:8000:0")).toMatchObject({ code: "bad-option", extras: { option: "rs" } });
  });

  it("background: hex, R:G:B, or empty to reset", () => {
    expect(resolve("bg:ff0000").resize.background).toBe("#ff0000");
    expect(resolve("background:0:128:255").resize.background).toBe("#0080ff");
    expect(resolve("bg:fff/bg:").resize.background).toBeUndefined();
    expect(rejection("bg:0:0:256").code).toBe("bad-option");
    expect(rejection("bg:1:2").code).toBe("bad-option");
  });

  it("blur and sharpen: a sigma, 0 disables; POST's lower bounds apply", () => {
    expect(resolve("bl:2").resize.blur).toBe(2);
    expect(resolve("blur:0").resize.blur).toBeUndefined();
    expect(resolve("sh:1.5").resize.sharpen).toBe(1.5);
    expect(resolve("sharpen:0").resize.sharpen).toBeUndefined();
    expect(rejection("bl:0.1")).toMatchObject({ code: "bad-option", extras: { option: "bl" } });
    expect(rejection("sh:-1").code).toBe("bad-option");
  });

  it("cachebuster changes nothing but is reported (it is part of the signed URL, hence the cache key)", () => {
    const options = resolve("cb:v2/w:10");
    expect(options.cacheBuster).toBe("v2");
    expect(options.resize).toEqual(resolve("w:10").resize);
    expect(resolve("cachebuster:").cacheBuster).toBeUndefined();
  });

  it("expires: a future time is reported; a past one answers 404 url-expired, as imgproxy does", () => {
    const future = Math.floor(NOW.getTime() / 1000) + 60;
    expect(resolve(`exp:${future}`).expiresAt).toEqual(new Date(future * 1000));
    expect(resolve("expires:0").expiresAt).toBeUndefined();
    const past = rejection(`exp:${future - 120}`);
    expect(past.code).toBe("url-expired");
    expect(past.status).toBe(404);
    expect(rejection("exp:tomorrow").code).toBe("bad-option");
  });

  it("too many arguments are refused", () => {
    expect(rejection("w:1:2")).toMatchObject({ code: "bad-option", extras: { option: "w" } });
    expect(rejection("rs:fit:1:2:3:4:5:6:7:8").code).toBe("bad-option");
  });
});

describe("unsupported and unknown options: 400 naming the option", () => {
  it.each(["crop:100:100", "wm:0.5", "rot:90", "pd:10", "trim:10", "raw:1", "max_bytes:1000", "z:2"])(
    "%s",
    (option) => {
      const problem = rejection(option);
      expect(problem.code).toBe("unsupported-option");
      expect(problem.status).toBe(400);
      expect(problem.extras.option).toBe(option.split(":")[0]);
      expect(problem.message).toContain("not supported");
    },
  );

  it("an unknown name, including one Object.prototype answers to", () => {
    for (const name of ["frobnicate", "__proto__", "constructor", "toString"]) {
      const problem = rejection(`${name}:1`);
      expect(problem.code).toBe("unsupported-option");
      expect(problem.extras.option).toBe(name);
    }
  });
});

describe("presets", () => {
  const presets = presetsFrom(
    { thumb: "rs:fill:150:150/q:70", sharp: "sh:1", loop: "pr:loop/w:5", default: "sm:0/f:webp" },
    limits,
  );

  it("apply in place; later options override them", () => {
    expect(resolve("pr:thumb", presets).resize).toMatchObject({ fit: "cover", w: 150, h: 150, q: 70 });
    expect(resolve("pr:thumb/q:90", presets).resize.q).toBe(90);
    expect(resolve("q:90/preset:thumb:sharp", presets).resize).toMatchObject({ q: 70, sharpen: 1 });
  });

  it("the default preset applies first, to every URL", () => {
    const options = resolve("w:10", presets);
    expect(options.presets).toEqual(["default"]);
    expect(options.resize).toMatchObject({ strip: false, format: "webp", w: 10 });
    expect(resolve("f:png", presets).resize.format).toBe("png");
  });

  it("a preset naming itself is applied once", () => {
    expect(resolve("pr:loop", presets).resize.w).toBe(5);
  });

  it("an unknown preset is bad-option naming the tenant's presets", () => {
    const problem = rejection("pr:huge", presets);
    expect(problem).toMatchObject({ code: "bad-option", extras: { option: "pr", value: "huge" } });
    expect(problem.message).toContain("thumb");
  });

  it("a broken definition is refused when saved", () => {
    expect(() => parsePresetDefinition("x", "rs:fit:10/plain")).toThrow(ProblemError);
    expect(() => parsePresetDefinition("bad name", "w:10")).toThrow(ProblemError);
    expect(() => presetsFrom({ x: "crop:10:10" }, limits)).toThrow(/not supported/);
    expect(() => presetsFrom({ x: "rs:fill:10:10:0:1" }, limits)).toThrow(/extend/);
  });
});
