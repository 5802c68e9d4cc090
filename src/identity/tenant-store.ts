import type { SqlExecutor } from "../db/database.js";
import type { OutputFormat } from "../image/formats.js";
import type { Tenant, TenantLimits, TenantRecord, TenantStatus } from "./model.js";

interface TenantRow {
  id: string;
  name: string;
  status: TenantStatus;
  rate_per_second: number;
  burst: number;
  max_in_flight: number;
  max_input_bytes: number | null;
  output_formats: string[] | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

const COLUMNS =
  "id, name, status, rate_per_second, burst, max_in_flight, max_input_bytes, output_formats, created_at, updated_at, deleted_at";

export interface TenantQuery {
  /** Case-insensitive substring of the name, or an exact id. */
  search?: string | undefined;
  status?: TenantStatus | undefined;
  includeDeleted?: boolean;
  /** Keyset pagination: ids sort by creation time. */
  after?: string | undefined;
  limit: number;
}

/** SQL for the tenants table; every function takes the database or an open transaction. */
export const tenantStore = {
  async insert(sql: SqlExecutor, t: { id: string; name: string } & TenantLimits): Promise<Tenant> {
    const [row] = await sql.query<TenantRow>(
      `INSERT INTO tenants (id, name, status, rate_per_second, burst, max_in_flight, max_input_bytes, output_formats)
       VALUES ($1, $2, 'active', $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [t.id, t.name, t.ratePerSecond, t.burst, t.maxInFlight, t.maxInputBytes, t.outputFormats],
    );
    return toTenant(row as TenantRow);
  },

  async get(sql: SqlExecutor, id: string): Promise<Tenant | null> {
    const [row] = await sql.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE id = $1`, [id]);
    return row ? toTenant(row) : null;
  },

  async list(sql: SqlExecutor, q: TenantQuery): Promise<Tenant[]> {
    const rows = await sql.query<TenantRow>(
      `SELECT ${COLUMNS} FROM tenants
       WHERE ($1::text IS NULL OR id = $1 OR name ILIKE '%' || $6 || '%')
         AND ($2::text IS NULL OR status = $2)
         AND ($3::boolean OR $2 = 'deleted' OR status <> 'deleted')
         AND ($4::text IS NULL OR id > $4)
       ORDER BY id LIMIT $5`,
      [
        q.search ?? null,
        q.status ?? null,
        q.includeDeleted ?? false,
        q.after ?? null,
        q.limit,
        // The search is literal text: % and _ are not wildcards.
        q.search?.replace(/[\\%_]/g, (c) => `\\${c}`) ?? null,
      ],
    );
    return rows.map(toTenant);
  },

  async update(
    sql: SqlExecutor,
    id: string,
    patch: Partial<TenantLimits & { name: string; status: TenantStatus }>,
  ): Promise<Tenant | null> {
    const current = await tenantStore.get(sql, id);
    if (!current) return null;
    const next = { ...current, ...patch };
    const [row] = await sql.query<TenantRow>(
      `UPDATE tenants SET name = $2, status = $3, rate_per_second = $4, burst = $5, max_in_flight = $6,
         max_input_bytes = $7, output_formats = $8, updated_at = now(),
         deleted_at = CASE WHEN $3 = 'deleted' THEN coalesce(deleted_at, now()) ELSE NULL END
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        next.name,
        next.status,
        next.ratePerSecond,
        next.burst,
        next.maxInFlight,
        next.maxInputBytes,
        next.outputFormats,
      ],
    );
    return row ? toTenant(row) : null;
  },

  /** Every tenant the data plane needs: deleted ones are left out. */
  async records(sql: SqlExecutor): Promise<TenantRecord[]> {
    const rows = await sql.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE status <> 'deleted'`);
    return rows.map((row) => toRecord(toTenant(row)));
  },
};

export function toRecord(t: Tenant): TenantRecord {
  return {
    id: t.id,
    status: t.status,
    ratePerSecond: t.ratePerSecond,
    burst: t.burst,
    maxInFlight: t.maxInFlight,
    maxInputBytes: t.maxInputBytes,
    outputFormats: t.outputFormats,
  };
}

function toTenant(row: TenantRow): Tenant {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    ratePerSecond: row.rate_per_second,
    burst: row.burst,
    maxInFlight: row.max_in_flight,
    maxInputBytes: row.max_input_bytes,
    outputFormats: row.output_formats as OutputFormat[] | null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    deletedAt: row.deleted_at?.toISOString() ?? null,
  };
}
