/** A raster image an SVG carries inline, as its data: URL declares it. */
export interface EmbeddedImage {
  format: EmbeddableFormat;
  bytes: Buffer;
}

export type EmbeddableFormat = "png" | "jpeg" | "gif" | "webp";

/**
 * The only data: URLs an SVG may hold: base64 PNG, JPEG, GIF or WebP. Not
 * SVG (a nested document with references of its own), nor anything the
 * renderer would pick a loader for by sniffing.
 */
const EMBEDDABLE = new Map<string, EmbeddableFormat>([
  ["image/png", "png"],
  ["image/jpeg", "jpeg"],
  ["image/gif", "gif"],
  ["image/webp", "webp"],
]);

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Reads `data:image/png;base64,…`. Returns the image, or why it is refused.
 * Strict where the URL standard is forgiving: no percent-encoding, no
 * parameters but `base64`, so what is checked is what the renderer decodes.
 */
export function parseEmbeddedImage(url: string): EmbeddedImage | string {
  const comma = url.indexOf(",");
  if (!/^data:/i.test(url) || comma < 0) return "a malformed data: URL";
  const [type = "", ...parameters] = url
    .slice("data:".length, comma)
    .split(";")
    .map((part) => part.trim().toLowerCase());
  if (type === "image/svg+xml") return "a nested SVG document (data:image/svg+xml) is not accepted";
  const format = EMBEDDABLE.get(type);
  if (!format) return `a data: URL of type '${type}' (only image/png, image/jpeg, image/gif, image/webp)`;
  if (parameters.length !== 1 || parameters[0] !== "base64")
    return `a data: ${type} that is not plain base64`;
  const payload = url.slice(comma + 1).replace(/[\t\n\f\r ]/g, "");
  if (!BASE64.test(payload) || payload.length % 4 === 1) return `a data: ${type} whose base64 is malformed`;
  return { format, bytes: Buffer.from(payload, "base64") };
}
