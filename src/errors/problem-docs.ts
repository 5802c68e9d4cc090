import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PROBLEM_TYPES, type ProblemCode, problemTypeUri } from "./problem-types.js";

/**
 * The documentation of each problem type, from docs/errors.md: what a
 * client reads when it follows a problem's `type` URI. The file ships with
 * the checkout; it is found from this module's place in it (src/errors and
 * dist/errors alike), never from the working directory.
 */
export const ERRORS_DOC = fileURLToPath(new URL("../../docs/errors.md", import.meta.url));

let sections: ReadonlyMap<string, string> | undefined;

/** `## code` sections of docs/errors.md, by code; the text under each heading, as Markdown. */
export function problemSections(file = ERRORS_DOC): ReadonlyMap<string, string> {
  if (file === ERRORS_DOC && sections) return sections;
  const text = readFileSync(file, "utf8");
  const found = new Map<string, string>();
  for (const part of text.split(/^## /m).slice(1)) {
    const newline = part.indexOf("\n");
    found.set(part.slice(0, newline).trim(), part.slice(newline + 1).trim());
  }
  if (file === ERRORS_DOC) sections = found;
  return found;
}

/** One problem type's documentation as Markdown: its heading, title and section. */
export function problemMarkdown(code: ProblemCode): string {
  const body = problemSections().get(code) ?? "";
  return `# ${code}\n\n**${PROBLEM_TYPES[code].title}**\n\n${body}\n`;
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** The inline Markdown docs/errors.md uses: `code`, **bold**, _emphasis_ and [links](…). */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|\W)_([^_]+)_(?=\W|$)/g, "$1<em>$2</em>")
    .replace(
      /\[([^\]]+)\]\(([^)\s]+)\)/g,
      (_, label: string, href: string) =>
        // Links within docs/errors.md point at other sections, each served at its own URI.
        `<a href="${href.startsWith("#") ? problemTypeUri(href.slice(1) as ProblemCode) : href}">${label}</a>`,
    );
}

/** Paragraphs and `-` lists: all the block Markdown a section holds. */
function blocks(markdown: string): string {
  return markdown
    .split(/\n{2,}/)
    .map((block) => {
      const lines = block.split("\n");
      if (lines.every((line) => /^\s*- /.test(line) || /^\s{2,}/.test(line))) {
        const items = block.split(/^\s*- /m).filter((item) => item.trim() !== "");
        return `<ul>${items.map((item) => `<li>${inline(item.trim())}</li>`).join("")}</ul>`;
      }
      return `<p>${inline(block.replace(/\n/g, " "))}</p>`;
    })
    .join("\n");
}

/** One problem type's documentation as a small self-contained HTML page. */
export function problemHtml(code: ProblemCode): string {
  const { status, title } = PROBLEM_TYPES[code];
  const body = problemSections().get(code) ?? "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(code)}: ${escapeHtml(title)} (imgfleet problem type)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}code{font-size:.9em}</style>
</head>
<body>
<p>imgfleet problem type <code>${escapeHtml(problemTypeUri(code))}</code> · HTTP ${status}</p>
<h1>${escapeHtml(title)}</h1>
${blocks(body)}
</body>
</html>
`;
}
