/** Plain-text table: first two columns and the last left-aligned, numbers right-aligned. */
export function render(columns: string[], rows: string[][]): string {
  const all = [columns, ...rows];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const last = columns.length - 1;
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i < 2 || i === last ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(columns), rule, ...rows.map(line)].join("\n");
}
