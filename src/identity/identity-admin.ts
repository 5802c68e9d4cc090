import type { Database, SqlExecutor } from "../db/database.js";
import { ProblemError } from "../errors/problem.js";
import { generateApiKey } from "./api-key.js";
import { type AuditEntry, type AuditQuery, auditLog } from "./audit-log.js";
import { newId } from "./ids.js";
import { keyStore } from "./key-store.js";
import {
  type Actor,
  ADMIN_SCOPE,
  type ApiKey,
  type Tenant,
  type TenantLimits,
  type TenantScope,
} from "./model.js";
import { type OutboxRef, outbox } from "./outbox.js";
import { type TenantQuery, tenantStore } from "./tenant-store.js";

export interface NewTenant extends Partial<TenantLimits> {
  name: string;
}

export type TenantPatch = Partial<TenantLimits & { name: string; status: "active" | "suspended" }>;

export interface NewKey {
  name: string;
  scopes: TenantScope[];
  expiresAt: Date | null;
}

/** A key as created: the token (`imf_…`) is in this answer and nowhere else, ever. */
export interface IssuedKey {
  key: ApiKey;
  secret: string;
}

export interface IdentityAdminDeps {
  db: Database;
  defaults: TenantLimits;
  /**
   * Publishes after a commit; awaited, so that on this node a revocation is
   * in force before the admin call answers. Never rejects.
   */
  onCommit: (refs: readonly OutboxRef[]) => Promise<void>;
}

/**
 * The management plane: every change to tenants and keys, each in one
 * transaction with its outbox notice and its audit entry. Lookups of a
 * tenant's keys are scoped by tenant, so another tenant's id is "not found".
 */
export class IdentityAdmin {
  constructor(private readonly deps: IdentityAdminDeps) {}

  createTenant(actor: Actor, input: NewTenant): Promise<Tenant> {
    return this.#write(actor, async (tx) => {
      const tenant = await tenantStore
        .insert(tx, { ...this.deps.defaults, ...input, id: newId("ten") })
        .catch((error: unknown) => rethrowNameTaken(error, input.name));
      return {
        result: tenant,
        refs: [`tenant:${tenant.id}`],
        audit: tenantAudit("tenant.create", tenant, input),
      };
    });
  }

  listTenants(query: TenantQuery): Promise<Tenant[]> {
    return tenantStore.list(this.deps.db, query);
  }

  async getTenant(id: string): Promise<Tenant> {
    return (await tenantStore.get(this.deps.db, id)) ?? tenantNotFound(id);
  }

  updateTenant(actor: Actor, id: string, patch: TenantPatch): Promise<Tenant> {
    return this.#write(actor, async (tx) => {
      const before = await liveTenant(tx, id);
      const tenant =
        (await tenantStore
          .update(tx, id, patch)
          .catch((error: unknown) => rethrowNameTaken(error, patch.name ?? ""))) ?? tenantNotFound(id);
      return {
        result: tenant,
        refs: [`tenant:${id}`],
        audit: tenantAudit(updateAction(before, tenant), tenant, patch),
      };
    });
  }

  /** Soft delete: the row stays for the audit trail and usage history; every key is revoked. */
  deleteTenant(actor: Actor, id: string): Promise<Tenant> {
    return this.#write(actor, async (tx) => {
      await liveTenant(tx, id);
      const tenant = (await tenantStore.update(tx, id, { status: "deleted" })) ?? tenantNotFound(id);
      const revoked = await keyStore.revokeAllOf(tx, id);
      return {
        result: tenant,
        refs: [`tenant:${id}`, ...revoked.map((k): OutboxRef => `key:${k}`)],
        audit: tenantAudit("tenant.delete", tenant, { revokedKeys: revoked }),
      };
    });
  }

  createKey(actor: Actor, tenantId: string, input: NewKey): Promise<IssuedKey> {
    return this.#write(actor, async (tx) => {
      await liveTenant(tx, tenantId);
      const issued = await issueKey(tx, actor, tenantId, input.name, input.scopes, input.expiresAt);
      return { result: issued, refs: [`key:${issued.key.id}`], audit: keyAudit("key.create", issued.key) };
    });
  }

  async listKeys(tenantId: string, includeRevoked: boolean): Promise<ApiKey[]> {
    await this.getTenant(tenantId);
    return keyStore.list(this.deps.db, tenantId, includeRevoked);
  }

  async getKey(tenantId: string, keyId: string): Promise<ApiKey> {
    return (await keyStore.get(this.deps.db, tenantId, keyId)) ?? keyNotFound(keyId);
  }

  revokeKey(actor: Actor, tenantId: string | null, keyId: string): Promise<ApiKey> {
    return this.#write(actor, async (tx) => {
      // Serialises admin-key revocations, so two at once cannot both pass the last-key check.
      if (tenantId === null) await tx.query("SELECT pg_advisory_xact_lock($1)", [ADMIN_KEYS_LOCK]);
      const key = (await keyStore.get(tx, tenantId, keyId)) ?? keyNotFound(keyId);
      // Revoking twice changes nothing and is not audited twice.
      if (key.revokedAt !== null) return { result: key, refs: [], audit: null };
      if (tenantId === null && (await keyStore.countAdminKeys(tx)) <= 1) {
        throw new ProblemError(
          "conflict",
          "this is the last admin key; create another admin key before revoking it, or nobody could administer the service",
        );
      }
      const revoked = (await keyStore.revoke(tx, keyId)) ?? keyNotFound(keyId);
      const action = tenantId === null ? "admin-key.revoke" : "key.revoke";
      return { result: revoked, refs: [`key:${keyId}`], audit: keyAudit(action, revoked) };
    });
  }

  /** A new key with the same tenant, name and scopes; the old one keeps working for `graceSeconds`. */
  rotateKey(
    actor: Actor,
    tenantId: string,
    keyId: string,
    graceSeconds: number,
  ): Promise<IssuedKey & { previous: ApiKey }> {
    return this.#write(actor, async (tx) => {
      await liveTenant(tx, tenantId);
      const old = (await keyStore.get(tx, tenantId, keyId)) ?? keyNotFound(keyId);
      if (old.revokedAt !== null || old.replacedBy !== null) {
        throw new ProblemError(
          "conflict",
          old.revokedAt !== null
            ? `key ${keyId} is revoked; create a new key instead`
            : `key ${keyId} was already rotated to ${old.replacedBy}; rotate that one`,
        );
      }
      const expiresAt = old.expiresAt === null ? null : new Date(old.expiresAt);
      const issued = await issueKey(tx, actor, tenantId, old.name, old.scopes as TenantScope[], expiresAt);
      const until = new Date(Date.now() + graceSeconds * 1000);
      const previous = (await keyStore.retire(tx, keyId, until, issued.key.id)) ?? keyNotFound(keyId);
      return {
        result: { ...issued, previous },
        refs: [`key:${keyId}`, `key:${issued.key.id}`],
        audit: { ...keyAudit("key.rotate", issued.key), details: { previous: keyId, graceSeconds } },
      };
    });
  }

  createAdminKey(actor: Actor, name: string, expiresAt: Date | null): Promise<IssuedKey> {
    return this.#write(actor, async (tx) => {
      const issued = await issueKey(tx, actor, null, name, [ADMIN_SCOPE], expiresAt);
      return {
        result: issued,
        refs: [`key:${issued.key.id}`],
        audit: keyAudit("admin-key.create", issued.key),
      };
    });
  }

  listAdminKeys(includeRevoked: boolean): Promise<ApiKey[]> {
    return keyStore.list(this.deps.db, null, includeRevoked);
  }

  listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return auditLog.list(this.deps.db, query);
  }

  /**
   * The first admin key, made only when the database has never had one.
   * Serialised by an advisory lock so two nodes starting at once make one.
   */
  bootstrapAdminKey(): Promise<IssuedKey | null> {
    const actor: Actor = { id: "bootstrap", ip: null, requestId: null };
    return this.#write(actor, async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [ADMIN_KEYS_LOCK]);
      const [row] = await tx.query<{ n: number }>(
        "SELECT count(*) AS n FROM api_keys WHERE tenant_id IS NULL",
      );
      if ((row?.n ?? 0) > 0) return { result: null, refs: [], audit: null };
      const issued = await issueKey(tx, actor, null, "bootstrap", [ADMIN_SCOPE], null);
      return {
        result: issued,
        refs: [`key:${issued.key.id}`],
        audit: keyAudit("admin-key.create", issued.key),
      };
    });
  }

  async #write<T>(
    actor: Actor,
    change: (tx: SqlExecutor) => Promise<{ result: T; refs: OutboxRef[]; audit: AuditDraft | null }>,
  ): Promise<T> {
    const { result, refs } = await this.deps.db.transaction(async (tx) => {
      const { result, refs, audit } = await change(tx);
      await outbox.add(tx, ...refs);
      if (audit) await auditLog.record(tx, actor, audit);
      return { result, refs };
    });
    await this.deps.onCommit(refs);
    return result;
  }
}

/** Any constant: admin-key creation at bootstrap and admin-key revocation take turns on it. */
const ADMIN_KEYS_LOCK = 7_316_503;

function updateAction(before: Tenant, after: Tenant): string {
  if (before.status === after.status) return "tenant.update";
  return after.status === "suspended" ? "tenant.suspend" : "tenant.resume";
}

interface AuditDraft {
  action: string;
  target: string;
  tenantId: string | null;
  details: object;
}

function tenantAudit(action: string, tenant: Tenant, details: object): AuditDraft {
  return { action, target: tenant.id, tenantId: tenant.id, details };
}

function keyAudit(action: string, key: ApiKey): AuditDraft {
  return {
    action,
    target: key.id,
    tenantId: key.tenantId,
    details: { name: key.name, scopes: key.scopes, expiresAt: key.expiresAt },
  };
}

async function issueKey(
  tx: SqlExecutor,
  actor: Actor,
  tenantId: string | null,
  name: string,
  scopes: ApiKey["scopes"],
  expiresAt: Date | null,
): Promise<IssuedKey> {
  const made = generateApiKey();
  const key = await keyStore.insert(tx, {
    id: made.id,
    tenantId,
    name,
    secretSha256: made.secretSha256,
    scopes,
    expiresAt,
    createdBy: actor.id,
  });
  return { key, secret: made.token };
}

async function liveTenant(tx: SqlExecutor, id: string): Promise<Tenant> {
  const tenant = await tenantStore.get(tx, id);
  if (!tenant || tenant.status === "deleted") return tenantNotFound(id);
  return tenant;
}

function tenantNotFound(id: string): never {
  throw new ProblemError("not-found", `no tenant ${id}`);
}

function keyNotFound(id: string): never {
  throw new ProblemError("not-found", `no API key ${id} here`);
}

function rethrowNameTaken(error: unknown, name: string): never {
  if ((error as { code?: string }).code === "23505") {
    throw new ProblemError("conflict", `a tenant named '${name}' already exists; choose another name`);
  }
  throw error;
}
