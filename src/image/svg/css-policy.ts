import { type CssToken, mayReferToAnything, tokeniseCss } from "./css-tokens.js";

/**
 * What CSS in an SVG may hold: references to the same document only. Checked
 * on tokens, after escapes are decoded, so no spelling of `url(` or `@import`
 * slips past. Returns why the CSS is refused, or undefined.
 */
export type CssContext =
  /** A `<style>` element's stylesheet, or a `style=""` attribute. */
  | "style"
  /** Any other attribute: presentation attributes (`fill="url(#g)"`) are CSS values. */
  | "attribute";

/** Functions whose argument is a URL to fetch (CSS Images, CSS Values 4), beside url() itself. */
const URL_FUNCTIONS = new Set(["src", "image", "image-set", "cross-fade", "element", "attr"]);

/** At-rules that only group rules; @import, @font-face and @namespace name URLs and are refused with any other. */
const GROUPING_AT_RULES = new Set(["media", "supports", "keyframes", "layer", "container"]);

const withoutVendorPrefix = (name: string) => name.toLowerCase().replace(/^-(?:webkit|moz|ms|o)-/, "");

/** `#id`: the same document. Everything else (another file, a host, data:) is outside it. */
export const isFragment = (reference: string) => reference.trim().startsWith("#");

export function cssRefusal(css: string, context: CssContext): string | undefined {
  if (!mayReferToAnything(css)) return undefined;
  const tokens = tokeniseCss(css);
  for (const [at, token] of tokens.entries()) {
    const refusal = tokenRefusal(token, tokens, at, context);
    if (refusal) return refusal;
  }
  return undefined;
}

function tokenRefusal(
  token: CssToken,
  tokens: CssToken[],
  at: number,
  context: CssContext,
): string | undefined {
  switch (token.type) {
    case "url":
      return isFragment(token.value) ? undefined : `url(${token.value}) points outside the document`;
    case "bad-url":
      return "a malformed url()";
    case "function": {
      const name = withoutVendorPrefix(token.value);
      if (name === "url") return quotedUrlRefusal(tokens, at + 1);
      return URL_FUNCTIONS.has(name) ? `the CSS function ${token.value}() loads a resource` : undefined;
    }
    case "at-keyword":
      if (context === "style" && !GROUPING_AT_RULES.has(withoutVendorPrefix(token.value)))
        return `the CSS rule @${token.value} is not accepted`;
      return undefined;
    default:
      return undefined;
  }
}

/** `url("…")` is a function token followed by a string. */
function quotedUrlRefusal(tokens: CssToken[], from: number): string | undefined {
  let at = from;
  while (tokens[at]?.type === "whitespace") at += 1;
  const argument = tokens[at];
  if (argument?.type !== "string") return "a malformed url()";
  return isFragment(argument.value) ? undefined : `url("${argument.value}") points outside the document`;
}
