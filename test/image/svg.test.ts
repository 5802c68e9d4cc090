import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ImageLimits } from "../../src/config/schema.js";
import { ProblemError } from "../../src/errors/problem.js";
import { parseResizeOptions } from "../../src/image/options.js";
import { resizeImage } from "../../src/image/pipeline.js";
import { planResize } from "../../src/image/plan.js";
import { probeImage } from "../../src/image/probe.js";
import { solidImage } from "../helpers/images.js";

const defaults: ImageLimits = loadConfig({ env: {} }).limits;
const withSvg: ImageLimits = { ...defaults, inputFormats: [...defaults.inputFormats, "svg"] };

const XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"';
const doc = (body: string, head = "") =>
  `${head}<svg xmlns="http://www.w3.org/2000/svg" ${XLINK} width="40" height="20">${body}</svg>`;
const base64 = (text: string | Buffer) => Buffer.from(text).toString("base64");

async function outcome(svg: string | Buffer): Promise<unknown> {
  return probeImage(Buffer.isBuffer(svg) ? svg : Buffer.from(svg), withSvg).catch((error: unknown) => error);
}

/** A PNG header claiming width×height, with almost no pixel data behind it. */
async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const small = await solidImage(8, 8, "png");
  const claimed = Buffer.from(small);
  claimed.writeUInt32BE(width, 16);
  claimed.writeUInt32BE(height, 20);
  return claimed;
}

/** Attacks the old regular-expression filter let through. */
const ATTACKS: [string, string, () => string | Promise<string>][] = [
  [
    "CSS escapes",
    "url() spelt \\75 rl( in style=''",
    () => doc('<rect width="9" height="9" style="fill:\\75 rl(http://evil.example/p)"/>'),
  ],
  [
    "CSS escapes",
    "url() spelt u\\rl( in a presentation attribute",
    () => doc('<rect width="9" height="9" fill="u\\rl(http://evil.example/p)"/>'),
  ],
  [
    "CSS escapes",
    "url() spelt \\000075rl( in a <style> sheet",
    () =>
      doc("<style>rect { fill: \\000075rl('http://evil.example/p') }</style><rect width='9' height='9'/>"),
  ],
  [
    "CSS escapes",
    "url() spelt &#117;rl( with an XML character reference",
    () => doc('<rect width="9" height="9" style="filter:&#117;rl(http://evil.example/f)"/>'),
  ],
  [
    "CSS escapes",
    "image-set() loading a URL",
    () =>
      doc('<rect width="9" height="9" style="fill:image-set(&quot;http://evil.example/p.png&quot; 1x)"/>'),
  ],
  [
    "CSS escapes",
    "a @font-face src with an escaped url(",
    () => doc("<style>@font-face { font-family: x; src: \\75 rl(http://evil.example/f.woff) }</style>"),
  ],
  ["@import", "@\\69 mport", () => doc("<style>@\\69 mport 'http://evil.example/x.css';</style>")],
  ["@import", "@im\\port", () => doc("<style>@im\\port 'http://evil.example/x.css';</style>")],
  [
    "@import",
    "@&#105;mport in CDATA-free text",
    () => doc("<style>@&#105;mport 'http://evil.example/x.css';</style>"),
  ],
  [
    "@import",
    "@\\000049MPORT in CDATA",
    () => doc("<style><![CDATA[@\\000049MPORT 'http://evil.example/x.css';]]></style>"),
  ],
  [
    "DTD",
    "an external DTD",
    () => doc('<rect width="9" height="9"/>', '<!DOCTYPE svg SYSTEM "http://evil.example/x.dtd">\n'),
  ],
  [
    "DTD",
    "a public DTD with a system URL",
    () => doc("", '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://evil.example/svg11.dtd">\n'),
  ],
  [
    "entities",
    "XXE: an entity the external DTD declares",
    () => doc("<text>&xxe;</text>", '<!DOCTYPE svg SYSTEM "http://evil.example/entities.dtd">\n'),
  ],
  [
    "nested data:",
    "a data:image/svg+xml document carrying an http reference",
    () =>
      doc(
        `<image width="9" height="9" href="data:image/svg+xml;base64,${base64(doc('<image href="http://evil.example/x.png" width="9" height="9"/>'))}"/>`,
      ),
  ],
  [
    "nested data:",
    "a percent-encoded data:image/svg+xml document",
    () =>
      doc(
        `<image width="9" height="9" xlink:href="data:image/svg+xml,${encodeURIComponent(doc('<image href="http://evil.example/x.png"/>'))}"/>`,
      ),
  ],
  [
    "nested data:",
    "an SVG labelled data:image/png",
    () =>
      doc(
        `<image width="9" height="9" href="data:image/png;base64,${base64(doc('<image href="file:///etc/passwd"/>'))}"/>`,
      ),
  ],
  [
    "nested data:",
    "a data: PNG whose header claims 100,000 × 100,000 pixels",
    async () =>
      doc(
        `<image width="9" height="9" href="data:image/png;base64,${base64(await pngClaiming(100_000, 100_000))}"/>`,
      ),
  ],
  [
    "xlink:href",
    "an animation setting xlink:href to http",
    () =>
      doc(
        '<image width="9" height="9" xlink:href="#a"><set attributeName="xlink:href" to="http://evil.example/x.png"/></image>',
      ),
  ],
  [
    "xlink:href",
    "xml:base turning #fragments into another host's",
    () => doc('<g xml:base="http://evil.example/"><use href="#x"/></g>'),
  ],
  [
    "file:",
    "an animation pointing an image at file:///etc/passwd",
    () =>
      doc('<image width="9" height="9"><animate attributeName="href" values="file:///etc/passwd"/></image>'),
  ],
  [
    "encoding",
    "a UTF-7 declaration hiding markup",
    () => doc("+ADw-script+AD4-alert(1)+ADw-/script+AD4-", '<?xml version="1.0" encoding="UTF-7"?>\n'),
  ],
  ["active content", "<foreignObject>", () => doc("<foreignObject><div>hi</div></foreignObject>")],
  [
    "active content",
    "a <script> in another prefix",
    () => doc('<s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script>'),
  ],
];

/** Attacks the old filter caught too: they must stay refused. */
const STILL_REFUSED: [string, string, () => string | Promise<string>][] = [
  [
    "@import",
    "after a <style> nested in the <style>",
    () => doc("<style><style>a { fill: red }</style>@import 'http://evil.example/x.css';</style>"),
  ],
  [
    "entities",
    "XXE: an external entity",
    () => doc("<text>&xxe;</text>", '<!DOCTYPE svg [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'),
  ],
  [
    "entities",
    "entity expansion (billion laughs)",
    () =>
      doc(
        "<text>&l3;</text>",
        '<!DOCTYPE svg [<!ENTITY l0 "ha"><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">' +
          '<!ENTITY l2 "&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;"><!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">]>\n',
      ),
  ],
  [
    "entities",
    "a parameter entity in the internal subset",
    () => doc("", '<!DOCTYPE svg [<!ENTITY % p SYSTEM "http://evil.example/p.ent"> %p;]>\n'),
  ],
  ["xlink:href", "xlink:href to http", () => doc('<use xlink:href="http://evil.example/s.svg#x"/>')],
  [
    "file:",
    "<image href=file:///etc/passwd>",
    () => doc('<image width="9" height="9" href="file:///etc/passwd"/>'),
  ],
  [
    "file:",
    "an XInclude of /etc/passwd",
    () =>
      doc('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" parse="text" href="file:///etc/passwd"/>'),
  ],
  [
    "stylesheet",
    "an xml-stylesheet processing instruction",
    () => doc("", '<?xml-stylesheet type="text/css" href="&#104;ttp://evil.example/x.css"?>\n'),
  ],
  [
    "active content",
    "an event handler attribute",
    () => doc('<rect width="9" height="9" onmouseover="alert(1)"/>'),
  ],
];

/** A 4xx problem about the SVG; fails the test when the document is accepted. */
async function expectRefused(svg: string): Promise<void> {
  const error = await outcome(svg);
  expect(error, `accepted: ${JSON.stringify(error)}`).toBeInstanceOf(ProblemError);
  const problem = error as ProblemError;
  expect(problem.status).toBeGreaterThanOrEqual(400);
  expect(problem.status).toBeLessThan(500);
  expect(problem.extras.format).toBe("svg");
}

describe("SVG by construction: every attack class is refused", () => {
  it.each(ATTACKS)("%s: %s", async (_class, _label, make) => expectRefused(await make()));

  it.each(STILL_REFUSED)("still %s: %s", async (_class, _label, make) => expectRefused(await make()));

  it("says what was refused and where", async () => {
    const problem = (await outcome(
      doc('\n<rect width="9" height="9" style="fill:\\75 rl(http://evil.example/p)"/>'),
    )) as ProblemError;
    expect(problem.code).toBe("unsupported-format");
    expect(problem.extras.reason).toMatch(
      /^line 2: .*url\(http:\/\/evil\.example\/p\) points outside the document/,
    );
  });

  it("reads a long document whole: slices join, a character split between two is still one", async () => {
    const padding = `<!--${"x".repeat(300_000)}-->`;
    await expectRefused(
      doc(`${padding}<rect width="9" height="9" style="fill:\\75 rl(http://evil.example/p)"/>`),
    );
    // Put a surrogate pair across the first slice's end (256 Ki UTF-16 units).
    const head = doc("").indexOf("</svg>") + "<!--".length;
    const emoji = doc(`<!--${"y".repeat(256 * 1024 - head - 1)}😀-->`);
    expect(emoji.charCodeAt(256 * 1024 - 1)).toBe(0xd83d);
    expect((await probeImage(Buffer.from(emoji), withSvg)).format).toBe("svg");
  });

  it("answers a document that is not well-formed with 422 corrupt-image", async () => {
    const problem = (await outcome(doc("<rect width='9'>"))) as ProblemError;
    expect(problem.code).toBe("corrupt-image");
  });
});

describe("SVG by construction: what stays accepted", () => {
  const benign = async () =>
    doc(
      "<!-- drawn by hand -->" +
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#00ff00"/></linearGradient>' +
        '<rect id="r" width="20" height="20"/></defs>' +
        "<style><![CDATA[ @media print { .unused { fill: red } } .blue { fill: #0000ff } .x { fill: url(#g) } ]]></style>" +
        '<use href="#r" class="blue" transform="translate(20 0)"/>' +
        '<use xlink:href="#r" style="fill: url( &quot;#g&quot; )"/>' +
        `<image x="0" y="0" width="2" height="2" href="data:image/png;base64,${base64(await solidImage(2, 2, "png"))}"/>`,
      '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
    );

  it("accepts a document with gradients, <style>, @media, <use> and an embedded PNG", async () => {
    expect(await probeImage(Buffer.from(await benign()), withSvg)).toMatchObject({
      format: "svg",
      width: 40,
      height: 20,
    });
  });

  it("renders it: the left half green from url(#g), the right half blue from the stylesheet", async () => {
    const input = Buffer.from(await benign());
    const limits = withSvg;
    const probe = await probeImage(input, limits);
    const { spec } = planResize(
      parseResizeOptions({ w: "40", format: "png" }, limits),
      probe,
      undefined,
      limits,
    );
    const { data } = await resizeImage(input, spec);
    const { data: raw, info } = await sharp(data).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [
      ...raw.subarray((y * info.width + x) * info.channels).subarray(0, 3),
    ];
    expect(at(10, 15)).toEqual([0, 255, 0]);
    expect(at(30, 10)).toEqual([0, 0, 255]);
  });
});
