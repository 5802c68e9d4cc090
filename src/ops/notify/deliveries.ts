import type { Database } from "../../db/database.js";
import { sortableId } from "../../identity/ids.js";
import type { NotificationType } from "./payload.js";

/** `retrying`: this attempt failed and another follows; `failed`: the last attempt failed. */
export type DeliveryStatus = "delivered" | "retrying" | "failed";

/** One attempt to deliver one notification to one channel. */
export interface Delivery {
  id: string;
  at: string;
  channel: string;
  /** Null for a test notification. */
  alertId: string | null;
  event: NotificationType;
  status: DeliveryStatus;
  /** 1 for the first attempt. */
  attempt: number;
  responseStatus: number | null;
  error: string | null;
}

interface DeliveryRow {
  id: string;
  at: Date;
  channel: string;
  alert_id: string | null;
  event: NotificationType;
  status: DeliveryStatus;
  attempts: number;
  response_status: number | null;
  error: string | null;
}

/** The log keeps attempts this long, and at most this many (the oldest go first): ~200 bytes a row. */
const RETENTION_DAYS = 30;
const MAX_ROWS = 10_000;
const TRIM_EVERY_WRITES = 100;
/** An error text is cut here: a receiver's HTML error page is not worth keeping. */
const MAX_ERROR_CHARS = 300;

/** The delivery log (`notification_deliveries`): every attempt, for `GET /admin/v1/notification-deliveries`. */
export class DeliveryLog {
  #writes = 0;

  constructor(private readonly db: Database) {}

  async record(entry: Omit<Delivery, "id" | "at">): Promise<void> {
    await this.db.query(
      `INSERT INTO notification_deliveries (id, channel, alert_id, event, status, attempts, response_status, error)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        `dlv_${sortableId()}`,
        entry.channel,
        entry.alertId,
        entry.event,
        entry.status,
        entry.attempt,
        entry.responseStatus,
        entry.error?.slice(0, MAX_ERROR_CHARS) ?? null,
      ],
    );
    if (++this.#writes % TRIM_EVERY_WRITES === 0) await this.#trim();
  }

  async list(q: { limit: number; channel?: string; alert?: string; before?: string }): Promise<Delivery[]> {
    const rows = await this.db.query<DeliveryRow>(
      `SELECT * FROM notification_deliveries
       WHERE ($1::text IS NULL OR channel = $1) AND ($2::text IS NULL OR alert_id = $2) AND ($3::text IS NULL OR id < $3)
       ORDER BY id DESC LIMIT $4`,
      [q.channel ?? null, q.alert ?? null, q.before ?? null, q.limit],
    );
    return rows.map((r) => ({
      id: r.id,
      at: r.at.toISOString(),
      channel: r.channel,
      alertId: r.alert_id,
      event: r.event,
      status: r.status,
      attempt: r.attempts,
      responseStatus: r.response_status,
      error: r.error,
    }));
  }

  async #trim(): Promise<void> {
    await this.db.query(
      `DELETE FROM notification_deliveries WHERE at < now() - interval '${RETENTION_DAYS} days'`,
    );
    await this.db.query(
      `DELETE FROM notification_deliveries WHERE id IN (SELECT id FROM notification_deliveries ORDER BY id DESC OFFSET ${MAX_ROWS})`,
    );
  }
}
