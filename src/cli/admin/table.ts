/** What a table cell may hold; null and undefined mean "not set" and print as `-`. */
export type Cell = string | number | boolean | null | undefined | readonly string[];

export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  /** Numbers read best right-aligned. */
  align?: "left" | "right";
  /** Cells longer than this are cut with `…`, so one long value cannot push every row off screen. */
  maxWidth?: number;
}

const NOT_SET = "-";
const GAP = "  ";

/**
 * Control characters (and the C1 range) become `?`: values such as key
 * names come from whoever holds an admin key, and an escape sequence in one
 * must not be able to rewrite the operator's terminal.
 */
function printable(text: string): string {
  return [...text].map((c) => (isControl(c.codePointAt(0) ?? 0) ? "?" : c)).join("");
}

function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

export function formatCell(value: Cell): string {
  if (value === null || value === undefined || value === "") return NOT_SET;
  if (Array.isArray(value)) return value.length === 0 ? NOT_SET : printable(value.join(","));
  return printable(String(value));
}

/**
 * `2026-11-22T02:29:00.450Z` → `2026-11-22 02:29Z` (or `…02:29:00Z` with
 * seconds). Still UTC and still sortable; the Z keeps the zone visible.
 */
export function shortDate(iso: string | null | undefined, withSeconds = false): string | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const text = new Date(ms).toISOString();
  return `${text.slice(0, 10)} ${text.slice(11, withSeconds ? 19 : 16)}Z`;
}

/** Length in code points, so a name with accents or emoji does not misalign its column by much. */
function width(text: string): number {
  return [...text].length;
}

function truncate(text: string, max: number | undefined): string {
  if (max === undefined || width(text) <= max) return text;
  return `${[...text].slice(0, Math.max(1, max - 1)).join("")}…`;
}

function pad(text: string, to: number, align: "left" | "right"): string {
  const fill = " ".repeat(Math.max(0, to - width(text)));
  return align === "right" ? fill + text : text + fill;
}

/** An aligned table with a header row; each line ends without trailing spaces. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((c) => truncate(formatCell(c.value(row)), c.maxWidth)));
  const widths = columns.map((c, i) => Math.max(width(c.header), ...cells.map((r) => width(r[i] ?? ""))));
  const line = (texts: string[]) =>
    texts
      .map((t, i) => pad(t, widths[i] ?? 0, columns[i]?.align ?? "left"))
      .join(GAP)
      .trimEnd();
  return `${[line(columns.map((c) => c.header)), ...cells.map(line)].join("\n")}\n`;
}

/** One object as `label  value` lines: the view for a single tenant or key. */
export function renderDetails(pairs: ReadonlyArray<readonly [label: string, value: Cell]>): string {
  const labelWidth = Math.max(...pairs.map(([label]) => width(label)));
  return `${pairs.map(([label, value]) => `${pad(label, labelWidth, "left")}${GAP}${formatCell(value)}`.trimEnd()).join("\n")}\n`;
}
