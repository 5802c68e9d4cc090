import { describe, expect, it } from "vitest";
import { cssRefusal } from "../../src/image/svg/css-policy.js";
import { tokeniseCss } from "../../src/image/svg/css-tokens.js";
import { parseEmbeddedImage } from "../../src/image/svg/data-url.js";

const meaningful = (css: string) => tokeniseCss(css).filter((t) => t.type !== "whitespace");

describe("CSS tokens as CSS Syntax Level 3 reads them", () => {
  it.each([
    ["\\75 rl(http://a/b)", { type: "url", value: "http://a/b" }],
    ["u\\rl(http://a/b)", { type: "url", value: "http://a/b" }],
    ["\\55\\52\\4c(x)", { type: "url", value: "x" }],
    ["url(  x\\)y  )", { type: "url", value: "x)y" }],
    ["url( 'x')", { type: "function", value: "url" }],
    ["@\\69 mport", { type: "at-keyword", value: "import" }],
    ["@\\000069mport", { type: "at-keyword", value: "import" }],
    ["-\\77 ebkit-image-set(", { type: "function", value: "-webkit-image-set" }],
    ["#\\67 radient", { type: "hash", value: "gradient" }],
  ])("%s → %j", (css, expected) => {
    expect(meaningful(css)[0]).toEqual(expected);
  });

  it("a comment splits an identifier, as in the renderer: ur/**/l( is no url(", () => {
    expect(meaningful("ur/**/l(http://a)")[0]).toEqual({ type: "ident", value: "ur" });
  });

  it("a quote or a space inside an unquoted url() makes a bad url, refused", () => {
    expect(meaningful("url(a b)")[0]).toEqual({ type: "bad-url" });
    expect(cssRefusal("fill:url(#a b)", "attribute")).toBe("a malformed url()");
  });

  it("a string hides nothing: a url( inside quotes is text", () => {
    expect(cssRefusal("font-family: 'url(http://a)'", "style")).toBeUndefined();
  });
});

describe("CSS policy", () => {
  it.each([
    ["fill:url(#g)", "attribute"],
    ["fill:URL( '#g' )", "style"],
    ["@media print { a { fill: red } } @supports (fill: red) { b { fill: blue } }", "style"],
    ["transform: translate(1px) rotate(3deg); fill: rgb(1 2 3 / 50%)", "style"],
    ["name@host", "attribute"],
  ] as const)("accepts %s as %s", (css, context) => {
    expect(cssRefusal(css, context)).toBeUndefined();
  });

  it.each([
    ["fill:url(http://a/p)", "attribute"],
    ["fill:url(data:image/png;base64,AAAA)", "attribute"],
    ['fill:url("other.svg#g")', "style"],
    ["mask: -webkit-cross-fade(url(#a), 'http://a/b', 50%)", "style"],
    ["@namespace svg url(http://www.w3.org/2000/svg);", "style"],
    ["@font-face { font-family: f }", "style"],
  ] as const)("refuses %s as %s", (css, context) => {
    expect(cssRefusal(css, context)).toBeDefined();
  });
});

describe("data: images an SVG may embed", () => {
  it("reads a base64 PNG, spaces and case aside", () => {
    expect(parseEmbeddedImage("DATA:Image/PNG ; Base64,iVBO Rw==")).toEqual({
      format: "png",
      bytes: Buffer.from("iVBORw==", "base64"),
    });
  });

  it.each([
    "data:image/svg+xml;base64,PHN2Zz4=",
    "data:image/svg+xml,%3Csvg%3E",
    "data:text/html,hi",
    "data:image/png,%89PNG",
    "data:image/png;charset=utf-8;base64,AAAA",
    "data:image/png;base64,AA%3D%3D",
    "data:image/x-xbitmap;base64,AAAA",
    "data:image/png;base64",
  ])("refuses %s", (url) => {
    expect(typeof parseEmbeddedImage(url)).toBe("string");
  });
});
