/**
 * A CSS tokeniser after CSS Syntax Level 3 (§4, "Tokenization"), the
 * algorithm librsvg's CSS parser (Servo's cssparser) implements. Escapes are
 * decoded, comments dropped, and `url(` is told apart from other functions
 * exactly as the standard says, so `\75 rl(`, `u\rl(` and `@\69 mport` are
 * seen as `url(` and `@import`, as the renderer would see them.
 */
export type CssToken =
  | { type: "ident" | "function" | "at-keyword" | "hash" | "string" | "url" | "delim"; value: string }
  | { type: "bad-string" | "bad-url" | "number" | "whitespace" | "punctuation" | "cdo" | "cdc" };

const EOF = "";

const isDigit = (c: string) => c >= "0" && c <= "9";
const isHexDigit = (c: string) => /^[0-9a-fA-F]$/.test(c);
const isLetter = (c: string) => /^[a-zA-Z]$/.test(c);
const isWhitespace = (c: string) => c === "\n" || c === "\t" || c === " ";
const isNonAscii = (c: string) => c !== EOF && (c.codePointAt(0) ?? 0) >= 0x80;
const isIdentStart = (c: string) => isLetter(c) || isNonAscii(c) || c === "_";
const isIdentChar = (c: string) => isIdentStart(c) || isDigit(c) || c === "-";
const isNonPrintable = (c: string) => {
  const code = c.codePointAt(0) ?? -1;
  return (code >= 0 && code <= 8) || code === 0x0b || (code >= 0x0e && code <= 0x1f) || code === 0x7f;
};
const isValidEscape = (a: string, b: string) => a === "\\" && b !== "\n";

function startsIdentSequence(a: string, b: string, c: string): boolean {
  if (a === "-") return isIdentStart(b) || b === "-" || isValidEscape(b, c);
  if (a === "\\") return isValidEscape(a, b);
  return isIdentStart(a);
}

function startsNumber(a: string, b: string, c: string): boolean {
  if (a === "+" || a === "-") return isDigit(b) || (b === "." && isDigit(c));
  if (a === ".") return isDigit(b);
  return isDigit(a);
}

/** §3.3: newlines normalised, NUL and lone surrogates replaced. */
function preprocess(text: string): string[] {
  return [
    ...text
      .replace(/\r\n|\r|\f/g, "\n")
      .replace(/\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD"),
  ];
}

const PUNCTUATION = new Set(["(", ")", ",", ":", ";", "[", "]", "{", "}"]);

class Tokeniser {
  readonly #chars: string[];
  #at = 0;

  constructor(text: string) {
    this.#chars = preprocess(text);
  }

  #peek(offset = 0): string {
    return this.#chars[this.#at + offset] ?? EOF;
  }

  #next(): string {
    const c = this.#peek();
    this.#at += 1;
    return c;
  }

  *tokens(): Generator<CssToken> {
    for (;;) {
      this.#skipComments();
      if (this.#peek() === EOF) return;
      yield this.#token();
    }
  }

  #skipComments(): void {
    while (this.#peek() === "/" && this.#peek(1) === "*") {
      this.#at += 2;
      while (this.#peek() !== EOF && !(this.#peek() === "*" && this.#peek(1) === "/")) this.#at += 1;
      this.#at += 2;
    }
  }

  #token(): CssToken {
    const c = this.#peek();
    if (isWhitespace(c)) {
      while (isWhitespace(this.#peek())) this.#at += 1;
      return { type: "whitespace" };
    }
    if (c === '"' || c === "'") return this.#string(this.#next());
    if (isDigit(c) || (startsNumber(c, this.#peek(1), this.#peek(2)) && c !== "-")) return this.#numeric();
    if (c === "-") return this.#minus();
    if (startsIdentSequence(c, this.#peek(1), this.#peek(2))) return this.#identLike();
    this.#at += 1;
    if (PUNCTUATION.has(c)) return { type: "punctuation" };
    if (c === "#" && (isIdentChar(this.#peek()) || isValidEscape(this.#peek(), this.#peek(1))))
      return { type: "hash", value: this.#identSequence() };
    if (c === "<" && this.#peek() === "!" && this.#peek(1) === "-" && this.#peek(2) === "-") {
      this.#at += 3;
      return { type: "cdo" };
    }
    if (c === "@" && startsIdentSequence(this.#peek(), this.#peek(1), this.#peek(2)))
      return { type: "at-keyword", value: this.#identSequence() };
    return { type: "delim", value: c };
  }

  #minus(): CssToken {
    if (startsNumber("-", this.#peek(1), this.#peek(2))) return this.#numeric();
    if (this.#peek(1) === "-" && this.#peek(2) === ">") {
      this.#at += 3;
      return { type: "cdc" };
    }
    if (startsIdentSequence("-", this.#peek(1), this.#peek(2))) return this.#identLike();
    this.#at += 1;
    return { type: "delim", value: "-" };
  }

  /** §4.3.4, after the opening quote. */
  #string(ending: string): CssToken {
    let value = "";
    for (;;) {
      const c = this.#next();
      if (c === EOF || c === ending) return { type: "string", value };
      if (c === "\n") {
        this.#at -= 1;
        return { type: "bad-string" };
      }
      if (c === "\\") {
        if (this.#peek() === EOF) continue;
        if (this.#peek() === "\n") this.#at += 1;
        else value += this.#escape();
      } else value += c;
    }
  }

  /** §4.3.7, after the backslash. */
  #escape(): string {
    const c = this.#next();
    if (c === EOF) return "\uFFFD";
    if (!isHexDigit(c)) return c;
    let hex = c;
    while (hex.length < 6 && isHexDigit(this.#peek())) hex += this.#next();
    if (isWhitespace(this.#peek())) this.#at += 1;
    const code = Number.parseInt(hex, 16);
    const invalid = code === 0 || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff;
    return invalid ? "\uFFFD" : String.fromCodePoint(code);
  }

  /** §4.3.11. */
  #identSequence(): string {
    let value = "";
    for (;;) {
      const c = this.#peek();
      if (isIdentChar(c)) value += this.#next();
      else if (isValidEscape(c, this.#peek(1))) {
        this.#at += 1;
        value += this.#escape();
      } else return value;
    }
  }

  /** §4.3.3: a number, percentage or dimension; only its extent matters here. */
  #numeric(): CssToken {
    if (this.#peek() === "+" || this.#peek() === "-") this.#at += 1;
    while (isDigit(this.#peek())) this.#at += 1;
    if (this.#peek() === "." && isDigit(this.#peek(1))) {
      this.#at += 1;
      while (isDigit(this.#peek())) this.#at += 1;
    }
    const e = this.#peek();
    const sign = this.#peek(1) === "+" || this.#peek(1) === "-" ? 1 : 0;
    if ((e === "e" || e === "E") && isDigit(this.#peek(1 + sign))) {
      this.#at += 1 + sign;
      while (isDigit(this.#peek())) this.#at += 1;
    }
    if (startsIdentSequence(this.#peek(), this.#peek(1), this.#peek(2))) this.#identSequence();
    else if (this.#peek() === "%") this.#at += 1;
    return { type: "number" };
  }

  /** §4.3.4 "consume an ident-like token": `url(` without a quote is a url token. */
  #identLike(): CssToken {
    const name = this.#identSequence();
    if (this.#peek() !== "(") return { type: "ident", value: name };
    this.#at += 1;
    if (name.toLowerCase() !== "url") return { type: "function", value: name };
    while (isWhitespace(this.#peek()) && isWhitespace(this.#peek(1))) this.#at += 1;
    const quoteNext = (c: string) => c === '"' || c === "'";
    if (quoteNext(this.#peek()) || (isWhitespace(this.#peek()) && quoteNext(this.#peek(1))))
      return { type: "function", value: name };
    return this.#url();
  }

  /** §4.3.6, after `url(`. */
  #url(): CssToken {
    let value = "";
    while (isWhitespace(this.#peek())) this.#at += 1;
    for (;;) {
      const c = this.#next();
      if (c === ")" || c === EOF) return { type: "url", value };
      if (isWhitespace(c)) {
        while (isWhitespace(this.#peek())) this.#at += 1;
        if (this.#peek() === ")" || this.#peek() === EOF) {
          this.#at += 1;
          return { type: "url", value };
        }
        return this.#badUrl();
      }
      if (c === '"' || c === "'" || c === "(" || isNonPrintable(c)) return this.#badUrl();
      if (c === "\\") {
        if (!isValidEscape(c, this.#peek())) return this.#badUrl();
        value += this.#escape();
      } else value += c;
    }
  }

  /** §4.3.14. */
  #badUrl(): CssToken {
    for (;;) {
      const c = this.#next();
      if (c === ")" || c === EOF) return { type: "bad-url" };
      if (isValidEscape(c, this.#peek())) this.#escape();
    }
  }
}

export function tokeniseCss(text: string): CssToken[] {
  return [...new Tokeniser(text).tokens()];
}
