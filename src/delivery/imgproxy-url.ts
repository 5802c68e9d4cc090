import { ProblemError } from "../errors/problem.js";

/**
 * imgproxy's documented URL format, so the URL builders people already use
 * work unchanged against a tenant's base URL:
 *
 *   /<signature>/<option>/<option>/…/plain/<percent-encoded source URL>[@<extension>]
 *   /<signature>/<option>/<option>/…/<base64url source URL, may be split by '/'>[.<extension>]
 *
 * An option is `name:arg1:arg2:…`; the first segment without `:` starts the
 * source. Follows imgproxy's parser (options/parser/url.go, handlers/path.go).
 */

/** One processing option as written: `rs:fill:300::1` is { name: "rs", args: ["fill", "300", "", "1"] }. */
export interface UrlOption {
  name: string;
  args: string[];
}

export interface DeliveryRequest {
  /** The first segment, as sent (checked by signature.ts). */
  signature: string;
  /** What the signature covers: the path after the signature, leading `/` included. */
  signedPath: string;
  options: UrlOption[];
  /** The source URL, decoded. Always an absolute http(s) URL. */
  source: string;
  sourceEncoding: "plain" | "base64";
  /** `@png` or `.png`; undefined when absent or empty. */
  extension: string | undefined;
}

const ARGUMENT_SEPARATOR = ":";
const PLAIN = "plain";
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Parses the path after the tenant prefix (`/<signature>/…`), raw as received:
 * percent-encoding intact, query string optional (ignored, as imgproxy does).
 * Throws `bad-request` naming what is malformed.
 */
export function parseDeliveryPath(rawPath: string): DeliveryRequest {
  const path = (rawPath.split("?")[0] ?? "").replace(/^\//, "");
  const slash = path.indexOf("/");
  const signature = slash < 0 ? path : path.slice(0, slash);
  const rest = slash < 0 ? "" : path.slice(slash + 1);
  if (signature === "" || rest === "") {
    throw malformed("expected /<signature>/<processing options>/<source URL>");
  }
  const restored = redenormalize(rest);
  const segments = restored.split("/");
  const { options, sourceStart } = splitOptions(segments);
  const sourceParts = segments.slice(sourceStart);
  const decoded =
    sourceParts[0] === PLAIN && sourceParts.length > 1
      ? { ...decodePlain(sourceParts.slice(1)), sourceEncoding: "plain" as const }
      : { ...decodeBase64(sourceParts), sourceEncoding: "base64" as const };
  checkSourceUrl(decoded.source);
  return { signature, signedPath: `/${restored}`, options, ...decoded };
}

/** Options run until the first segment without the separator. */
function splitOptions(segments: string[]): { options: UrlOption[]; sourceStart: number } {
  const options: UrlOption[] = [];
  for (const [index, segment] of segments.entries()) {
    const [name = "", ...args] = segment.split(ARGUMENT_SEPARATOR);
    if (args.length === 0) return { options, sourceStart: index };
    options.push({ name, args });
  }
  return { options, sourceStart: segments.length };
}

/**
 * Undoes what some proxies and CDNs do to URLs, before the signature is
 * checked (as imgproxy does, so a URL signed by its builders still verifies):
 * `%3A` for `:` in the options, `scheme:/host` for `scheme://host` in a plain source.
 */
function redenormalize(path: string): string {
  let options: string;
  let plainUrl: string | undefined;
  if (path.startsWith(`${PLAIN}/`)) {
    options = "";
    plainUrl = path.slice(PLAIN.length + 1);
  } else {
    const at = path.indexOf(`/${PLAIN}/`);
    options = at < 0 ? path : path.slice(0, at);
    plainUrl = at < 0 ? undefined : path.slice(at + PLAIN.length + 2);
  }
  options = options.replaceAll("%3A", ":");
  if (plainUrl === undefined) return options;
  // Only the scheme's own `:/`: a later `:/` in the path is the source's business.
  const fixed = plainUrl.replace(/^([a-z][a-z0-9+.-]*):\/([^/])/i, "$1://$2");
  return options === "" ? `${PLAIN}/${fixed}` : `${options}/${PLAIN}/${fixed}`;
}

function decodePlain(parts: string[]): { source: string; extension: string | undefined } {
  const joined = parts.join("/");
  const pieces = joined.split("@");
  if (pieces.length > 2) {
    throw malformed(`several extensions after '@' in '${joined}'; percent-encode '@' in the source as %40`);
  }
  const [encoded = "", extension] = pieces;
  if (encoded === "") throw malformed("the source URL is empty");
  let source: string;
  try {
    source = decodeURIComponent(encoded);
  } catch {
    throw malformed(`the plain source URL has invalid percent-encoding: '${encoded}'`);
  }
  return { source, extension: extension || undefined };
}

function decodeBase64(parts: string[]): { source: string; extension: string | undefined } {
  const joined = parts.join("");
  const pieces = joined.split(".");
  if (pieces.length > 2) throw malformed(`several extensions after '.' in '${joined}'`);
  const [encoded = "", extension] = pieces;
  const unpadded = encoded.replace(/=+$/, "");
  if (unpadded === "") throw malformed("the source URL is empty");
  // Buffer's decoder skips characters outside the alphabet; a URL with any is refused instead.
  if (!BASE64URL.test(unpadded) || unpadded.length % 4 === 1) {
    throw malformed(`the source is not URL-safe Base64: '${encoded}'`);
  }
  return { source: Buffer.from(unpadded, "base64url").toString("utf8"), extension: extension || undefined };
}

function checkSourceUrl(source: string): void {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw malformed(`the source is not an absolute URL: '${source}'`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw malformed(`the source must be an http or https URL, not '${url.protocol}'`);
  }
}

function malformed(detail: string): ProblemError {
  return new ProblemError("bad-request", `image URL: ${detail}`);
}
