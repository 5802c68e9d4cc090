import type { ComponentChildren, HTMLAttributes } from "preact";

export interface Column<T> {
  header: ComponentChildren;
  cell: (row: T) => ComponentChildren;
  /** Right-aligned figures. */
  num?: boolean;
  /** Extra class on the column's cells (e.g. "small"). */
  class?: string;
}

interface DataTableProps<T> {
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey: (row: T) => string | number;
  /** Attributes of a row's <tr> (data-* for tests and links, a class). */
  rowProps?: (row: T) => HTMLAttributes<HTMLTableRowElement> & Record<`data-${string}`, string>;
  /** Accessible name of the table. */
  label?: string;
  /** The table's data-testid. */
  testId?: string;
}

/**
 * The console's one table: a header row and one row per item, in a
 * wrapper that scrolls sideways on its own on a narrow screen (the page
 * never does).
 */
export function DataTable<T>({ rows, columns, rowKey, rowProps, label, testId }: DataTableProps<T>) {
  const classOf = (c: Column<T>) => [c.num ? "num" : "", c.class ?? ""].join(" ").trim() || undefined;
  return (
    <div class="table-wrap">
      <table aria-label={label} data-testid={testId}>
        <thead>
          <tr>
            {columns.map((c, i) => (
              <th key={i} class={c.num ? "num" : undefined}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} {...rowProps?.(row)}>
              {columns.map((c, i) => (
                <td key={i} class={classOf(c)}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
