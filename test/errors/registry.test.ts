import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERRORS_DOC, problemHtml, problemMarkdown } from "../../src/errors/problem-docs.js";
import { PROBLEM_TYPES, type ProblemCode, RETIRED_PROBLEM_CODES } from "../../src/errors/problem-types.js";

const doc = readFileSync(join(import.meta.dirname, "../../docs/errors.md"), "utf8");
const documented = [...doc.matchAll(/^## ([a-z-]+)$/gm)].map((m) => m[1] as string);

describe("the problem type registry and docs/errors.md", () => {
  it("documents every problem type with its status", () => {
    for (const [code, { status }] of Object.entries(PROBLEM_TYPES)) {
      expect(documented, `docs/errors.md lacks '## ${code}'`).toContain(code);
      const section = (doc.split(`## ${code}\n`)[1]?.split("\n## ")[0] ?? "").trimStart();
      expect(section, `docs/errors.md section ${code} must start with its status`).toMatch(
        new RegExp(`^\`${status}\``),
      );
    }
  });

  it("documents no type that does not exist", () => {
    expect(documented.filter((code) => !(code in PROBLEM_TYPES))).toEqual([]);
  });

  it("never reuses a retired code", () => {
    for (const code of RETIRED_PROBLEM_CODES) expect(PROBLEM_TYPES).not.toHaveProperty(code);
  });

  it("serves every type's own section as a page, found beside the code rather than the working directory", () => {
    expect(ERRORS_DOC).toBe(join(import.meta.dirname, "../../docs/errors.md"));
    for (const code of Object.keys(PROBLEM_TYPES) as ProblemCode[]) {
      const section = (doc.split(`## ${code}\n`)[1]?.split("\n## ")[0] ?? "").trim();
      expect(problemMarkdown(code)).toContain(section);
      const html = problemHtml(code);
      expect(html).toContain(`<h1>${PROBLEM_TYPES[code].title}</h1>`);
      // Every inline code span became <code>; no Markdown is left for the reader to decode.
      expect(html.split("<body>")[1], code).not.toContain("`");
    }
  });
});
