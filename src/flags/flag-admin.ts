import type { Database } from "../db/database.js";
import { ProblemError } from "../errors/problem.js";
import { auditLog } from "../identity/audit-log.js";
import type { Actor } from "../identity/model.js";
import type { EventLog } from "../ops/events.js";
import type { FlagRead, FlagStore } from "./flag-store.js";
import { type Flag, MAX_TENANT_OVERRIDES } from "./model.js";
import { builtInFlag, isKnownFlag, KNOWN_FLAGS } from "./registry.js";

/** A flag as the admin API shows it. */
export interface FlagView extends Flag {
  /** Whether this node's code reads the flag (a stored flag may belong to a newer or older version). */
  known: boolean;
  /** Whether settings are stored; false means the built-in default applies everywhere. */
  stored: boolean;
}

export interface FlagSettings {
  default?: boolean | undefined;
  percentage?: number | undefined;
  description?: string | undefined;
}

/** One change: the new settings (null: delete them), and how to describe it. */
interface Change {
  next: Flag | null;
  details: Record<string, unknown>;
  summary: string;
}

/** Compare-and-set rounds before giving up: only several admins changing one flag at once come near it. */
const MAX_WRITE_ATTEMPTS = 5;

class LostRace extends Error {}

/**
 * The management side of flags: every change is a compare-and-set write to
 * the flags bucket, made inside the database transaction that writes its
 * audit entry, so the audit trail has an entry exactly when the flag
 * changed. (If the commit itself fails after the write, the request fails,
 * the change stands, and a `flag.changed` event says its audit entry is
 * missing, where the database still takes it.) Each change is also a
 * `flag.changed` event; every node logs each change it applies.
 */
export class FlagAdmin {
  constructor(
    private readonly deps: {
      store: FlagStore;
      db: Database;
      events: EventLog;
      /** Throws not-found for a tenant id that does not exist. */
      checkTenant: (tenantId: string) => Promise<void>;
    },
  ) {}

  /** Every flag this node knows and every stored one, by name. */
  async list(): Promise<FlagView[]> {
    const stored = new Map((await this.deps.store.list()).map((f) => [f.name, f]));
    const names = new Set([...Object.keys(KNOWN_FLAGS), ...stored.keys()]);
    return [...names]
      .map((name) => {
        const flag = stored.get(name);
        return flag ? view(flag, true) : view(builtInFlag(name), false);
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<FlagView> {
    const read = await this.deps.store.read(name);
    if (!read.stored && !isKnownFlag(name)) throw unknownFlag(name);
    return view(read.flag, read.stored);
  }

  configure(actor: Actor, name: string, settings: FlagSettings): Promise<FlagView> {
    return this.#write(actor, name, "flag.set", null, ({ flag }) => {
      const next = { ...flag };
      const said: string[] = [];
      if (settings.default !== undefined) {
        next.default = settings.default;
        said.push(`default ${onOff(flag.default)} → ${onOff(settings.default)}`);
      }
      if (settings.percentage !== undefined) {
        next.percentage = settings.percentage;
        said.push(`rollout ${flag.percentage}% → ${settings.percentage}%`);
      }
      if (settings.description !== undefined) {
        next.description = settings.description;
        said.push("description changed");
      }
      return { next, details: { ...settings }, summary: said.join(", ") };
    });
  }

  async setTenant(actor: Actor, name: string, tenantId: string, enabled: boolean): Promise<FlagView> {
    await this.deps.checkTenant(tenantId);
    return this.#write(actor, name, "flag.tenant.set", tenantId, ({ flag }) => {
      if (!(tenantId in flag.tenants) && Object.keys(flag.tenants).length >= MAX_TENANT_OVERRIDES) {
        throw new ProblemError(
          "conflict",
          `flag ${name} already has ${MAX_TENANT_OVERRIDES} tenant overrides, the most one flag holds; roll it out by percentage instead, or remove overrides`,
        );
      }
      return {
        next: { ...flag, tenants: { ...flag.tenants, [tenantId]: enabled } },
        details: { enabled },
        summary: `${onOff(enabled)} for tenant ${tenantId}`,
      };
    });
  }

  unsetTenant(actor: Actor, name: string, tenantId: string): Promise<FlagView> {
    return this.#write(actor, name, "flag.tenant.unset", tenantId, ({ flag }) => {
      if (!(tenantId in flag.tenants)) {
        throw new ProblemError("not-found", `flag ${name} has no override for tenant ${tenantId}`);
      }
      const { [tenantId]: removed, ...tenants } = flag.tenants;
      return {
        next: { ...flag, tenants },
        details: { was: removed },
        summary: `override for tenant ${tenantId} removed (it was ${onOff(removed ?? false)})`,
      };
    });
  }

  /** Deletes the stored settings: the flag is back to its built-in default everywhere. */
  remove(actor: Actor, name: string): Promise<FlagView> {
    return this.#write(actor, name, "flag.delete", null, (read) => {
      if (!read.stored) {
        throw new ProblemError(
          "not-found",
          `flag ${name} has no stored settings${isKnownFlag(name) ? "; it is already at its built-in default" : ""}`,
        );
      }
      return {
        next: null,
        details: { was: { default: read.flag.default, percentage: read.flag.percentage } },
        summary: "settings removed, back to its built-in default",
      };
    });
  }

  async #write(
    actor: Actor,
    name: string,
    action: string,
    tenantId: string | null,
    change: (read: FlagRead) => Change,
  ): Promise<FlagView> {
    const { store, db, events } = this.deps;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const read = await store.read(name);
      const { next, details, summary } = change(read);
      const stamped = next && { ...next, updatedAt: new Date().toISOString(), updatedBy: actor.id };
      const event = { flag: name, action, ...(tenantId ? { tenant: tenantId } : {}), ...details };
      let written = false;
      try {
        await db.transaction(async (tx) => {
          // The audit entry first: a database that is down fails the request before the flag moves.
          await auditLog.record(tx, actor, { action, target: name, tenantId, details });
          if (stamped === null) await store.remove(name);
          else if (!(await store.write(stamped, read.revision))) throw new LostRace();
          written = true;
        });
      } catch (error) {
        if (error instanceof LostRace) continue;
        if (written) {
          // The flag moved but its audit entry did not commit: leave what trace we still can.
          await events.record(
            "flag.changed",
            `flag ${name}: ${summary} (by ${actor.id}; its audit entry could not be committed)`,
            event,
          );
        }
        throw error;
      }
      await events.record("flag.changed", `flag ${name}: ${summary} (by ${actor.id})`, event);
      return stamped ? view(stamped, true) : view(builtInFlag(name), false);
    }
    throw new ProblemError(
      "conflict",
      `flag ${name} kept changing under this request (others are changing it now); read it again and retry`,
    );
  }
}

function view(flag: Flag, stored: boolean): FlagView {
  return { ...flag, known: isKnownFlag(flag.name), stored };
}

function onOff(value: boolean): string {
  return value ? "on" : "off";
}

export function unknownFlag(name: string): ProblemError {
  return new ProblemError(
    "not-found",
    `no flag named ${name}: this node knows ${Object.keys(KNOWN_FLAGS).join(", ")}, and none is stored under that name`,
  );
}
