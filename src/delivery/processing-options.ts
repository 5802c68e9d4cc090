import type { ImageLimits } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import type { Fit, Position, ResizeOptions } from "../image/options.js";
import { badOption, parseResizeOptions } from "../image/options.js";
import type { DeliveryRequest, UrlOption } from "./imgproxy-url.js";

/**
 * imgproxy's processing options mapped onto the query `POST /v1/resize`
 * takes, then validated by the same `parseResizeOptions`, so a delivery runs
 * the same pipeline and guards (limits, formats, `format=auto`).
 *
 * Where imgfleet differs from imgproxy (each is tested):
 * - `dpr` is 1 to 4 (imgproxy: any positive number); `blur` below 0.3 and
 *   `sharpen` below 0.5 are refused (imgproxy: any; 0 disables both, here too).
 * - booleans are `1`/`t`/`true`/`0`/`f`/`false` (any case); imgproxy reads any
 *   other word as false, imgfleet refuses it with `bad-option`.
 * - `fill-down` is `fill` without enlargement: a source smaller than the box
 *   comes back smaller, not cropped to the box's aspect ratio.
 * - `force` with one side 0 keeps the aspect ratio (imgproxy keeps that side's source size).
 * - `extend` works with `fit` (the default): the image is padded to the box
 *   with `background`; with `fill`, `fill-down`, `force` or `auto` it is refused.
 * - gravity offsets other than 0 and the focus point `fp` are refused;
 *   `sm` is libvips' attention-based smart crop, as in imgproxy.
 * - an empty `background` argument resets it, as in imgproxy; the
 *   colour is hex (3, 4, 6 or 8 digits) or `R:G:B`.
 * - `format`/extension: jpg, jpeg, png, webp, avif, gif, and `auto`
 *   (imgfleet's: the best format the `Accept` header allows).
 */

export type ResizingType = "fit" | "fill" | "fill-down" | "force" | "auto";

/** Named option lists a tenant defines, as imgproxy's IMGPROXY_PRESETS (`name=rs:fit:300:300/q:80`). */
export type Presets = ReadonlyMap<string, readonly UrlOption[]>;

export interface DeliveryOptions {
  /** Validated exactly as a `POST /v1/resize` query. */
  resize: ResizeOptions;
  /** The equivalent `POST /v1/resize` query. */
  query: Readonly<Record<string, string>>;
  /** `rt:auto` with both sides: fill or fit depends on the source's orientation (see resolveAutoFit). */
  autoFit: boolean;
  cacheBuster: string | undefined;
  /** From `expires`: the URL is refused after this; a response must not be cached beyond it. */
  expiresAt: Date | undefined;
  /** Presets applied, in order (`default` first when the tenant defines it). */
  presets: string[];
}

export interface OptionsContext {
  limits: ImageLimits;
  presets: Presets;
  now: Date;
}

interface ExtendDraft {
  enabled: boolean;
  position: Position;
}

/** What the options say so far; later options override earlier ones, as in imgproxy. */
interface Draft {
  query: Record<string, string>;
  /** Query key → the URL option that set it, so a validation error names what the user wrote. */
  setBy: Map<string, string>;
  resizingType: ResizingType;
  resizingTypeSetBy: string;
  gravity: Position;
  extend: ExtendDraft;
  cacheBuster: string | undefined;
  expiresAt: Date | undefined;
  presets: string[];
}

type Handler = (draft: Draft, option: UrlOption, context: OptionsContext, used: readonly string[]) => void;

const RESIZING_TYPES: ReadonlyMap<string, ResizingType> = new Map(
  (["fit", "fill", "fill-down", "force", "auto"] as const).map((t) => [t, t]),
);

const FIT_OF: Record<Exclude<ResizingType, "auto">, Fit> = {
  fit: "inside",
  fill: "cover",
  "fill-down": "cover",
  force: "fill",
};

const GRAVITIES: ReadonlyMap<string, Position> = new Map([
  ["ce", "centre"],
  ["no", "north"],
  ["so", "south"],
  ["ea", "east"],
  ["we", "west"],
  ["noea", "northeast"],
  ["nowe", "northwest"],
  ["soea", "southeast"],
  ["sowe", "southwest"],
  ["sm", "attention"],
]);

const FORMATS: ReadonlyMap<string, string> = new Map([
  ["jpg", "jpeg"],
  ["jpeg", "jpeg"],
  ["png", "png"],
  ["webp", "webp"],
  ["avif", "avif"],
  ["gif", "gif"],
  ["auto", "auto"],
]);

/** Go's strconv.ParseBool, which imgproxy uses. */
const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ["1", true],
  ["t", true],
  ["true", true],
  ["0", false],
  ["f", false],
  ["false", false],
]);

/** imgproxy options imgfleet knows but does not implement: refused by name rather than as unknown. */
const IMGPROXY_UNSUPPORTED = new Set([
  ...["min-width", "mw", "min-height", "mh", "zoom", "z", "extend_aspect_ratio", "extend_ar", "exar"],
  ...["crop", "c", "trim", "t", "padding", "pd", "auto_rotate", "ar", "rotate", "rot", "flip", "fl"],
  ...["pixelate", "pix", "watermark", "wm", "keep_copyright", "kcr", "strip_color_profile", "scp"],
  ...["preserve_hdr", "ph", "enforce_thumbnail", "eth", "format_quality", "fq", "max_bytes", "mb"],
  ...["skip_processing", "skp", "raw", "filename", "fn", "return_attachment", "att"],
  ...["max_src_resolution", "msr", "max_src_file_size", "msfs", "max_animation_frames", "maf"],
  ...["max_animation_frame_resolution", "mafr", "max_result_dimension", "mrd"],
]);

export function unsupported(option: string, detail: string, value?: string): ProblemError {
  return new ProblemError("unsupported-option", detail, { extras: { option, value } });
}

function maxArgs(option: UrlOption, max: number): void {
  if (option.args.length > max) {
    throw badOption(option.name, option.args.join(":"), `at most ${max} argument${max === 1 ? "" : "s"}`);
  }
}

function single(option: UrlOption): string {
  maxArgs(option, 1);
  return option.args[0] ?? "";
}

function set(draft: Draft, key: string, value: string | undefined, by: string): void {
  if (value === undefined) {
    delete draft.query[key];
    draft.setBy.delete(key);
  } else {
    draft.query[key] = value;
    draft.setBy.set(key, by);
  }
}

function parseBool(name: string, value: string): boolean {
  const parsed = BOOLEANS.get(value.toLowerCase());
  if (parsed === undefined) throw badOption(name, value, "1, t, true, 0, f or false");
  return parsed;
}

/** A side: 0 means "from the other side and the aspect ratio", as in imgproxy. */
function side(draft: Draft, key: "w" | "h", name: string, value: string): void {
  if (!/^\d+$/.test(value)) throw badOption(name, value, "an integer, 0 or more");
  set(draft, key, Number(value) === 0 ? undefined : String(Number(value)), name);
}

/** blur and sharpen: a sigma; 0 disables the effect. */
function sigma(draft: Draft, key: "blur" | "sharpen", option: UrlOption): void {
  const value = single(option);
  if (!/^\d+(\.\d+)?$/.test(value)) throw badOption(option.name, value, "a number, 0 or more");
  set(draft, key, Number(value) === 0 ? undefined : value, option.name);
}

function resizingType(draft: Draft, name: string, value: string): void {
  const type = RESIZING_TYPES.get(value);
  if (type === undefined) throw badOption(name, value, `one of ${[...RESIZING_TYPES.keys()].join(", ")}`);
  draft.resizingType = type;
  draft.resizingTypeSetBy = name;
}

/** `gravity:type:x:y`; offsets must be absent or 0, and `fp` (focus point) is not supported. */
function gravityOf(name: string, args: readonly string[], allowSmart: boolean): Position {
  const [type = "", ...offsets] = args;
  if (type === "fp" || type === "obj" || type === "objw") {
    throw unsupported(
      name,
      `gravity '${type}' is not supported; use ce, no, so, ea, we, noea, nowe, soea, sowe or sm`,
      type,
    );
  }
  const position = GRAVITIES.get(type);
  if (position === undefined || (!allowSmart && position === "attention")) {
    const allowed = [...GRAVITIES.keys()].filter((g) => allowSmart || g !== "sm");
    throw badOption(name, type, `one of ${allowed.join(", ")}`);
  }
  if (offsets.length > 2 || (position === "attention" && offsets.length > 0)) {
    throw badOption(name, args.join(":"), "a gravity type and at most two offsets (none for sm)");
  }
  for (const offset of offsets) {
    if (offset !== "" && !/^0*(\.0*)?$/.test(offset)) {
      throw unsupported(
        name,
        `gravity offsets are not supported (got '${offset}'); leave them out or 0`,
        offset,
      );
    }
  }
  return position;
}

function extend(draft: Draft, name: string, args: readonly string[]): void {
  if (args.length > 4) throw badOption(name, args.join(":"), "at most 4 arguments");
  draft.extend = {
    enabled: parseBool(name, args[0] ?? ""),
    position: args.length > 1 ? gravityOf(name, args.slice(1), false) : "centre",
  };
}

/** `size:w:h:enlarge:extend:gravity…`: each argument may be left empty to keep its current value. */
function size(draft: Draft, name: string, args: readonly string[]): void {
  if (args.length > 7) throw badOption(name, args.join(":"), "at most 7 arguments");
  const [w = "", h = "", enlarge = "", extendFlag = ""] = args;
  if (w !== "") side(draft, "w", name, w);
  if (h !== "") side(draft, "h", name, h);
  if (enlarge !== "") set(draft, "enlarge", String(parseBool(name, enlarge)), name);
  if (extendFlag !== "") extend(draft, name, args.slice(3));
}

function background(draft: Draft, option: UrlOption): void {
  const { name, args } = option;
  if (args.length === 1) {
    const value = args[0] ?? "";
    set(draft, "background", value === "" ? undefined : value, name);
    return;
  }
  if (args.length !== 3) throw badOption(name, args.join(":"), "a hex colour or R:G:B");
  const hex = args.map((channel) => {
    const n = /^\d{1,3}$/.test(channel) ? Number(channel) : Number.NaN;
    if (!(n >= 0 && n <= 255)) throw badOption(name, args.join(":"), "R:G:B, each from 0 to 255");
    return n.toString(16).padStart(2, "0");
  });
  set(draft, "background", `#${hex.join("")}`, name);
}

function format(draft: Draft, name: string, value: string): void {
  const mapped = FORMATS.get(value.toLowerCase());
  if (mapped === undefined) throw badOption(name, value, `one of ${[...FORMATS.keys()].join(", ")}`);
  set(draft, "format", mapped, name);
}

function quality(draft: Draft, option: UrlOption): void {
  const value = single(option);
  const n = /^\d{1,3}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 100)) throw badOption(option.name, value, "an integer from 0 to 100 (0: the default)");
  set(draft, "q", n === 0 ? undefined : String(n), option.name);
}

function expires(draft: Draft, option: UrlOption, now: Date): void {
  const value = single(option);
  if (!/^-?\d+$/.test(value)) throw badOption(option.name, value, "a unix timestamp in seconds");
  const seconds = Number(value);
  if (seconds <= 0) return;
  if (seconds * 1000 < now.getTime()) {
    throw new ProblemError("url-expired", `this URL expired at ${new Date(seconds * 1000).toISOString()}`, {
      extras: { expires: seconds },
    });
  }
  draft.expiresAt = new Date(seconds * 1000);
}

function preset(draft: Draft, option: UrlOption, context: OptionsContext, used: readonly string[]): void {
  for (const name of option.args) {
    const options = context.presets.get(name);
    if (options === undefined) {
      const known = [...context.presets.keys()];
      throw badOption(
        option.name,
        name,
        known.length
          ? `a preset of this account: ${known.join(", ")}`
          : "a preset (this account defines none)",
      );
    }
    // A preset that names itself, directly or not, is skipped, as imgproxy does.
    if (used.includes(name)) continue;
    draft.presets.push(name);
    applyOptions(draft, options, context, [...used, name]);
  }
}

const HANDLERS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ...aliases(["resize", "rs"], (d, o) => {
    maxArgs(o, 8);
    if ((o.args[0] ?? "") !== "") resizingType(d, o.name, o.args[0] ?? "");
    if (o.args.length > 1) size(d, o.name, o.args.slice(1));
  }),
  ...aliases(["size", "s"], (d, o) => size(d, o.name, o.args)),
  ...aliases(["resizing_type", "rt"], (d, o) => resizingType(d, o.name, single(o))),
  ...aliases(["width", "w"], (d, o) => side(d, "w", o.name, single(o))),
  ...aliases(["height", "h"], (d, o) => side(d, "h", o.name, single(o))),
  ...aliases(["dpr"], (d, o) => set(d, "dpr", single(o), o.name)),
  ...aliases(["enlarge", "el"], (d, o) => set(d, "enlarge", String(parseBool(o.name, single(o))), o.name)),
  ...aliases(["extend", "ex"], (d, o) => extend(d, o.name, o.args)),
  ...aliases(["gravity", "g"], (d, o) => {
    d.gravity = gravityOf(o.name, o.args, true);
  }),
  ...aliases(["quality", "q"], (d, o) => quality(d, o)),
  ...aliases(["format", "f", "ext"], (d, o) => format(d, o.name, single(o))),
  ...aliases(["background", "bg"], (d, o) => background(d, o)),
  ...aliases(["blur", "bl"], (d, o) => sigma(d, "blur", o)),
  ...aliases(["sharpen", "sh"], (d, o) => sigma(d, "sharpen", o)),
  ...aliases(["strip_metadata", "sm"], (d, o) =>
    set(d, "strip", String(parseBool(o.name, single(o))), o.name),
  ),
  ...aliases(["cachebuster", "cb"], (d, o) => {
    d.cacheBuster = single(o) || undefined;
  }),
  ...aliases(["expires", "exp"], (d, o, c) => expires(d, o, c.now)),
  ...aliases(["preset", "pr"], (d, o, c, used) => preset(d, o, c, used)),
]);

function aliases(names: readonly string[], handler: Handler): [string, Handler][] {
  return names.map((name) => [name, handler]);
}

/** The option names a delivery URL accepts. */
export const SUPPORTED_URL_OPTIONS: readonly string[] = [...HANDLERS.keys()];

function applyOptions(
  draft: Draft,
  options: readonly UrlOption[],
  context: OptionsContext,
  used: readonly string[],
): void {
  for (const option of options) {
    const handler = HANDLERS.get(option.name);
    if (handler === undefined) {
      const what = IMGPROXY_UNSUPPORTED.has(option.name)
        ? "is not supported by imgfleet"
        : "is not an option imgfleet knows";
      throw unsupported(
        option.name,
        `processing option '${option.name}' ${what}; supported: ${SUPPORTED_URL_OPTIONS.join(", ")}`,
      );
    }
    handler(draft, option, context, used);
  }
}

function newDraft(): Draft {
  return {
    query: Object.create(null) as Record<string, string>,
    setBy: new Map(),
    resizingType: "fit",
    resizingTypeSetBy: "resizing_type",
    gravity: "centre",
    extend: { enabled: false, position: "centre" },
    cacheBuster: undefined,
    expiresAt: undefined,
    presets: [],
  };
}

/**
 * The options of a parsed delivery URL, resolved into `POST /v1/resize`'s
 * validated options. The `default` preset, when the tenant defines one,
 * applies first (as in imgproxy); the URL's extension applies last.
 */
export function resolveDeliveryOptions(
  request: Pick<DeliveryRequest, "options" | "extension">,
  context: OptionsContext,
): DeliveryOptions {
  const draft = newDraft();
  if (context.presets.has("default")) {
    preset(draft, { name: "preset", args: ["default"] }, context, []);
  }
  applyOptions(draft, request.options, context, []);
  if (request.extension !== undefined) format(draft, "extension", request.extension);
  setGeometry(draft);
  const resize = validate(draft, context.limits);
  return {
    resize,
    query: { ...draft.query },
    autoFit: draft.resizingType === "auto" && resize.w !== undefined && resize.h !== undefined,
    cacheBuster: draft.cacheBuster,
    expiresAt: draft.expiresAt,
    presets: draft.presets,
  };
}

/** fit and position from the resizing type, gravity and extend. */
function setGeometry(draft: Draft): void {
  const type = draft.resizingType;
  if (draft.extend.enabled) {
    if (type !== "fit") {
      throw unsupported(
        "extend",
        `extend works with resizing type fit only (got '${type}' from ${draft.resizingTypeSetBy})`,
        type,
      );
    }
    // contain scales the image into the box and pads it to the box: imgproxy's fit + extend.
    set(draft, "fit", "contain", "extend");
    set(draft, "position", draft.extend.position, "extend");
    return;
  }
  set(draft, "fit", FIT_OF[type === "auto" ? "fill" : type], draft.resizingTypeSetBy);
  set(draft, "position", draft.gravity, "gravity");
}

/** Runs POST /v1/resize's validation; an error names the URL option that set the value. */
function validate(draft: Draft, limits: ImageLimits): ResizeOptions {
  try {
    return parseResizeOptions(draft.query, limits);
  } catch (error) {
    if (!(error instanceof ProblemError) || error.code !== "bad-option") throw error;
    const key = String(error.extras.option ?? "");
    const by = draft.setBy.get(key);
    if (by === undefined || by === key) throw error;
    const expected = String(error.extras.expected ?? "a valid value");
    throw badOption(by, String(error.extras.value ?? ""), expected.replaceAll(`${key} ×`, `${by} ×`));
  }
}

/**
 * `rt:auto`: fill when the source and the box have the same orientation
 * (both portrait or both landscape), else fit, as imgproxy decides.
 */
export function resolveAutoFit(
  options: DeliveryOptions,
  source: { width: number; height: number },
): ResizeOptions {
  const { resize } = options;
  if (!options.autoFit || resize.w === undefined || resize.h === undefined) return resize;
  const sourceLandscape = source.width >= source.height;
  const boxLandscape = resize.w >= resize.h;
  return { ...resize, fit: sourceLandscape === boxLandscape ? "cover" : "inside" };
}

/**
 * A tenant's preset as imgproxy writes one: `rs:fit:300:300/q:80`. Checked
 * when the tenant saves it, so a broken preset never reaches a request.
 */
export function parsePresetDefinition(name: string, value: string): UrlOption[] {
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw badOption("preset", name, "a name of letters, digits, '_' and '-'");
  const options: UrlOption[] = [];
  for (const segment of value.trim().split("/")) {
    const [optionName = "", ...args] = segment.split(":");
    if (args.length === 0)
      throw badOption("preset", value, "options only, as name:arg:arg, separated by '/'");
    options.push({ name: optionName, args });
  }
  return options;
}

/** A tenant's presets from their definitions; each is validated by resolving it alone. */
export function presetsFrom(definitions: Readonly<Record<string, string>>, limits: ImageLimits): Presets {
  const presets = new Map<string, readonly UrlOption[]>();
  for (const [name, value] of Object.entries(definitions))
    presets.set(name, parsePresetDefinition(name, value));
  for (const name of presets.keys()) {
    resolveDeliveryOptions(
      { options: [{ name: "preset", args: [name] }], extension: undefined },
      { limits, presets, now: new Date(0) },
    );
  }
  return presets;
}
