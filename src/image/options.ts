import { z } from "zod";
import type { ImageLimits } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import { OUTPUT_FORMATS, type OutputFormat } from "./formats.js";

export const FITS = ["cover", "contain", "fill", "inside", "outside"] as const;
export type Fit = (typeof FITS)[number];

/** Compass points and sharp's smart crops; aliases map to sharp's gravity names. */
export const POSITION_ALIASES = {
  centre: "centre",
  center: "centre",
  north: "north",
  top: "north",
  northeast: "northeast",
  "top-right": "northeast",
  east: "east",
  right: "east",
  southeast: "southeast",
  "bottom-right": "southeast",
  south: "south",
  bottom: "south",
  southwest: "southwest",
  "bottom-left": "southwest",
  west: "west",
  left: "west",
  northwest: "northwest",
  "top-left": "northwest",
  attention: "attention",
  entropy: "entropy",
} as const;
export type Position = (typeof POSITION_ALIASES)[keyof typeof POSITION_ALIASES];

/** Gaussian blur cost grows with sigma (kernel ≈ 6σ wide); 100 keeps a 8K image under a few seconds. */
export const MAX_BLUR_SIGMA = 100;
export const MAX_SHARPEN_SIGMA = 10;
export const MAX_DPR = 4;

export interface ResizeOptions {
  w?: number | undefined;
  h?: number | undefined;
  fit: Fit;
  position: Position;
  /** undefined: keep the input's format when it can be written, else JPEG/PNG. */
  format?: OutputFormat | "auto" | undefined;
  q?: number | undefined;
  dpr: number;
  enlarge: boolean;
  background?: string | undefined;
  strip: boolean;
  blur?: number | undefined;
  sharpen?: number | undefined;
  animated: boolean;
}

function numberIn(min: number, max: number, integer: boolean) {
  const expected = `${integer ? "an integer" : "a number"} from ${min} to ${max}`;
  return z.string().transform((s, ctx) => {
    // Plain decimals only: no hex, exponents or padding sneaking through Number().
    const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: expected });
      return z.NEVER;
    }
    return n;
  });
}

/**
 * Every table a client's word is looked up in is a Map of its own entries:
 * an object literal would also answer `__proto__`, `constructor` or
 * `toString` from Object.prototype, and that value would reach sharp.
 */
function tableOf<T>(entries: Iterable<readonly [string, T]>): ReadonlyMap<string, T> {
  return new Map(entries);
}

const POSITIONS = tableOf<Position>(Object.entries(POSITION_ALIASES));

function oneOf<T extends string>(values: readonly T[], aliases?: ReadonlyMap<string, T>) {
  const table = aliases ?? tableOf(values.map((v) => [v, v] as const));
  const allowed = [...table.keys()];
  return z.string().transform((s, ctx) => {
    const v = table.get(s.toLowerCase());
    if (v === undefined) {
      ctx.addIssue({ code: "custom", message: `one of ${allowed.join(", ")}` });
      return z.NEVER;
    }
    return v;
  });
}

const BOOLEANS = tableOf([
  ["true", true],
  ["1", true],
  ["false", false],
  ["0", false],
]);

const bool = z.string().transform((s, ctx) => {
  const v = BOOLEANS.get(s.toLowerCase());
  if (v === undefined) {
    ctx.addIssue({ code: "custom", message: "true or false" });
    return z.NEVER;
  }
  return v;
});

const HEX_COLOUR = /^#?([0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
const NAMED_COLOURS = tableOf([
  ["white", "#ffffff"],
  ["black", "#000000"],
  ["transparent", "#00000000"],
]);
const colour = z.string().transform((s, ctx) => {
  const named = NAMED_COLOURS.get(s.toLowerCase());
  if (named !== undefined) return named;
  if (!HEX_COLOUR.test(s)) {
    ctx.addIssue({
      code: "custom",
      message: "a hex colour (rgb, rrggbb or rrggbbaa, '#' optional) or white, black, transparent",
    });
    return z.NEVER;
  }
  return s.startsWith("#") ? s : `#${s}`;
});

/** Built once per limits object: zod compiles a schema, which costs ~0.5 ms, too much per request. */
const schemas = new WeakMap<ImageLimits, ReturnType<typeof buildOptionsSchema>>();

function optionsSchema(limits: ImageLimits) {
  let schema = schemas.get(limits);
  if (!schema) {
    schema = buildOptionsSchema(limits);
    schemas.set(limits, schema);
  }
  return schema;
}

function buildOptionsSchema(limits: ImageLimits) {
  const side = numberIn(1, limits.maxOutputDimension, true);
  return z
    .object({
      w: side.optional(),
      h: side.optional(),
      fit: oneOf(FITS).default("cover"),
      position: oneOf(Object.values(POSITION_ALIASES), POSITIONS).default("centre"),
      format: oneOf([...OUTPUT_FORMATS, "auto"] as const).optional(),
      q: numberIn(1, 100, true).optional(),
      dpr: numberIn(1, MAX_DPR, false).default(1),
      enlarge: bool.default(false),
      background: colour.optional(),
      strip: bool.default(true),
      blur: numberIn(0.3, MAX_BLUR_SIGMA, false).optional(),
      sharpen: numberIn(0.5, MAX_SHARPEN_SIGMA, false).optional(),
      animated: bool.default(false),
    })
    .strict();
}

type Query = Record<string, string | string[] | undefined>;

/**
 * Validates query-string options. Throws `bad-option` naming the option, the
 * value and what was expected; user input never becomes a 500.
 */
export function parseResizeOptions(query: Query, limits: ImageLimits): ResizeOptions {
  // No prototype: an option named `__proto__` is an own key, refused as unknown like any other.
  const single: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) throw badOption(name, value.join(","), "given once");
    if (value !== undefined) single[name] = value;
  }
  const result = optionsSchema(limits).safeParse(single);
  if (!result.success) {
    const issue = result.error.issues[0];
    if (issue?.code === "unrecognized_keys") {
      const name = issue.keys[0] ?? "";
      throw badOption(
        name,
        single[name] ?? "",
        `a known option: ${KNOWN_OPTIONS.join(", ")}`,
        "unknown option, with value",
      );
    }
    const name = String(issue?.path[0] ?? "");
    throw badOption(name, single[name] ?? "", issue?.message ?? "a valid value");
  }
  const options: ResizeOptions = result.data;
  checkOutputSize(options, limits);
  return options;
}

export const KNOWN_OPTIONS = [
  "w",
  "h",
  "fit",
  "position",
  "format",
  "q",
  "dpr",
  "enlarge",
  "background",
  "strip",
  "blur",
  "sharpen",
  "animated",
];

/** w×dpr and h×dpr must stay within the output limit: no enlargement beyond it, even with enlarge=true. */
function checkOutputSize(options: ResizeOptions, limits: ImageLimits): void {
  for (const name of ["w", "h"] as const) {
    const side = options[name];
    if (side !== undefined && side * options.dpr > limits.maxOutputDimension) {
      throw badOption(
        name,
        String(side),
        `${name} × dpr at most ${limits.maxOutputDimension} (dpr is ${options.dpr})`,
      );
    }
  }
}

export function badOption(
  option: string,
  value: string,
  expected: string,
  what = "invalid value",
): ProblemError {
  return new ProblemError("bad-option", `option '${option}': ${what} '${value}'; expected ${expected}`, {
    extras: { option, value, expected },
  });
}
