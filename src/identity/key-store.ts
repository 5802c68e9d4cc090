import type { SqlExecutor } from "../db/database.js";
import type { ApiKey, KeyRecord, Scope } from "./model.js";

interface KeyRow {
  id: string;
  tenant_id: string | null;
  name: string;
  secret_sha256: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  replaced_by: string | null;
  created_by: string;
}

const COLUMNS =
  "id, tenant_id, name, secret_sha256, scopes, created_at, expires_at, revoked_at, replaced_by, created_by";

/** Revoked keys stay in the data plane this long so their callers hear "revoked", not "unknown". */
const REVOKED_KEPT_DAYS = 30;

export interface NewKeyRow {
  id: string;
  tenantId: string | null;
  name: string;
  secretSha256: string;
  scopes: Scope[];
  expiresAt: Date | null;
  createdBy: string;
}

/** SQL for the api_keys table (tenant keys and admin keys, told apart by tenant_id). */
export const keyStore = {
  async insert(sql: SqlExecutor, k: NewKeyRow): Promise<ApiKey> {
    const [row] = await sql.query<KeyRow>(
      `INSERT INTO api_keys (id, tenant_id, name, secret_sha256, scopes, expires_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [k.id, k.tenantId, k.name, k.secretSha256, k.scopes, k.expiresAt, k.createdBy],
    );
    return toKey(row as KeyRow);
  },

  /** A key of one tenant (null: an admin key); another tenant's key is "not found". */
  async get(sql: SqlExecutor, tenantId: string | null, id: string): Promise<ApiKey | null> {
    const [row] = await sql.query<KeyRow>(
      `SELECT ${COLUMNS} FROM api_keys WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2`,
      [id, tenantId],
    );
    return row ? toKey(row) : null;
  },

  async list(sql: SqlExecutor, tenantId: string | null, includeRevoked: boolean): Promise<ApiKey[]> {
    const rows = await sql.query<KeyRow>(
      `SELECT ${COLUMNS} FROM api_keys
       WHERE tenant_id IS NOT DISTINCT FROM $1 AND ($2::boolean OR revoked_at IS NULL)
       ORDER BY id`,
      [tenantId, includeRevoked],
    );
    return rows.map(toKey);
  },

  async revoke(sql: SqlExecutor, id: string): Promise<ApiKey | null> {
    const [row] = await sql.query<KeyRow>(
      `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
      [id],
    );
    return row ? toKey(row) : null;
  },

  /** Ids of the live keys of a tenant: revoked together when the tenant is deleted. */
  async revokeAllOf(sql: SqlExecutor, tenantId: string): Promise<string[]> {
    const rows = await sql.query<{ id: string }>(
      "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL RETURNING id",
      [tenantId],
    );
    return rows.map((r) => r.id);
  },

  /** The old key stays valid until `until` (never later than its own expiry) and points at its successor. */
  async retire(sql: SqlExecutor, id: string, until: Date, replacedBy: string): Promise<ApiKey | null> {
    const [row] = await sql.query<KeyRow>(
      `UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, $2), $2), replaced_by = $3
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, until, replacedBy],
    );
    return row ? toKey(row) : null;
  },

  async record(sql: SqlExecutor, id: string): Promise<KeyRecord | null> {
    const [row] = await sql.query<KeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
    return row ? toRecord(row) : null;
  },

  /** Every key the data plane needs: live ones and recently revoked ones. */
  async records(sql: SqlExecutor): Promise<KeyRecord[]> {
    const rows = await sql.query<KeyRow>(
      `SELECT ${COLUMNS} FROM api_keys
       WHERE revoked_at IS NULL OR revoked_at > now() - make_interval(days => $1)`,
      [REVOKED_KEPT_DAYS],
    );
    return rows.map(toRecord);
  },

  async countAdminKeys(sql: SqlExecutor): Promise<number> {
    const [row] = await sql.query<{ n: number }>(
      `SELECT count(*) AS n FROM api_keys
       WHERE tenant_id IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    );
    return row?.n ?? 0;
  },
};

function toKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    scopes: row.scopes as Scope[],
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
    replacedBy: row.replaced_by,
    createdBy: row.created_by,
  };
}

function toRecord(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    secretSha256: row.secret_sha256,
    scopes: row.scopes as Scope[],
    expiresAt: row.expires_at?.getTime() ?? null,
    revokedAt: row.revoked_at?.getTime() ?? null,
  };
}
