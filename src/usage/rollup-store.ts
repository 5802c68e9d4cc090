import type { Database, SqlExecutor } from "../db/database.js";
import { addCounters, type UsageBatch, type UsageGroup } from "./model.js";

export type Granularity = "hour" | "day";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The UTC start of the hour or day holding `ms`. */
export function periodStart(ms: number, granularity: Granularity): number {
  const size = granularity === "hour" ? HOUR_MS : DAY_MS;
  return Math.floor(ms / size) * size;
}

export interface ApplyResult {
  /** False when the batch had been claimed before: nothing was added. */
  claimed: boolean;
  /** Whether its raw records are already in the archive. */
  archived: boolean;
}

/**
 * The aggregator's writes. A batch's claim and its increments share one
 * transaction, so a batch delivered twice (even hours later, from a replayed
 * spool) counts once, and a crash leaves either both or neither.
 */
export const rollupStore = {
  async apply(db: Database, batch: UsageBatch): Promise<ApplyResult> {
    return db.transaction(async (tx) => {
      const claimed = await tx.query(
        `INSERT INTO usage_batches (id, node, sealed_at, records) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [batch.id, batch.node, new Date(batch.sealedAt), batch.records.length],
      );
      if (claimed.length === 0) {
        const [row] = await tx.query<{ archived: boolean }>(
          "SELECT archived_at IS NOT NULL AS archived FROM usage_batches WHERE id = $1",
          [batch.id],
        );
        return { claimed: false, archived: row?.archived ?? false };
      }
      for (const granularity of ["hour", "day"] as const) {
        for (const group of mergeByPeriod(batch.groups, granularity)) await addGroup(tx, granularity, group);
      }
      return { claimed: true, archived: false };
    });
  },

  async markArchived(db: Database, batchId: string): Promise<void> {
    await db.query("UPDATE usage_batches SET archived_at = clock_timestamp() WHERE id = $1", [batchId]);
  },

  /** Which of these batches are fully done: counted and archived. The shipper deletes spool segments on this answer only. */
  async committed(db: Database, batchIds: readonly string[]): Promise<Set<string>> {
    if (batchIds.length === 0) return new Set();
    const rows = await db.query<{ id: string }>(
      "SELECT id FROM usage_batches WHERE id = ANY($1::text[]) AND archived_at IS NOT NULL",
      [batchIds],
    );
    return new Set(rows.map((r) => r.id));
  },
};

/** Minute groups of one batch summed per period, so each rollup row is written once per batch. */
function mergeByPeriod(groups: readonly UsageGroup[], granularity: Granularity): UsageGroup[] {
  const merged = new Map<string, UsageGroup>();
  for (const g of groups) {
    const start = periodStart(g.minute, granularity);
    const key = `${g.tenant}\u0000${start}\u0000${g.op}\u0000${g.outcome}`;
    const into = merged.get(key);
    if (!into) {
      merged.set(key, { ...g, minute: start });
      continue;
    }
    addCounters(into, g);
  }
  return [...merged.values()];
}

async function addGroup(tx: SqlExecutor, granularity: Granularity, g: UsageGroup): Promise<void> {
  await tx.query(
    `INSERT INTO usage_rollups AS r (granularity, tenant_id, period_start, operation, outcome,
       requests, bytes_in, bytes_out, pixels_in, pixels_out, cpu_ms, process_ms, queue_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (granularity, tenant_id, period_start, operation, outcome) DO UPDATE SET
       requests = r.requests + EXCLUDED.requests,
       bytes_in = r.bytes_in + EXCLUDED.bytes_in,
       bytes_out = r.bytes_out + EXCLUDED.bytes_out,
       pixels_in = r.pixels_in + EXCLUDED.pixels_in,
       pixels_out = r.pixels_out + EXCLUDED.pixels_out,
       cpu_ms = r.cpu_ms + EXCLUDED.cpu_ms,
       process_ms = r.process_ms + EXCLUDED.process_ms,
       queue_ms = r.queue_ms + EXCLUDED.queue_ms`,
    [
      granularity,
      g.tenant,
      new Date(g.minute),
      g.op,
      g.outcome,
      g.requests,
      g.bytesIn,
      g.bytesOut,
      g.pixelsIn,
      g.pixelsOut,
      g.cpuMs,
      g.processMs,
      g.queueMs,
    ],
  );
}
