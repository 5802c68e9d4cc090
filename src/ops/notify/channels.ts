import type { Config } from "../../config/schema.js";
import type { Database } from "../../db/database.js";
import { ProblemError } from "../../errors/problem.js";
import { auditLog } from "../../identity/audit-log.js";
import { sortableId } from "../../identity/ids.js";
import type { Actor } from "../../identity/model.js";

export type ChannelKind = "webhook" | "slack";

/** Where notifications go. Channels from config are read-only; the admin API adds and removes the others. */
export interface Channel {
  id: string;
  name: string;
  kind: ChannelKind;
  url: string;
  /** Signs each delivery; never shown by the API once set. */
  secret: string | null;
  source: "config" | "api";
  createdAt: string | null;
}

/**
 * A channel as the admin API shows it: whether it signs, not with what, and
 * only the origin of its URL (a Slack webhook URL is itself a credential).
 */
export type ChannelView = Omit<Channel, "secret"> & { signed: boolean };

export interface NewChannel {
  name: string;
  kind: ChannelKind;
  url: string;
  secret?: string | undefined;
}

interface ChannelRow {
  id: string;
  name: string;
  kind: ChannelKind;
  url: string;
  secret: string | null;
  created_at: Date;
}

export function channelView({ secret, ...rest }: Channel): ChannelView {
  return { ...rest, url: redactedUrl(rest.url), signed: secret !== null };
}

/**
 * The notification channels: `ops.webhooks` from config (ids `cfg_<name>`)
 * plus the rows of `notification_channels`. Names are unique across both,
 * ignoring case, so a delivery log line names one channel.
 *
 * Secrets are stored as given (the HMAC needs them), like the database's
 * other credentials: protect the database, and rotate a secret by adding a
 * new channel and removing the old one.
 */
export class ChannelStore {
  readonly #configured: Channel[];

  constructor(
    private readonly db: Database,
    configured: Config["ops"]["webhooks"],
  ) {
    const ids = new Set<string>();
    this.#configured = configured.map((w) => {
      let id = `cfg_${slug(w.name)}`;
      for (let n = 2; ids.has(id); n++) id = `cfg_${slug(w.name)}-${n}`;
      ids.add(id);
      return {
        id,
        name: w.name,
        kind: w.kind,
        url: w.url,
        secret: w.secret ?? null,
        source: "config",
        createdAt: null,
      };
    });
  }

  async all(): Promise<Channel[]> {
    const rows = await this.db.query<ChannelRow>("SELECT * FROM notification_channels ORDER BY id");
    return [...this.#configured, ...rows.map(toChannel)];
  }

  /** By id, or by name (case-insensitive) as the CLI's `--channel` allows. */
  async find(idOrName: string): Promise<Channel> {
    const wanted = idOrName.toLowerCase();
    const found = (await this.all()).find((c) => c.id === idOrName || c.name.toLowerCase() === wanted);
    if (!found) {
      throw new ProblemError(
        "not-found",
        `no notification channel ${idOrName}; GET /admin/v1/notification-channels lists them`,
      );
    }
    return found;
  }

  async create(actor: Actor, input: NewChannel): Promise<Channel> {
    if (this.#configured.some((c) => c.name.toLowerCase() === input.name.toLowerCase())) {
      throw nameTaken(input.name, "in config (ops.webhooks)");
    }
    const id = `nch_${sortableId()}`;
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query<ChannelRow>(
        `INSERT INTO notification_channels (id, name, kind, url, secret) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING RETURNING *`,
        [id, input.name, input.kind, input.url, input.secret ?? null],
      );
      if (!row) throw nameTaken(input.name, "already");
      await auditLog.record(tx, actor, {
        action: "notification-channel.create",
        target: id,
        tenantId: null,
        details: { name: input.name, kind: input.kind, url: redactedUrl(input.url), signed: !!input.secret },
      });
      return toChannel(row);
    });
  }

  async remove(actor: Actor, id: string): Promise<Channel> {
    if (this.#configured.some((c) => c.id === id)) {
      throw new ProblemError(
        "conflict",
        `channel ${id} is set in config (ops.webhooks); remove it there and restart the node`,
      );
    }
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query<ChannelRow>(
        "DELETE FROM notification_channels WHERE id = $1 RETURNING *",
        [id],
      );
      if (!row) throw new ProblemError("not-found", `no notification channel ${id}`);
      await auditLog.record(tx, actor, {
        action: "notification-channel.delete",
        target: id,
        tenantId: null,
        details: { name: row.name, kind: row.kind },
      });
      return toChannel(row);
    });
  }
}

function nameTaken(name: string, where: string): ProblemError {
  return new ProblemError(
    "conflict",
    `a notification channel named '${name}' exists ${where}; choose another name`,
  );
}

function toChannel(r: ChannelRow): Channel {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    url: r.url,
    secret: r.secret,
    source: "api",
    createdAt: r.created_at.toISOString(),
  };
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "") || "channel"
  );
}

/** Webhook URLs often carry their own token in the path (Slack's do): the audit trail keeps only the origin. */
export function redactedUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return "(invalid URL)";
  }
}
