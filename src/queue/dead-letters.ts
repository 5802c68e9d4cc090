import type { Database } from "../db/database.js";
import type { JobMessage } from "./job-queue.js";

/** How long a dead letter is kept for operators to look at. */
const RETENTION_DAYS = 30;

export type DeadLetterReason = "worker-crashed" | "data-path";

export interface DeadLetter {
  jobId: string;
  tenant: string | null;
  workerNode: string;
  stagedOn: string;
  reason: DeadLetterReason;
  detail: string;
  attempts: number;
  at: string;
}

/**
 * Jobs given up for good, for the console and `GET /admin/v1/dead-letters`:
 * every delivery crashed its worker, or its bytes could not cross between
 * nodes. Bounded by age: entries older than 30 days go on the next insert.
 */
export const deadLetters = {
  async record(
    db: Database,
    entry: {
      job: JobMessage;
      workerNode: string;
      reason: DeadLetterReason;
      detail: string;
      attempts: number;
    },
  ): Promise<void> {
    const { job } = entry;
    await db.query(
      `INSERT INTO dead_letters (job_id, tenant_id, worker_node, staged_on, reason, detail, attempts, spec)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) ON CONFLICT (job_id) DO NOTHING`,
      [
        job.id,
        job.tenant,
        entry.workerNode,
        job.input.node,
        entry.reason,
        entry.detail.slice(0, 2000),
        entry.attempts,
        JSON.stringify(job.spec),
      ],
    );
    await db.query(`DELETE FROM dead_letters WHERE at < now() - interval '${RETENTION_DAYS} days'`);
  },

  async list(db: Database, limit: number): Promise<DeadLetter[]> {
    const rows = await db.query<{
      job_id: string;
      tenant_id: string | null;
      worker_node: string;
      staged_on: string;
      reason: DeadLetterReason;
      detail: string;
      attempts: number;
      at: Date;
    }>("SELECT * FROM dead_letters ORDER BY at DESC LIMIT $1", [limit]);
    return rows.map((r) => ({
      jobId: r.job_id,
      tenant: r.tenant_id,
      workerNode: r.worker_node,
      stagedOn: r.staged_on,
      reason: r.reason,
      detail: r.detail,
      attempts: r.attempts,
      at: r.at.toISOString(),
    }));
  },
};
