/**
 * A CSS tokeniser after CSS Syntax Level 3 (§4, "Tokenization"), the
 * algorithm librsvg's CSS parser (Servo's cssparser) implements. Escapes are
 * decoded, comments dropped, and `url(` is told apart from other functions
 * exactly as the standard says, so `\75 rl(`, `u\rl(` and `@\69 mport` are
 * seen as `url(` and `@import`, as the renderer would see them.
 *
 * It walks UTF-16 code units: every character with a meaning in CSS syntax is
 * ASCII, and every other unit (surrogates included) is an identifier
 * character, so nothing is lost by not decoding code points.
 */
export type CssToken =
  | { type: "ident" | "function" | "at-keyword" | "hash" | "string" | "url" | "delim"; value: string }
  | { type: "bad-string" | "bad-url" | "number" | "whitespace" | "punctuation" | "cdo" | "cdc" };

const EOF = -1;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

const code = (c: string) => c.charCodeAt(0);
const HASH = code("#");
const AT = code("@");
const MINUS = code("-");
const PLUS = code("+");
const DOT = code(".");
const PERCENT = code("%");
const LESS = code("<");
const GREATER = code(">");
const BANG = code("!");
const SLASH = code("/");
const STAR = code("*");
const OPEN = code("(");
const CLOSE = code(")");
const QUOTE = code('"');
const APOSTROPHE = code("'");
const LOWER_E = code("e");
const UPPER_E = code("E");

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHexDigit = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
/** After preprocessing, CR and FF are newlines too. */
const isNewline = (c: number) => c === NEWLINE || c === 0x0d || c === 0x0c;
const isWhitespace = (c: number) => isNewline(c) || c === 0x09 || c === 0x20;
const isIdentStart = (c: number) => isLetter(c) || c >= 0x80 || c === 0x5f;
const isIdentChar = (c: number) => isIdentStart(c) || isDigit(c) || c === MINUS;
const isNonPrintable = (c: number) =>
  (c >= 0 && c <= 8) || c === 0x0b || (c >= 0x0e && c <= 0x1f) || c === 0x7f;
const isValidEscape = (a: number, b: number) => a === BACKSLASH && !isNewline(b);
const isQuote = (c: number) => c === QUOTE || c === APOSTROPHE;

function startsIdentSequence(a: number, b: number, c: number): boolean {
  if (a === MINUS) return isIdentStart(b) || b === MINUS || isValidEscape(b, c);
  if (a === BACKSLASH) return isValidEscape(a, b);
  return isIdentStart(a);
}

function startsNumber(a: number, b: number, c: number): boolean {
  if (a === PLUS || a === MINUS) return isDigit(b) || (b === DOT && isDigit(c));
  if (a === DOT) return isDigit(b);
  return isDigit(a);
}

const PUNCTUATION = new Set([..."(),:;[]{}"].map(code));

class Tokeniser {
  readonly #text: string;
  #at = 0;

  constructor(text: string) {
    // §3.3: CRLF is one newline (CR and FF alone are newlines, see isNewline); NUL is U+FFFD.
    this.#text = text.replaceAll("\r\n", "\n").replaceAll("\0", "\uFFFD");
  }

  #peek(offset = 0): number {
    const at = this.#at + offset;
    return at < this.#text.length ? this.#text.charCodeAt(at) : EOF;
  }

  *tokens(): Generator<CssToken> {
    for (;;) {
      this.#skipComments();
      if (this.#peek() === EOF) return;
      yield this.#token();
    }
  }

  #skipComments(): void {
    while (this.#peek() === SLASH && this.#peek(1) === STAR) {
      const end = this.#text.indexOf("*/", this.#at + 2);
      this.#at = end < 0 ? this.#text.length : end + 2;
    }
  }

  #token(): CssToken {
    const c = this.#peek();
    if (isWhitespace(c)) {
      while (isWhitespace(this.#peek())) this.#at += 1;
      return { type: "whitespace" };
    }
    if (isQuote(c)) {
      this.#at += 1;
      return this.#string(c);
    }
    if (c !== MINUS && startsNumber(c, this.#peek(1), this.#peek(2))) return this.#numeric();
    if (c === MINUS) return this.#minus();
    if (startsIdentSequence(c, this.#peek(1), this.#peek(2))) return this.#identLike();
    this.#at += 1;
    if (PUNCTUATION.has(c)) return { type: "punctuation" };
    if (c === HASH && (isIdentChar(this.#peek()) || isValidEscape(this.#peek(), this.#peek(1))))
      return { type: "hash", value: this.#identSequence() };
    if (c === LESS && this.#peek() === BANG && this.#peek(1) === MINUS && this.#peek(2) === MINUS) {
      this.#at += 3;
      return { type: "cdo" };
    }
    if (c === AT && startsIdentSequence(this.#peek(), this.#peek(1), this.#peek(2)))
      return { type: "at-keyword", value: this.#identSequence() };
    return { type: "delim", value: String.fromCharCode(c) };
  }

  #minus(): CssToken {
    if (startsNumber(MINUS, this.#peek(1), this.#peek(2))) return this.#numeric();
    if (this.#peek(1) === MINUS && this.#peek(2) === GREATER) {
      this.#at += 3;
      return { type: "cdc" };
    }
    if (startsIdentSequence(MINUS, this.#peek(1), this.#peek(2))) return this.#identLike();
    this.#at += 1;
    return { type: "delim", value: "-" };
  }

  /** §4.3.5, after the opening quote. */
  #string(ending: number): CssToken {
    let value = "";
    for (;;) {
      const c = this.#peek();
      if (c === EOF) return { type: "string", value };
      if (isNewline(c)) return { type: "bad-string" };
      this.#at += 1;
      if (c === ending) return { type: "string", value };
      if (c !== BACKSLASH) value += String.fromCharCode(c);
      else if (isNewline(this.#peek())) this.#at += 1;
      else if (this.#peek() !== EOF) value += this.#escape();
    }
  }

  /** §4.3.7, after the backslash. */
  #escape(): string {
    const first = this.#peek();
    if (first === EOF) return "\uFFFD";
    this.#at += 1;
    if (!isHexDigit(first)) return String.fromCharCode(first);
    let end = this.#at;
    while (end - this.#at < 5 && isHexDigit(this.#text.charCodeAt(end))) end += 1;
    const value = Number.parseInt(this.#text.slice(this.#at - 1, end), 16);
    this.#at = end;
    if (isWhitespace(this.#peek())) this.#at += 1;
    const invalid = value === 0 || (value >= 0xd800 && value <= 0xdfff) || value > 0x10ffff;
    return invalid ? "\uFFFD" : String.fromCodePoint(value);
  }

  /** §4.3.12. */
  #identSequence(): string {
    let value = "";
    for (;;) {
      const start = this.#at;
      while (isIdentChar(this.#peek())) this.#at += 1;
      value += this.#text.slice(start, this.#at);
      if (!isValidEscape(this.#peek(), this.#peek(1))) return value;
      this.#at += 1;
      value += this.#escape();
    }
  }

  /** §4.3.3: a number, percentage or dimension; only its extent matters here. */
  #numeric(): CssToken {
    if (this.#peek() === PLUS || this.#peek() === MINUS) this.#at += 1;
    while (isDigit(this.#peek())) this.#at += 1;
    if (this.#peek() === DOT && isDigit(this.#peek(1))) {
      this.#at += 1;
      while (isDigit(this.#peek())) this.#at += 1;
    }
    const e = this.#peek();
    const sign = this.#peek(1) === PLUS || this.#peek(1) === MINUS ? 1 : 0;
    if ((e === LOWER_E || e === UPPER_E) && isDigit(this.#peek(1 + sign))) {
      this.#at += 1 + sign;
      while (isDigit(this.#peek())) this.#at += 1;
    }
    if (startsIdentSequence(this.#peek(), this.#peek(1), this.#peek(2))) this.#identSequence();
    else if (this.#peek() === PERCENT) this.#at += 1;
    return { type: "number" };
  }

  /** §4.3.4 "consume an ident-like token": `url(` without a quote is a url token. */
  #identLike(): CssToken {
    const name = this.#identSequence();
    if (this.#peek() !== OPEN) return { type: "ident", value: name };
    this.#at += 1;
    if (name.toLowerCase() !== "url") return { type: "function", value: name };
    while (isWhitespace(this.#peek()) && isWhitespace(this.#peek(1))) this.#at += 1;
    if (isQuote(this.#peek()) || (isWhitespace(this.#peek()) && isQuote(this.#peek(1))))
      return { type: "function", value: name };
    return this.#url();
  }

  /** §4.3.6, after `url(`. */
  #url(): CssToken {
    let value = "";
    while (isWhitespace(this.#peek())) this.#at += 1;
    for (;;) {
      const c = this.#peek();
      this.#at += 1;
      if (c === CLOSE || c === EOF) return { type: "url", value };
      if (isWhitespace(c)) {
        while (isWhitespace(this.#peek())) this.#at += 1;
        if (this.#peek() === CLOSE || this.#peek() === EOF) {
          this.#at += 1;
          return { type: "url", value };
        }
        return this.#badUrl();
      }
      if (isQuote(c) || c === OPEN || isNonPrintable(c)) return this.#badUrl();
      if (c !== BACKSLASH) value += String.fromCharCode(c);
      else if (isValidEscape(c, this.#peek())) value += this.#escape();
      else return this.#badUrl();
    }
  }

  /** §4.3.14. */
  #badUrl(): CssToken {
    for (;;) {
      const c = this.#peek();
      this.#at += 1;
      if (c === CLOSE || c === EOF) return { type: "bad-url" };
      if (isValidEscape(c, this.#peek())) this.#escape();
    }
  }
}

export function tokeniseCss(text: string): CssToken[] {
  return [...new Tokeniser(text).tokens()];
}

/** Tokens only come from `(` (url, functions) and `@` (at-rules): CSS without either refers to nothing. */
export function mayReferToAnything(text: string): boolean {
  return text.includes("(") || text.includes("@");
}
