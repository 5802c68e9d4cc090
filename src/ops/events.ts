import type { Database } from "../db/database.js";
import { sortableId } from "../identity/ids.js";

/** What kinds of things the system records about itself (informational; never notifies). */
export type OpsEventKind =
  | "lease.acquired"
  | "lease.lost"
  | "node.joined"
  | "node.left"
  | "sweep"
  | "job.dropped"
  | "alert.fired"
  | "alert.resolved"
  | "alert.acked"
  | "flag.changed"
  | "notification.failed";

export interface OpsEvent {
  id: string;
  at: string;
  kind: OpsEventKind;
  node: string | null;
  message: string;
  details: Record<string, unknown>;
}

/** Events kept at most this long, and at most this many (the oldest go first). */
const RETENTION_DAYS = 90;
const MAX_EVENTS = 100_000;

/**
 * The event log: what the system did by itself (a sweep, a lease taken over,
 * a job dropped past its deadline) or noticed, in plain words, for the
 * console and `imgfleet events`. Kept apart from alerts: nothing here pages
 * anyone. Writing never fails the caller: an event that cannot be stored is
 * only logged.
 */
export class EventLog {
  #writes = 0;

  constructor(
    private readonly db: Database,
    private readonly node: string,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  async record(kind: OpsEventKind, message: string, details: Record<string, unknown> = {}): Promise<void> {
    try {
      await this.db.query(
        "INSERT INTO ops_events (id, kind, node, message, details) VALUES ($1, $2, $3, $4, $5::jsonb)",
        [`evt_${sortableId()}`, kind, this.node, message, JSON.stringify(details)],
      );
      if (++this.#writes % 100 === 0) await this.#trim();
    } catch (error) {
      this.onError(error);
    }
  }

  async list(query: { limit: number; kind?: string; before?: string }): Promise<OpsEvent[]> {
    const rows = await this.db.query<{
      id: string;
      at: Date;
      kind: OpsEventKind;
      node: string | null;
      message: string;
      details: Record<string, unknown>;
    }>(
      `SELECT * FROM ops_events
       WHERE ($1::text IS NULL OR kind = $1 OR kind LIKE $1 || '.%') AND ($2::text IS NULL OR id < $2)
       ORDER BY id DESC LIMIT $3`,
      [query.kind ?? null, query.before ?? null, query.limit],
    );
    return rows.map((r) => ({ ...r, at: r.at.toISOString() }));
  }

  async #trim(): Promise<void> {
    await this.db.query(`DELETE FROM ops_events WHERE at < now() - interval '${RETENTION_DAYS} days'`);
    await this.db.query(
      `DELETE FROM ops_events WHERE id IN (SELECT id FROM ops_events ORDER BY id DESC OFFSET ${MAX_EVENTS})`,
    );
  }
}
