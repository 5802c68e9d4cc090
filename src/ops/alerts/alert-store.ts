import type { Database } from "../../db/database.js";
import { ProblemError } from "../../errors/problem.js";
import { auditLog } from "../../identity/audit-log.js";
import { sortableId } from "../../identity/ids.js";
import type { Actor } from "../../identity/model.js";
import {
  type Alert,
  type AlertState,
  alertKey,
  type Figures,
  type Finding,
  type Severity,
  subjectOfKey,
} from "./model.js";

interface AlertRow {
  id: string;
  key: string;
  rule: string;
  severity: Severity;
  state: AlertState;
  summary: string;
  runbook: string;
  figures: Figures;
  started_at: Date;
  updated_at: Date;
  resolved_at: Date | null;
  acked_at: Date | null;
  acked_by: string | null;
}

export interface AlertQuery {
  state?: AlertState | undefined;
  /** Keyset pagination, newest first: alerts older than this id. */
  before?: string | undefined;
  limit: number;
}

/** Resolved episodes kept at most this long; firing ones are never trimmed. */
const RESOLVED_RETENTION_DAYS = 180;

/**
 * The `alerts` table: one row per episode. The partial unique index
 * `alerts_one_open_per_key` lets at most one row per key be firing, so two
 * evaluators racing (a lease hand-over mid-cycle) cannot open it twice.
 */
export class AlertStore {
  constructor(private readonly db: Database) {}

  async firing(): Promise<Alert[]> {
    const rows = await this.db.query<AlertRow>("SELECT * FROM alerts WHERE state = 'firing' ORDER BY id");
    return rows.map(toAlert);
  }

  /** Opens an episode; null when one is already firing for this key (another evaluator was first). */
  async open(finding: Finding, now: number): Promise<Alert | null> {
    const at = new Date(now);
    const [row] = await this.db.query<AlertRow>(
      `INSERT INTO alerts (id, key, rule, severity, state, summary, runbook, figures, started_at, updated_at)
       VALUES ($1, $2, $3, $4, 'firing', $5, $6, $7::jsonb, $8, $8)
       ON CONFLICT (key) WHERE state = 'firing' DO NOTHING
       RETURNING *`,
      [
        `alr_${sortableId(now)}`,
        alertKey(finding),
        finding.rule,
        finding.severity,
        finding.summary,
        finding.runbook,
        JSON.stringify(finding.figures),
        at,
      ],
    );
    return row ? toAlert(row) : null;
  }

  /** Still true: the latest figures (and severity, which a rule may raise) replace the old ones. */
  async refresh(id: string, finding: Finding, now: number): Promise<void> {
    await this.db.query(
      `UPDATE alerts SET severity = $2, summary = $3, runbook = $4, figures = $5::jsonb, updated_at = $6
       WHERE id = $1 AND state = 'firing'`,
      [
        id,
        finding.severity,
        finding.summary,
        finding.runbook,
        JSON.stringify(finding.figures),
        new Date(now),
      ],
    );
  }

  /** Null when it was no longer firing (resolved by another evaluator). */
  async resolve(id: string, now: number): Promise<Alert | null> {
    const [row] = await this.db.query<AlertRow>(
      `UPDATE alerts SET state = 'resolved', resolved_at = $2, updated_at = $2
       WHERE id = $1 AND state = 'firing' RETURNING *`,
      [id, new Date(now)],
    );
    return row ? toAlert(row) : null;
  }

  async list(q: AlertQuery): Promise<Alert[]> {
    const rows = await this.db.query<AlertRow>(
      `SELECT * FROM alerts WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR id < $2)
       ORDER BY id DESC LIMIT $3`,
      [q.state ?? null, q.before ?? null, q.limit],
    );
    return rows.map(toAlert);
  }

  async get(id: string): Promise<Alert> {
    const [row] = await this.db.query<AlertRow>("SELECT * FROM alerts WHERE id = $1", [id]);
    if (!row) throw notFound(id);
    return toAlert(row);
  }

  /**
   * Someone is on it. Acknowledging changes nothing about notifications (an
   * alert notifies when it fires and when it resolves, never in between); it
   * tells the rest of the team. Acknowledging twice keeps the first.
   */
  async ack(id: string, actor: Actor): Promise<Alert> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query<AlertRow>(
        `UPDATE alerts SET acked_at = coalesce(acked_at, clock_timestamp()), acked_by = coalesce(acked_by, $2)
         WHERE id = $1 RETURNING *`,
        [id, actor.id],
      );
      if (!row) throw notFound(id);
      await auditLog.record(tx, actor, {
        action: "alert.ack",
        target: id,
        tenantId: null,
        details: { rule: row.rule, key: row.key },
      });
      return toAlert(row);
    });
  }

  async trim(): Promise<void> {
    await this.db.query(
      `DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < now() - interval '${RESOLVED_RETENTION_DAYS} days'`,
    );
  }
}

function notFound(id: string): ProblemError {
  return new ProblemError("not-found", `no alert ${id}; \`imgfleet alerts list\` shows the alerts`);
}

function toAlert(r: AlertRow): Alert {
  return {
    id: r.id,
    key: r.key,
    rule: r.rule,
    subject: subjectOfKey(r.key),
    severity: r.severity,
    state: r.state,
    summary: r.summary,
    runbook: r.runbook,
    figures: r.figures,
    startedAt: r.started_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    resolvedAt: r.resolved_at?.toISOString() ?? null,
    ackedAt: r.acked_at?.toISOString() ?? null,
    ackedBy: r.acked_by,
  };
}
