import { statfs } from "node:fs/promises";
import type { Registry } from "prom-client";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { PgliteDatabase } from "../db/pglite-database.js";
import type { FlagView } from "../flags/flag-admin.js";
import type { LiveNode } from "../fleet/discovery.js";
import type { OpsEvent } from "../ops/events.js";

/** What a node hands the support report: read-only views of its parts. */
export interface ReportSources {
  config: Readonly<Config>;
  db: Database;
  node: {
    id: string;
    roles: readonly string[];
    fleet: boolean;
    /** Epoch ms. */
    startedAt: number;
    /** nats-server's version in a fleet; null embedded. */
    brokerVersion: string | null;
  };
  nodes: () => Promise<LiveNode[]>;
  events: (limit: number) => Promise<OpsEvent[]>;
  flags: () => Promise<FlagView[]>;
  metrics: Registry;
  /** Brings gauges read only at scrape time (queue, staging, disk) up to date before a snapshot. */
  refreshMetrics?: () => void;
  /** Each key series now against its baseline, from the metric history; absent where there is none. */
  seriesNow?: () => Promise<SeriesNow[]>;
}

/** One key series as the metric history summarises it (GET /admin/v1/metrics). */
export interface SeriesNow {
  title: string;
  fleet: { sentence: string };
  nodes: readonly { node: string; outlier: boolean }[];
}

/** Rows of one section: the latest alerts and events, the tenants in the usage table. */
export const REPORT_ROWS = 50;

export interface AlertRow {
  started_at: Date;
  state: string;
  severity: string;
  rule: string;
  key: string;
  summary: string;
}

/** The latest alert episodes, read from the `alerts` table (migration 4). */
export async function recentAlerts(db: Database): Promise<AlertRow[]> {
  return db.query<AlertRow>(
    `SELECT started_at, state, severity, rule, key, summary FROM alerts ORDER BY started_at DESC LIMIT ${REPORT_ROWS}`,
  );
}

export interface SeriesSummaryRow {
  series: string;
  node: string;
  samples: number;
  min: number;
  mean: number;
  max: number;
  last: number;
}

/** Min, mean, max and last of every sampled series per node over the last 24 hours (raw samples). */
export async function seriesSummaries(db: Database): Promise<SeriesSummaryRow[]> {
  const rows = await db.query<{
    series: string;
    node: string;
    samples: string | number;
    min: number;
    mean: number;
    max: number;
    last: number;
  }>(
    `SELECT series, node, count(*) AS samples, min(value) AS min, avg(value) AS mean, max(value) AS max,
            (array_agg(value ORDER BY at DESC))[1] AS last
       FROM metric_points WHERE at > now() - interval '24 hours'
      GROUP BY series, node ORDER BY series, node LIMIT 2000`,
  );
  return rows.map((r) => ({ ...r, samples: Number(r.samples) }));
}

export interface UsageTotalsRow {
  tenant_id: string;
  requests: number;
  ok: number;
  client_errors: number;
  server_errors: number;
  bytes_in: number;
  bytes_out: number;
  pixels_in: number;
  cpu_ms: number;
}

/** Per tenant over the last 30 days of daily rollups, busiest first. */
export async function usageTotals(db: Database): Promise<UsageTotalsRow[]> {
  const rows = await db.query<Record<keyof UsageTotalsRow, string | number>>(
    `SELECT tenant_id,
            sum(requests) AS requests,
            sum(requests) FILTER (WHERE outcome = 'ok') AS ok,
            sum(requests) FILTER (WHERE outcome = 'client_error') AS client_errors,
            sum(requests) FILTER (WHERE outcome = 'server_error') AS server_errors,
            sum(bytes_in) FILTER (WHERE outcome = 'ok') AS bytes_in,
            sum(bytes_out) FILTER (WHERE outcome = 'ok') AS bytes_out,
            sum(pixels_in) FILTER (WHERE outcome = 'ok') AS pixels_in,
            sum(cpu_ms) FILTER (WHERE outcome = 'ok') AS cpu_ms
       FROM usage_rollups
      WHERE granularity = 'day' AND period_start >= date_trunc('day', now()) - interval '30 days'
      GROUP BY tenant_id ORDER BY sum(requests) DESC, tenant_id`,
  );
  return rows.map((r) => ({
    tenant_id: String(r.tenant_id),
    requests: Number(r.requests ?? 0),
    ok: Number(r.ok ?? 0),
    client_errors: Number(r.client_errors ?? 0),
    server_errors: Number(r.server_errors ?? 0),
    bytes_in: Number(r.bytes_in ?? 0),
    bytes_out: Number(r.bytes_out ?? 0),
    pixels_in: Number(r.pixels_in ?? 0),
    cpu_ms: Number(r.cpu_ms ?? 0),
  }));
}

export async function deadLetterCounts(
  db: Database,
): Promise<{ reason: string; count: number; oldest: Date; newest: Date }[]> {
  const rows = await db.query<{ reason: string; count: string | number; oldest: Date; newest: Date }>(
    "SELECT reason, count(*) AS count, min(at) AS oldest, max(at) AS newest FROM dead_letters GROUP BY reason ORDER BY reason",
  );
  return rows.map((r) => ({ ...r, count: Number(r.count) }));
}

export async function identityCounts(
  db: Database,
): Promise<{ tenants: Record<string, number>; tenantKeys: number; adminKeys: number }> {
  const tenants = await db.query<{ status: string; n: string | number }>(
    "SELECT status, count(*) AS n FROM tenants GROUP BY status ORDER BY status",
  );
  const [keys] = await db.query<{ tenant_keys: string | number; admin_keys: string | number }>(
    `SELECT count(*) FILTER (WHERE tenant_id IS NOT NULL) AS tenant_keys,
            count(*) FILTER (WHERE tenant_id IS NULL) AS admin_keys
       FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
  );
  return {
    tenants: Object.fromEntries(tenants.map((t) => [t.status, Number(t.n)])),
    tenantKeys: Number(keys?.tenant_keys ?? 0),
    adminKeys: Number(keys?.admin_keys ?? 0),
  };
}

/** Every tenant's id and name, so the sanitiser can catch them wherever they appear. */
export async function tenantIdentities(db: Database): Promise<{ id: string; name: string }[]> {
  return db.query<{ id: string; name: string }>("SELECT id, name FROM tenants");
}

/** Secrets and URLs of notification channels added through the admin API (migration 4). */
export async function channelSecrets(db: Database): Promise<string[]> {
  const rows = await db.query<{ url: string; secret: string | null }>(
    "SELECT url, secret FROM notification_channels",
  );
  return rows.flatMap((r) => [r.url, ...(r.secret ? [r.secret] : [])]);
}

export async function databaseVersion(db: Database): Promise<string> {
  if (db instanceof PgliteDatabase) return db.describe();
  const [row] = await db.query<{ version: string }>("SELECT version() AS version");
  return row?.version ?? "unknown";
}

export async function diskOf(dir: string): Promise<{ free: number; size: number } | null> {
  try {
    const s = await statfs(dir);
    return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
  } catch {
    return null;
  }
}
