import type { InputFormat } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import { isOutputFormat, type OutputFormat } from "./formats.js";

export interface Negotiated {
  format: OutputFormat;
  /** True when the choice depended on the Accept header, so caches must `Vary: Accept`. */
  variesByAccept: boolean;
}

interface InputTraits {
  format: InputFormat;
  hasAlpha: boolean;
  animated: boolean;
}

/**
 * What `auto` may choose beyond the formats every client reads. `avif`: the
 * `avif-auto` feature flag for the caller's tenant (AVIF costs several times
 * WebP's CPU to encode, so it is rolled out by flag); an explicit
 * `format=avif` is never affected.
 */
export interface AutoChoices {
  avif: boolean;
}

export const ALL_AUTO_CHOICES: AutoChoices = { avif: true };

/**
 * `auto` picks the best the client accepts: avif (when `choices.avif`) >
 * webp > jpeg/png (png when the image has transparency). Without a format
 * the input's own is kept when it can be written.
 */
export function chooseOutputFormat(
  requested: OutputFormat | "auto" | undefined,
  accept: string | undefined,
  input: InputTraits,
  allowed: readonly OutputFormat[] | null = null,
  choices: AutoChoices = ALL_AUTO_CHOICES,
): Negotiated {
  const permitted = (f: OutputFormat) => allowed === null || allowed.includes(f);
  if (requested && requested !== "auto") {
    if (!permitted(requested)) throw formatNotAllowed(requested, allowed ?? []);
    return { format: requested, variesByAccept: false };
  }
  if (requested === "auto") {
    return {
      format: fromAccept(acceptedTypes(accept ?? ""), input, permitted, choices),
      variesByAccept: true,
    };
  }
  const own = isOutputFormat(input.format) ? [input.format] : [];
  return { format: firstPermitted([...own, ...fallbacks(input)], permitted), variesByAccept: false };
}

function fromAccept(
  accepted: ReadonlySet<string>,
  input: InputTraits,
  permitted: (f: OutputFormat) => boolean,
  choices: AutoChoices,
): OutputFormat {
  const usable = (f: OutputFormat) => permitted(f) && accepted.has(`image/${f}`);
  // libheif writes no animated AVIF, so animation goes to webp or gif.
  if (choices.avif && usable("avif") && !input.animated) return "avif";
  if (usable("webp")) return "webp";
  return firstPermitted(fallbacks(input), permitted);
}

/** Formats every client reads, best first for this input, then the rest for a tenant that allows only those. */
function fallbacks(input: InputTraits): OutputFormat[] {
  const safe: OutputFormat[] = input.animated ? ["gif"] : input.hasAlpha ? ["png", "jpeg"] : ["jpeg", "png"];
  return [...safe, "webp", "gif", "avif", "png", "jpeg"];
}

function firstPermitted(candidates: OutputFormat[], permitted: (f: OutputFormat) => boolean): OutputFormat {
  // A tenant's list is never empty (validated), so one of every format is permitted.
  return candidates.find(permitted) ?? "jpeg";
}

function formatNotAllowed(format: OutputFormat, allowed: readonly OutputFormat[]): ProblemError {
  return new ProblemError(
    "format-not-allowed",
    `${format} output is not enabled for this account; ask for one of: ${allowed.join(", ")} (or format=auto)`,
    { extras: { allowed } },
  );
}

/** Media types with q > 0. */
function acceptedTypes(accept: string): Set<string> {
  const out = new Set<string>();
  for (const part of accept.split(",")) {
    const [type, ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (type && (q === undefined || Number(q.slice(2)) > 0)) out.add(type.trim());
  }
  return out;
}
