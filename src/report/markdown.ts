/** Small Markdown helpers for the support report: readable as plain text, rendered nicely where supported. */

export type CellValue = string | number | boolean | null | undefined;

/** A cell on one line: pipes escaped, line breaks and control characters flattened. */
export function cell(value: CellValue): string {
  if (value === null || value === undefined || value === "") return "-";
  const flat = [...String(value)].map((c) => (isControl(c.codePointAt(0) ?? 0) ? " " : c)).join("");
  return flat.replace(/\|/g, "\\|").trim();
}

/** C0 and C1 controls, DEL included: a line break would end a table row, an escape could rewrite a terminal. */
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

export function table(headers: readonly string[], rows: readonly (readonly CellValue[])[]): string {
  if (rows.length === 0) return "_(none)_\n";
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  const head = line(headers.map((h) => (h === "" ? "" : cell(h))));
  return `${[head, `|${headers.map(() => "---").join("|")}|`, ...rows.map((r) => line(r.map(cell)))].join("\n")}\n`;
}

/** `label: value` pairs as a two-column table. */
export function facts(pairs: readonly (readonly [string, CellValue])[]): string {
  return table(["", ""], pairs);
}

export function section(title: string, body: string): string {
  return `## ${title}\n\n${body.trimEnd()}\n`;
}

export function codeBlock(language: string, text: string): string {
  // A fence longer than any backtick run inside, so the content cannot close it.
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${language}\n${text.trimEnd()}\n${fence}\n`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return s < 172_800 ? `${(s / 3600).toFixed(1)}h` : `${(s / 86_400).toFixed(1)}d`;
}

/** Three significant digits, without exponent noise for ordinary values. */
export function num(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "-";
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 1000 ? n.toFixed(0) : String(Number(n.toPrecision(3)));
}
