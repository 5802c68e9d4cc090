import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ImageLimits } from "../../src/config/schema.js";
import { ProblemError } from "../../src/errors/problem.js";
import { KNOWN_OPTIONS, parseResizeOptions, type ResizeOptions } from "../../src/image/options.js";

const limits: ImageLimits = loadConfig({ env: {} }).limits;
const small: ImageLimits = { ...limits, maxOutputDimension: 1000 };

type Query = Record<string, string | string[] | undefined>;

/** The bad-option problem parseResizeOptions throws; fails the test when it returns. */
function rejection(query: Query, l: ImageLimits = limits): ProblemError {
  try {
    parseResizeOptions(query, l);
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    return error as ProblemError;
  }
  throw new Error(`accepted ${JSON.stringify(query)}`);
}

describe("parseResizeOptions: defaults", () => {
  it("an empty query gives the documented defaults and no size", () => {
    expect(parseResizeOptions({}, limits)).toEqual({
      fit: "cover",
      position: "centre",
      dpr: 1,
      enlarge: false,
      strip: true,
      animated: false,
    } satisfies ResizeOptions);
  });

  it("ignores options whose value is undefined", () => {
    expect(parseResizeOptions({ w: undefined, h: "10" }, limits)).toMatchObject({ h: 10 });
    expect(parseResizeOptions({ w: undefined }, limits).w).toBeUndefined();
  });
});

describe("parseResizeOptions: valid values", () => {
  it.each<[string, string, Partial<ResizeOptions>]>([
    ["w", "1", { w: 1 }],
    ["w", "640", { w: 640 }],
    ["w", "8192", { w: 8192 }],
    ["h", "480", { h: 480 }],
    ["fit", "cover", { fit: "cover" }],
    ["fit", "contain", { fit: "contain" }],
    ["fit", "fill", { fit: "fill" }],
    ["fit", "inside", { fit: "inside" }],
    ["fit", "outside", { fit: "outside" }],
    ["fit", "CONTAIN", { fit: "contain" }],
    ["position", "centre", { position: "centre" }],
    ["position", "center", { position: "centre" }],
    ["position", "top", { position: "north" }],
    ["position", "north", { position: "north" }],
    ["position", "top-right", { position: "northeast" }],
    ["position", "right", { position: "east" }],
    ["position", "bottom-right", { position: "southeast" }],
    ["position", "bottom", { position: "south" }],
    ["position", "bottom-left", { position: "southwest" }],
    ["position", "left", { position: "west" }],
    ["position", "west", { position: "west" }],
    ["position", "top-left", { position: "northwest" }],
    ["position", "attention", { position: "attention" }],
    ["position", "entropy", { position: "entropy" }],
    ["format", "jpeg", { format: "jpeg" }],
    ["format", "png", { format: "png" }],
    ["format", "webp", { format: "webp" }],
    ["format", "avif", { format: "avif" }],
    ["format", "gif", { format: "gif" }],
    ["format", "auto", { format: "auto" }],
    ["q", "1", { q: 1 }],
    ["q", "75", { q: 75 }],
    ["q", "100", { q: 100 }],
    ["dpr", "1", { dpr: 1 }],
    ["dpr", "1.5", { dpr: 1.5 }],
    ["dpr", "4", { dpr: 4 }],
    ["enlarge", "true", { enlarge: true }],
    ["enlarge", "1", { enlarge: true }],
    ["enlarge", "false", { enlarge: false }],
    ["enlarge", "0", { enlarge: false }],
    ["background", "#fff", { background: "#fff" }],
    ["background", "ff0000", { background: "#ff0000" }],
    ["background", "#ff000080", { background: "#ff000080" }],
    ["background", "white", { background: "#ffffff" }],
    ["background", "transparent", { background: "#00000000" }],
    ["strip", "false", { strip: false }],
    ["strip", "true", { strip: true }],
    ["blur", "0.3", { blur: 0.3 }],
    ["blur", "2.5", { blur: 2.5 }],
    ["blur", "100", { blur: 100 }],
    ["sharpen", "0.5", { sharpen: 0.5 }],
    ["sharpen", "10", { sharpen: 10 }],
    ["animated", "true", { animated: true }],
    ["animated", "false", { animated: false }],
  ])("%s=%s → %j", (name, value, expected) => {
    const options = parseResizeOptions({ [name]: value }, limits);
    expect(options).toMatchObject(expected);
    // Nothing else changes: the other fields keep their defaults.
    const defaults = parseResizeOptions({}, limits);
    for (const [key, v] of Object.entries(options)) {
      if (key !== name) expect(v, key).toEqual(defaults[key as keyof ResizeOptions]);
    }
  });

  it("parses every option together", () => {
    const query = {
      w: "300",
      h: "200",
      fit: "inside",
      position: "left",
      format: "webp",
      q: "60",
      dpr: "2",
      enlarge: "true",
      background: "000",
      strip: "false",
      blur: "1",
      sharpen: "2",
      animated: "true",
    };
    expect(Object.keys(query).sort()).toEqual([...KNOWN_OPTIONS].sort());
    expect(parseResizeOptions(query, limits)).toEqual({
      w: 300,
      h: 200,
      fit: "inside",
      position: "west",
      format: "webp",
      q: 60,
      dpr: 2,
      enlarge: true,
      background: "#000",
      strip: false,
      blur: 1,
      sharpen: 2,
      animated: true,
    });
  });
});

describe("parseResizeOptions: invalid values", () => {
  it.each<[Query, string, string, RegExp]>([
    [{ w: "0" }, "w", "0", /an integer from 1 to 8192/],
    [{ w: "-1" }, "w", "-1", /an integer from 1 to 8192/],
    [{ w: "1.5" }, "w", "1.5", /an integer from 1 to 8192/],
    [{ w: "abc" }, "w", "abc", /an integer from 1 to 8192/],
    [{ w: "0x10" }, "w", "0x10", /an integer from 1 to 8192/],
    [{ h: "1e3" }, "h", "1e3", /an integer from 1 to 8192/],
    [{ q: " 50" }, "q", " 50", /an integer from 1 to 100/],
    [{ w: "" }, "w", "", /an integer from 1 to 8192/],
    [{ w: "99999" }, "w", "99999", /an integer from 1 to 8192/],
    [{ h: "8193" }, "h", "8193", /an integer from 1 to 8192/],
    [{ fit: "stretch" }, "fit", "stretch", /one of cover, contain, fill, inside, outside/],
    [{ position: "middle" }, "position", "middle", /one of .*centre.*northwest.*entropy/],
    [{ format: "bmp" }, "format", "bmp", /one of jpeg, png, webp, avif, gif, auto/],
    [{ q: "0" }, "q", "0", /an integer from 1 to 100/],
    [{ q: "101" }, "q", "101", /an integer from 1 to 100/],
    [{ dpr: "0.5" }, "dpr", "0.5", /a number from 1 to 4/],
    [{ dpr: "5" }, "dpr", "5", /a number from 1 to 4/],
    [{ enlarge: "maybe" }, "enlarge", "maybe", /true or false/],
    [{ background: "#zzz" }, "background", "#zzz", /a hex colour/],
    [{ background: "#12345" }, "background", "#12345", /a hex colour/],
    [{ blur: "0" }, "blur", "0", /a number from 0.3 to 100/],
    [{ blur: "1000" }, "blur", "1000", /a number from 0.3 to 100/],
    [{ sharpen: "11" }, "sharpen", "11", /a number from 0.5 to 10/],
    [{ strip: "no" }, "strip", "no", /true or false/],
    [{ animated: "yes" }, "animated", "yes", /true or false/],
    [{ w: ["100", "200"] }, "w", "100,200", /given once/],
    [{ width: "100" }, "width", "100", /a known option: w, h, fit/],
  ])("%j → bad-option naming %s=%s", (query, option, value, expected) => {
    const error = rejection(query);
    expect(error.code).toBe("bad-option");
    expect(error.status).toBe(400);
    expect(error.extras).toMatchObject({ option, value });
    expect(String(error.extras.expected)).toMatch(expected);
    expect(error.message).toContain(`option '${option}'`);
    expect(error.message).toContain(`'${value}'`);
    expect(error.message).toMatch(new RegExp(`expected ${expected.source}`));
  });

  it("calls an unknown option unknown and lists the known ones", () => {
    const error = rejection({ w: "10", width: "100" });
    expect(error.message).toMatch(
      /^option 'width': unknown option, with value '100'; expected a known option: /,
    );
    expect(error.extras.expected).toContain(KNOWN_OPTIONS.join(", "));
  });

  it("bounds w and h by the configured maxOutputDimension", () => {
    expect(parseResizeOptions({ w: "1000" }, small).w).toBe(1000);
    const error = rejection({ w: "1001" }, small);
    expect(error.extras).toMatchObject({ option: "w", value: "1001" });
    expect(error.extras.expected).toBe("an integer from 1 to 1000");
  });

  it("rejects w × dpr beyond maxOutputDimension, naming dpr", () => {
    expect(parseResizeOptions({ w: "500", dpr: "2" }, small)).toMatchObject({ w: 500, dpr: 2 });
    const error = rejection({ w: "501", dpr: "2" }, small);
    expect(error.code).toBe("bad-option");
    expect(error.extras).toMatchObject({ option: "w", value: "501" });
    expect(error.message).toContain("w × dpr at most 1000 (dpr is 2)");
  });

  it("rejects h × dpr beyond maxOutputDimension even with enlarge=true", () => {
    const error = rejection({ w: "100", h: "300", dpr: "4", enlarge: "true" }, small);
    expect(error.extras).toMatchObject({ option: "h", value: "300" });
    expect(error.extras.expected).toBe("h × dpr at most 1000 (dpr is 4)");
  });

  it("serialises as a problem document with the option, value and expectation", () => {
    const doc = rejection({ q: "101" }).toJSON("/v1/resize");
    expect(doc).toMatchObject({
      type: "/problems/bad-option",
      status: 400,
      instance: "/v1/resize",
      option: "q",
      value: "101",
      expected: "an integer from 1 to 100",
    });
  });
});
