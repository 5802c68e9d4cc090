import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ImageLimits } from "../../src/config/schema.js";
import { ProblemError } from "../../src/errors/problem.js";
import { KNOWN_OPTIONS, parseResizeOptions } from "../../src/image/options.js";

const limits: ImageLimits = loadConfig({ env: {} }).limits;

type Query = Record<string, string | string[] | undefined>;

/** Names that an object literal answers from Object.prototype, and values no option accepts. */
const PROTOTYPE_KEYS = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "__defineGetter__",
  "toLocaleString",
];
const HOSTILE_VALUES: (string | string[])[] = [
  ...PROTOTYPE_KEYS,
  ...PROTOTYPE_KEYS.map((k) => k.toUpperCase()),
  "",
  " ",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e308",
  "9".repeat(400),
  `1.${"0".repeat(400)}1e999`,
  "-1",
  "0x10",
  "1_000",
  "１",
  "1\u0000",
  "null",
  "undefined",
  "[object Object]",
  ["1", "2"],
  ["__proto__"],
  [],
];

function outcome(query: Query): ProblemError | unknown {
  try {
    return parseResizeOptions(query, limits);
  } catch (error) {
    return error;
  }
}

describe("every option refuses hostile values with bad-option", () => {
  const cases = KNOWN_OPTIONS.flatMap((option) => HOSTILE_VALUES.map((value) => [option, value] as const));

  it.each(cases)("%s=%j", (option, value) => {
    const result = outcome({ [option]: value });
    expect(result, `accepted as ${JSON.stringify(result)}`).toBeInstanceOf(ProblemError);
    const problem = result as ProblemError;
    expect(problem.code).toBe("bad-option");
    expect(problem.status).toBe(400);
    expect(problem.extras.option).toBe(option);
    expect(typeof problem.extras.value).toBe("string");
  });

  it("covers every known option", () => {
    expect(new Set(cases.map(([option]) => option))).toEqual(new Set(KNOWN_OPTIONS));
  });
});

describe("option names from Object.prototype are unknown options", () => {
  it.each(PROTOTYPE_KEYS)("%s as an option name, own key of a plain object", (name) => {
    // JSON.parse makes `__proto__` an own key, as a query parser with a null prototype does.
    const query = JSON.parse(`{"w":"10",${JSON.stringify(name)}:"x"}`) as Query;
    const result = outcome(query);
    expect(result).toBeInstanceOf(ProblemError);
    expect((result as ProblemError).extras).toMatchObject({ option: name, value: "x" });
  });

  it.each(PROTOTYPE_KEYS)("%s as an option name, own key of a null-prototype object", (name) => {
    const query: Query = Object.create(null);
    query[name] = "x";
    const result = outcome(query);
    expect(result).toBeInstanceOf(ProblemError);
    expect((result as ProblemError).extras).toMatchObject({ option: name, value: "x" });
  });
});

describe("accepted values are our own primitives", () => {
  it("every parsed field is a string, number or boolean from our tables", () => {
    const options = parseResizeOptions(
      { position: "Top-Left", fit: "INSIDE", background: "White", enlarge: "TRUE", format: "Auto" },
      limits,
    );
    expect(options).toMatchObject({
      position: "northwest",
      fit: "inside",
      background: "#ffffff",
      enlarge: true,
      format: "auto",
    });
    for (const value of Object.values(options))
      expect(["string", "number", "boolean"]).toContain(typeof value);
  });
});
