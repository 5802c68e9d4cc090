/**
 * The one set of versioned migrations, applied at start by both adapters.
 * A migration is never edited once released: add a new one. Statements run
 * one at a time inside the migration's transaction.
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "identity: tenants, API keys, outbox, audit log",
    statements: [
      `CREATE TABLE tenants (
        id text PRIMARY KEY,
        name text NOT NULL,
        status text NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
        rate_per_second double precision NOT NULL CHECK (rate_per_second > 0),
        burst integer NOT NULL CHECK (burst >= 1),
        max_in_flight integer NOT NULL CHECK (max_in_flight >= 1),
        max_input_bytes integer CHECK (max_input_bytes > 0),
        output_formats text[],
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`,
      // Names are unique among live tenants, so the CLI and console can find one by name.
      `CREATE UNIQUE INDEX tenants_live_name ON tenants (lower(name)) WHERE status <> 'deleted'`,
      `CREATE TABLE api_keys (
        id text PRIMARY KEY,
        tenant_id text REFERENCES tenants (id),
        name text NOT NULL DEFAULT '',
        secret_sha256 text NOT NULL,
        scopes text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        replaced_by text,
        created_by text NOT NULL
      )`,
      `CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at)`,
      // Refs only ('tenant:<id>', 'key:<id>'): the publisher sends the row's state at publish time, so order cannot matter.
      `CREATE TABLE identity_outbox (
        seq bigserial PRIMARY KEY,
        ref text NOT NULL,
        committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`,
      `CREATE TABLE audit_log (
        id text PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor text NOT NULL,
        source_ip text,
        request_id text,
        action text NOT NULL,
        target text,
        tenant_id text,
        details jsonb NOT NULL DEFAULT '{}'
      )`,
      `CREATE INDEX audit_log_by_time ON audit_log (at DESC, id DESC)`,
      `CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, at DESC)`,
    ],
  },
  {
    version: 2,
    name: "usage: batch claims and hourly/daily rollups",
    statements: [
      // A batch's claim: inserted in the same transaction as its increments, so a batch counts once however often it arrives.
      `CREATE TABLE usage_batches (
        id text PRIMARY KEY,
        node text NOT NULL,
        sealed_at timestamptz NOT NULL,
        committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        records integer NOT NULL,
        archived_at timestamptz
      )`,
      `CREATE INDEX usage_batches_by_commit ON usage_batches (committed_at)`,
      // No foreign key: usage outlives deleted tenants, and anonymous usage has no tenant row.
      `CREATE TABLE usage_rollups (
        granularity text NOT NULL CHECK (granularity IN ('hour', 'day')),
        tenant_id text NOT NULL,
        period_start timestamptz NOT NULL,
        operation text NOT NULL,
        outcome text NOT NULL CHECK (outcome IN ('ok', 'client_error', 'server_error')),
        requests bigint NOT NULL,
        bytes_in bigint NOT NULL,
        bytes_out bigint NOT NULL,
        pixels_in bigint NOT NULL,
        pixels_out bigint NOT NULL,
        cpu_ms double precision NOT NULL,
        process_ms double precision NOT NULL,
        queue_ms double precision NOT NULL,
        PRIMARY KEY (granularity, tenant_id, period_start, operation, outcome)
      )`,
      `CREATE INDEX usage_rollups_by_period ON usage_rollups (granularity, period_start)`,
    ],
  },
  {
    version: 3,
    name: "jobs: dead letters",
    statements: [
      // Jobs given up after every delivery failed (a crash each time) or whose bytes could not cross between nodes.
      `CREATE TABLE dead_letters (
        job_id text PRIMARY KEY,
        tenant_id text,
        worker_node text NOT NULL,
        staged_on text NOT NULL,
        reason text NOT NULL,
        detail text NOT NULL,
        attempts integer NOT NULL,
        spec jsonb NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`,
      `CREATE INDEX dead_letters_by_time ON dead_letters (at DESC)`,
    ],
  },
  {
    version: 4,
    name: "operations: metric history, events, alerts, notification channels and deliveries",
    statements: [
      // Raw samples, kept for a day (ops.rawRetentionHours).
      `CREATE TABLE metric_points (
        series text NOT NULL,
        node text NOT NULL,
        at timestamptz NOT NULL,
        value double precision NOT NULL,
        PRIMARY KEY (series, node, at)
      )`,
      `CREATE INDEX metric_points_by_time ON metric_points (at)`,
      // Hourly downsampling, kept for months (ops.historyDays): the baselines read these.
      `CREATE TABLE metric_rollups (
        series text NOT NULL,
        node text NOT NULL,
        hour timestamptz NOT NULL,
        samples integer NOT NULL,
        sum double precision NOT NULL,
        sum_squares double precision NOT NULL,
        min double precision NOT NULL,
        max double precision NOT NULL,
        PRIMARY KEY (series, node, hour)
      )`,
      `CREATE INDEX metric_rollups_by_time ON metric_rollups (hour)`,
      // Informational: what the system did by itself, or noticed. Never notifies.
      `CREATE TABLE ops_events (
        id text PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        kind text NOT NULL,
        node text,
        message text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'
      )`,
      `CREATE INDEX ops_events_by_time ON ops_events (at DESC)`,
      // One row per alert episode; `key` de-duplicates: one open alert per rule and subject.
      `CREATE TABLE alerts (
        id text PRIMARY KEY,
        key text NOT NULL,
        rule text NOT NULL,
        severity text NOT NULL CHECK (severity IN ('critical', 'warning')),
        state text NOT NULL CHECK (state IN ('firing', 'resolved')),
        summary text NOT NULL,
        runbook text NOT NULL,
        figures jsonb NOT NULL DEFAULT '{}',
        started_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        resolved_at timestamptz,
        acked_at timestamptz,
        acked_by text
      )`,
      `CREATE UNIQUE INDEX alerts_one_open_per_key ON alerts (key) WHERE state = 'firing'`,
      `CREATE INDEX alerts_by_time ON alerts (started_at DESC)`,
      `CREATE TABLE notification_channels (
        id text PRIMARY KEY,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('webhook', 'slack')),
        url text NOT NULL,
        secret text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE UNIQUE INDEX notification_channels_name ON notification_channels (lower(name))`,
      `CREATE TABLE notification_deliveries (
        id text PRIMARY KEY,
        channel text NOT NULL,
        alert_id text,
        event text NOT NULL,
        status text NOT NULL CHECK (status IN ('delivered', 'failed', 'retrying')),
        attempts integer NOT NULL,
        response_status integer,
        error text,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`,
      `CREATE INDEX notification_deliveries_by_time ON notification_deliveries (at DESC)`,
    ],
  },
];
