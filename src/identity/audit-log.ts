import type { SqlExecutor } from "../db/database.js";
import { newId } from "./ids.js";
import type { Actor } from "./model.js";

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  sourceIp: string | null;
  requestId: string | null;
  action: string;
  target: string | null;
  tenantId: string | null;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  tenantId?: string | undefined;
  actor?: string | undefined;
  action?: string | undefined;
  since?: Date | undefined;
  /** Keyset pagination, newest first: entries older than this id. */
  before?: string | undefined;
  limit: number;
}

interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  source_ip: string | null;
  request_id: string | null;
  action: string;
  target: string | null;
  tenant_id: string | null;
  details: Record<string, unknown>;
}

/** The audit trail of admin actions: written in the same transaction as the change it describes. */
export const auditLog = {
  async record(
    sql: SqlExecutor,
    actor: Actor,
    entry: { action: string; target: string | null; tenantId: string | null; details?: object },
  ): Promise<void> {
    await sql.query(
      `INSERT INTO audit_log (id, actor, source_ip, request_id, action, target, tenant_id, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
      [
        newId("aud"),
        actor.id,
        actor.ip,
        actor.requestId,
        entry.action,
        entry.target,
        entry.tenantId,
        JSON.stringify(entry.details ?? {}),
      ],
    );
  },

  async list(sql: SqlExecutor, q: AuditQuery): Promise<AuditEntry[]> {
    const rows = await sql.query<AuditRow>(
      `SELECT id, at, actor, source_ip, request_id, action, target, tenant_id, details FROM audit_log
       WHERE ($1::text IS NULL OR tenant_id = $1)
         AND ($2::text IS NULL OR actor = $2)
         AND ($3::text IS NULL OR action = $3 OR action LIKE $3 || '.%')
         AND ($4::timestamptz IS NULL OR at >= $4)
         AND ($5::text IS NULL OR id < $5)
       ORDER BY id DESC LIMIT $6`,
      [q.tenantId ?? null, q.actor ?? null, q.action ?? null, q.since ?? null, q.before ?? null, q.limit],
    );
    return rows.map((r) => ({
      id: r.id,
      at: r.at.toISOString(),
      actor: r.actor,
      sourceIp: r.source_ip,
      requestId: r.request_id,
      action: r.action,
      target: r.target,
      tenantId: r.tenant_id,
      details: r.details,
    }));
  },
};
