import type { SqlExecutor } from "../db/database.js";

/** What changed: the publisher reads the row's current state, so only the reference is kept. */
export type OutboxRef = `tenant:${string}` | `key:${string}`;

export interface OutboxRow {
  seq: number;
  ref: OutboxRef;
  committedAt: number;
}

export const outbox = {
  /** Call inside the transaction that made the change, so the change and its notice commit together. */
  async add(sql: SqlExecutor, ...refs: OutboxRef[]): Promise<void> {
    for (const ref of refs) await sql.query("INSERT INTO identity_outbox (ref) VALUES ($1)", [ref]);
  },

  async next(sql: SqlExecutor, limit: number): Promise<OutboxRow[]> {
    const rows = await sql.query<{ seq: number; ref: OutboxRef; committed_at: Date }>(
      "SELECT seq, ref, committed_at FROM identity_outbox ORDER BY seq LIMIT $1",
      [limit],
    );
    return rows.map((r) => ({ seq: r.seq, ref: r.ref, committedAt: r.committed_at.getTime() }));
  },

  /** By explicit sequence numbers: a lower one committed late must not be deleted unpublished. */
  async remove(sql: SqlExecutor, seqs: number[]): Promise<void> {
    if (seqs.length > 0) await sql.query("DELETE FROM identity_outbox WHERE seq = ANY($1::bigint[])", [seqs]);
  },

  async backlog(sql: SqlExecutor): Promise<number> {
    const [row] = await sql.query<{ n: number }>("SELECT count(*) AS n FROM identity_outbox");
    return row?.n ?? 0;
  },
};
