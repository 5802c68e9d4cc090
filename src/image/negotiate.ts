import type { InputFormat } from "../config/schema.js";
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
 * `auto` picks the best the client accepts: avif > webp > jpeg/png (png when
 * the image has transparency). Without a format the input's own is kept when
 * it can be written.
 */
export function chooseOutputFormat(
  requested: OutputFormat | "auto" | undefined,
  accept: string | undefined,
  input: InputTraits,
): Negotiated {
  if (requested && requested !== "auto") return { format: requested, variesByAccept: false };
  if (requested === "auto") return { format: fromAccept(accept ?? "", input), variesByAccept: true };
  if (isOutputFormat(input.format)) return { format: input.format, variesByAccept: false };
  return { format: input.hasAlpha ? "png" : "jpeg", variesByAccept: false };
}

function fromAccept(accept: string, input: InputTraits): OutputFormat {
  const accepted = acceptedTypes(accept);
  // libheif writes no animated AVIF, so animation goes to webp or gif.
  if (accepted.has("image/avif") && !input.animated) return "avif";
  if (accepted.has("image/webp")) return "webp";
  if (input.animated) return "gif";
  return input.hasAlpha ? "png" : "jpeg";
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
