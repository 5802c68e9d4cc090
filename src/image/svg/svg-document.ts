import { SaxesParser, type SaxesTagPlain } from "saxes";
import { ProblemError } from "../../errors/problem.js";
import { cssRefusal, isFragment } from "./css-policy.js";
import { type EmbeddedImage, parseEmbeddedImage } from "./data-url.js";

export type { EmbeddedImage };

/**
 * SVG by construction: the document is parsed as XML 1.0 by a real parser
 * (saxes, which never reads a DTD nor expands an entity beyond the five XML
 * predefines) and accepted only when nothing in it can reach outside it.
 * Returns the raster images it embeds as data: URLs, for the caller to put
 * through the same checks as an upload. The rules are docs/errors.md's
 * (unsupported-format), one for one.
 */
export async function inspectSvg(input: Buffer): Promise<EmbeddedImage[]> {
  const text = decodeUtf8(input);
  const inspection = new Inspection();
  const parser = new SaxesParser({ xmlns: false, position: true });
  inspection.listen(parser);
  try {
    const sliced = text.length > CHUNK_CHARS;
    for (const chunk of chunks(text)) {
      parser.write(chunk);
      // Parsing costs ~20 ms a MB of the API process's one thread: let other requests in between.
      if (sliced) await new Promise((resolve) => setImmediate(resolve));
    }
    parser.close();
  } catch (error) {
    if (error instanceof SvgRefusal) throw refused(`line ${parser.line}: ${error.message}`);
    throw new ProblemError(
      "corrupt-image",
      `the SVG is not well-formed XML: ${(error as Error).message}; re-export it`,
      { cause: error, extras: { format: "svg" } },
    );
  }
  return inspection.embedded;
}

const CHUNK_CHARS = 256 * 1024;

/** The text in slices of CHUNK_CHARS, never splitting a surrogate pair. */
function* chunks(text: string): Generator<string> {
  let at = 0;
  while (at < text.length) {
    let end = Math.min(text.length, at + CHUNK_CHARS);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    yield text.slice(at, end);
    at = end;
  }
}

/** Elements that run code, embed other documents or pull in other files. */
const REFUSED_ELEMENTS = new Set([
  "script",
  "foreignobject",
  "handler",
  "listener",
  "iframe",
  "embed",
  "object",
  "audio",
  "video",
  "include", // XInclude
]);

/** Attributes that name a resource by URL (in any namespace: href, xlink:href, …). */
const REFERENCE_ATTRIBUTES = new Set(["href", "src"]);

class SvgRefusal extends Error {}

const localName = (name: string) => name.slice(name.lastIndexOf(":") + 1).toLowerCase();

class Inspection {
  readonly embedded: EmbeddedImage[] = [];
  #attributes: { name: string; value: string }[] = [];
  #root = true;
  /** All text inside the outermost `<style>` being read, nested elements' included. */
  #style = "";
  /** `<style>` elements open around the current point (one inside another counts twice). */
  #styleDepth = 0;

  listen(parser: SaxesParser<{ xmlns: false; position: true }>): void {
    parser.on("xmldecl", ({ version, encoding }) => checkDeclaration(version, encoding));
    parser.on("doctype", () => refuse("a DOCTYPE (DTDs and entities are not accepted)"));
    parser.on("processinginstruction", ({ target }) => refuse(`the processing instruction <?${target}?>`));
    parser.on("opentagstart", () => {
      this.#attributes = [];
    });
    parser.on("attribute", ({ name, value }) => this.#attributes.push({ name, value }));
    parser.on("opentag", (tag) => this.#openElement(tag));
    parser.on("text", (text) => this.#styleText(text));
    parser.on("cdata", (text) => this.#styleText(text));
    parser.on("closetag", (tag) => this.#closeElement(tag));
  }

  #openElement(tag: SaxesTagPlain): void {
    const element = localName(tag.name);
    if (this.#root && element !== "svg") refuse(`the root element is <${tag.name}>, not <svg>`);
    this.#root = false;
    if (REFUSED_ELEMENTS.has(element)) refuse(`the element <${tag.name}>`);
    for (const { name, value } of this.#attributes) this.#checkAttribute(tag.name, name, value);
    if (element === "style" && !tag.isSelfClosing) this.#styleDepth += 1;
  }

  #checkAttribute(element: string, name: string, value: string): void {
    const attribute = localName(name);
    const where = `<${element} ${name}="${value.slice(0, 80)}">`;
    if (attribute.startsWith("on")) refuse(`the event handler ${where}`);
    if (name.toLowerCase() === "xml:base") refuse(`${where}: xml:base changes where references point`);
    if (name.toLowerCase().startsWith("xmlns")) return; // namespace names are never fetched
    if (REFERENCE_ATTRIBUTES.has(attribute)) {
      this.#checkReference(where, value);
      return;
    }
    if (attribute === "attributename" && REFERENCE_ATTRIBUTES.has(localName(value.trim())))
      refuse(`${where}: an animation may not change a reference`);
    const css = cssRefusal(value, attribute === "style" ? "style" : "attribute");
    if (css) refuse(`${where}: ${css}`);
  }

  #checkReference(where: string, value: string): void {
    if (value.trim() === "" || isFragment(value)) return;
    if (!/^\s*data:/i.test(value)) refuse(`${where} points outside the document`);
    const image = parseEmbeddedImage(value.trim());
    if (typeof image === "string") refuse(`${where}: ${image}`);
    this.embedded.push(image);
  }

  #styleText(text: string): void {
    if (this.#styleDepth > 0) this.#style += text;
  }

  #closeElement(tag: SaxesTagPlain): void {
    if (localName(tag.name) !== "style" || tag.isSelfClosing || this.#styleDepth === 0) return;
    this.#styleDepth -= 1;
    if (this.#styleDepth > 0) return;
    const css = cssRefusal(this.#style, "style");
    this.#style = "";
    if (css) refuse(`<${tag.name}>: ${css}`);
  }
}

function checkDeclaration(version: string | undefined, encoding: string | undefined): void {
  if (version !== undefined && version !== "1.0") refuse(`XML version ${version} (only 1.0 is read)`);
  // The renderer would decode another encoding (UTF-7, EBCDIC…) into markup this check never saw.
  if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) refuse(`the encoding ${encoding} (send UTF-8)`);
}

function refuse(reason: string): never {
  throw new SvgRefusal(reason);
}

function refused(reason: string): ProblemError {
  return new ProblemError(
    "unsupported-format",
    `SVG with scripts, event handlers, a DOCTYPE or entities, or references outside the document is not accepted (${reason}); inline every resource as a #fragment or a data: PNG, JPEG, GIF or WebP image`,
    { extras: { format: "svg", reason } },
  );
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(input: Buffer): string {
  try {
    return utf8.decode(input);
  } catch {
    throw refused("the document is not UTF-8");
  }
}
