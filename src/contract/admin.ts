import { z } from "zod";
import { booleanText, cursorText, Details, limitText, printable, Timestamp } from "./common.js";
import {
  ADMIN_SCOPE,
  FLAG_NAME,
  MIN_RATE_PER_SECOND,
  MIN_RATE_RULE,
  OUTPUT_FORMATS,
  TENANT_SCOPES,
  TENANT_STATUSES,
} from "./vocabulary.js";

/**
 * The admin API's requests and answers (`/admin/v1`). The server validates
 * with the request schemas; the CLI and the console type their calls with
 * the answers (`z.infer`); the OpenAPI document is generated from both.
 */

// ---- Requests -------------------------------------------------------------------------------

const limits = {
  ratePerSecond: z.number().min(MIN_RATE_PER_SECOND, MIN_RATE_RULE).max(100_000),
  burst: z.number().int().min(1).max(1_000_000),
  maxInFlight: z.number().int().min(1).max(100_000),
  maxInputBytes: z
    .number()
    .int()
    .min(1024)
    .max(2 ** 31 - 1)
    .nullable()
    .meta({ description: "null: the node's own limit" }),
  outputFormats: z
    .array(z.enum(OUTPUT_FORMATS))
    .min(1, "name at least one format, or null for all")
    .transform((v) => [...new Set(v)])
    .nullable()
    .meta({ description: "null: every format the node serves" }),
};

const PRINTABLE_RULE =
  "must not contain control characters or invisible ones such as right-to-left overrides";

const tenantName = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(100, "must be at most 100 characters")
  .refine(printable, PRINTABLE_RULE);

const keyName = z.string().trim().max(100).refine(printable, PRINTABLE_RULE).default("");

export const NewTenantBody = z
  .object({
    name: tenantName,
    ratePerSecond: limits.ratePerSecond.optional(),
    burst: limits.burst.optional(),
    maxInFlight: limits.maxInFlight.optional(),
    maxInputBytes: limits.maxInputBytes.optional(),
    outputFormats: limits.outputFormats.optional(),
  })
  .strict();

export const TenantPatchBody = z
  .object({ name: tenantName, status: z.enum(["active", "suspended"]), ...limits })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, "name at least one field to change");

const futureDate = z.iso
  .datetime({ offset: true, message: "must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z" })
  .transform((v) => new Date(v))
  .refine((d) => d.getTime() > Date.now(), "must be in the future");

export const NewKeyBody = z
  .object({
    name: keyName,
    scopes: z
      .array(z.enum(TENANT_SCOPES))
      .min(1)
      .transform((v) => [...new Set(v)])
      .default(["resize"]),
    expiresAt: futureDate.nullable().default(null),
  })
  .strict();

export const NewAdminKeyBody = z
  .object({ name: keyName, expiresAt: futureDate.nullable().default(null) })
  .strict();

export const RotateBody = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * 86_400)
      .optional()
      .meta({ description: "How long the old key keeps working; the node's configured grace when absent" }),
  })
  .strict();

export const TenantListQuery = z
  .object({
    search: z.string().max(100).optional(),
    status: z.enum(TENANT_STATUSES).optional(),
    includeDeleted: booleanText.default(false),
    after: cursorText.optional(),
    limit: limitText,
  })
  .strict();

export const KeyListQuery = z.object({ includeRevoked: booleanText.default(false) }).strict();

export const AuditQuery = z
  .object({
    tenant: z.string().max(64).optional(),
    actor: z.string().max(64).optional(),
    action: z.string().max(64).optional(),
    since: z.iso
      .datetime({ offset: true })
      .transform((v) => new Date(v))
      .optional(),
    before: cursorText.optional(),
    limit: limitText,
  })
  .strict();

export const DeadLetterQuery = z.object({ limit: limitText }).strict();

export const EventsQuery = z
  .object({ limit: limitText, kind: z.string().max(64).optional(), before: cursorText.optional() })
  .strict();

export const AlertQuery = z
  .object({
    state: z.enum(["firing", "resolved"]).optional(),
    before: cursorText.optional(),
    limit: limitText,
  })
  .strict();

export const DeliveryQuery = z
  .object({
    channel: z.string().max(200).optional(),
    alert: z.string().max(64).optional(),
    before: cursorText.optional(),
    limit: limitText,
  })
  .strict();

export const NewChannelBody = z
  .object({
    name: z.string().trim().min(1).max(100).refine(printable, PRINTABLE_RULE),
    kind: z.enum(["webhook", "slack"]).default("webhook"),
    url: z
      .string()
      .max(2000)
      .refine((v) => /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v), "must be an http:// or https:// URL"),
    /** At least 16 characters: the receiver trusts whatever this secret signs. */
    secret: z
      .string()
      .min(16, "must be at least 16 characters (e.g. `openssl rand -hex 32`)")
      .max(256)
      .optional(),
  })
  .strict();

/** Actions that take no input (`ack`, `test`) accept no body, or an empty object. */
export const EmptyBody = z.object({}).strict();

const instant = z.iso
  .datetime({ offset: true, message: "must be an ISO 8601 date-time such as 2026-01-31T00:00:00Z" })
  .transform((v) => Date.parse(v));

export const SeriesQuery = z
  .object({
    node: z
      .string()
      .regex(/^[-\w.]{1,64}$/, "must be a node id (letters, digits, - _ .)")
      .optional()
      .meta({ description: "A node id; without it, the fleet-wide series" }),
    since: instant.optional().meta({ description: "Default: an hour before `until`" }),
    until: instant.optional().meta({ description: "Default: now" }),
  })
  .strict();

const flagName = z
  .string()
  .regex(FLAG_NAME, "must be kebab-case: lower-case letters, digits and dashes, at most 64 characters");
/** Tenant ids are checked against the database; this only keeps junk out of KV values and logs. */
const flagTenantId = z.string().regex(/^[\w.-]{1,64}$/, "must be a tenant id such as ten_…");

export const FlagParams = z.object({ name: flagName }).strict();
export const FlagTenantParams = z.object({ name: flagName, tenantId: flagTenantId }).strict();
export const FlagQuery = z
  .object({
    tenant: flagTenantId
      .optional()
      .meta({ description: "Answer how the answering node evaluates the flag for this tenant" }),
  })
  .strict();

export const FlagSettingsBody = z
  .object({
    default: z.boolean(),
    percentage: z
      .number()
      .min(0)
      .max(100)
      .refine(
        (v) => Math.abs(v * 100 - Math.round(v * 100)) < 1e-6,
        "must have at most two decimals (0.01 is one tenant in ten thousand)",
      ),
    description: z.string().trim().max(500).refine(printable, PRINTABLE_RULE),
  })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, "name at least one of default, percentage, description");

export const FlagTenantBody = z.object({ enabled: z.boolean() }).strict();

export const SignInBody = z
  .object({ adminKey: z.string().trim().min(1, "paste an admin key").max(200) })
  .strict();

// ---- Answers --------------------------------------------------------------------------------

export const Tenant = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(TENANT_STATUSES),
    ratePerSecond: z.number(),
    burst: z.number().int(),
    maxInFlight: z.number().int(),
    maxInputBytes: z.number().int().nullable(),
    outputFormats: z.array(z.enum(OUTPUT_FORMATS)).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    deletedAt: Timestamp.nullable(),
  })
  .meta({ id: "Tenant" });
export type Tenant = z.infer<typeof Tenant>;

export const ApiKey = z
  .object({
    id: z.string(),
    tenantId: z.string().nullable().meta({ description: "null: an admin key" }),
    name: z.string(),
    scopes: z.array(z.enum([...TENANT_SCOPES, ADMIN_SCOPE])),
    createdAt: Timestamp,
    expiresAt: Timestamp.nullable(),
    revokedAt: Timestamp.nullable(),
    replacedBy: z.string().nullable().meta({ description: "Set on a rotated key: the key that replaces it" }),
    createdBy: z.string(),
  })
  .meta({ id: "ApiKey", description: "A key as listed: never its secret" });
export type ApiKey = z.infer<typeof ApiKey>;

export const IssuedKey = ApiKey.extend({
  secret: z.string().meta({ description: "Shown once: only its hash is stored" }),
}).meta({ id: "IssuedKey", description: "A key as issued: the only answer that carries its secret" });
export type IssuedKey = z.infer<typeof IssuedKey>;

export const RotatedKey = IssuedKey.extend({ previous: ApiKey }).meta({ id: "RotatedKey" });
export type RotatedKey = z.infer<typeof RotatedKey>;

export const AuditEntry = z
  .object({
    id: z.string(),
    at: Timestamp,
    actor: z.string(),
    sourceIp: z.string().nullable(),
    requestId: z.string().nullable(),
    action: z.string(),
    target: z.string().nullable(),
    tenantId: z.string().nullable(),
    details: Details,
  })
  .meta({ id: "AuditEntry" });
export type AuditEntry = z.infer<typeof AuditEntry>;

export const IdentityStatus = z
  .object({
    loaded: z.boolean(),
    keys: z.number().int(),
    tenants: z.number().int(),
    propagationMs: z.object({
      samples: z.number().int(),
      p50: z.number().nullable(),
      p99: z.number().nullable(),
      max: z.number().nullable(),
    }),
    outboxBacklog: z.number().int(),
  })
  .meta({ id: "IdentityStatus", description: "The data plane as the answering node sees it" });
export type IdentityStatus = z.infer<typeof IdentityStatus>;

export const FleetNode = z
  .object({
    id: z.string(),
    roles: z.array(z.string()),
    version: z.string(),
    url: z.string(),
    startedAt: z.number().meta({ description: "Epoch milliseconds" }),
    seenAt: z.number().meta({ description: "When it last registered (epoch milliseconds)" }),
    load: z.object({
      inFlight: z.number(),
      queueDepth: z.number(),
      workersBusy: z.number(),
      workers: z.number(),
      rssBytes: z.number(),
    }),
  })
  .meta({ id: "FleetNode", description: "A node as discovery lists it" });
export type FleetNode = z.infer<typeof FleetNode>;

export const DeadLetter = z
  .object({
    jobId: z.string(),
    tenant: z.string().nullable(),
    workerNode: z.string(),
    stagedOn: z.string(),
    reason: z.enum(["worker-crashed", "data-path"]),
    detail: z.string(),
    attempts: z.number().int(),
    at: Timestamp,
  })
  .meta({ id: "DeadLetter", description: "A job given up for good" });
export type DeadLetter = z.infer<typeof DeadLetter>;

export const OpsEvent = z
  .object({
    id: z.string(),
    at: Timestamp,
    kind: z.string(),
    node: z.string().nullable(),
    message: z.string(),
    details: Details,
  })
  .meta({ id: "OpsEvent" });
export type OpsEvent = z.infer<typeof OpsEvent>;

const Severity = z.enum(["critical", "warning"]);

export const Alert = z
  .object({
    id: z.string(),
    key: z.string().meta({ description: "`<rule>:<subject>`: at most one firing alert per key" }),
    rule: z.string(),
    subject: z.string(),
    severity: Severity,
    state: z.enum(["firing", "resolved"]),
    summary: z.string(),
    runbook: z.string(),
    figures: z.record(z.string(), z.union([z.number(), z.string(), z.null()])),
    startedAt: Timestamp,
    updatedAt: Timestamp,
    resolvedAt: Timestamp.nullable(),
    ackedAt: Timestamp.nullable(),
    ackedBy: z.string().nullable(),
  })
  .meta({ id: "Alert" });
export type Alert = z.infer<typeof Alert>;

export const AlertRule = z
  .object({ id: z.string(), severity: Severity, condition: z.string(), runbook: z.string() })
  .meta({ id: "AlertRule" });
export type AlertRule = z.infer<typeof AlertRule>;

export const ChannelView = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(["webhook", "slack"]),
    url: z.string().meta({ description: "Scheme and host only: a webhook URL's path can be a credential" }),
    source: z.enum(["config", "api"]),
    createdAt: Timestamp.nullable(),
    signed: z.boolean(),
  })
  .meta({ id: "NotificationChannel" });
export type ChannelView = z.infer<typeof ChannelView>;

export const DeliveryResult = z
  .object({
    channel: z.string(),
    name: z.string(),
    status: z.enum(["delivered", "failed"]),
    attempts: z.number().int(),
    responseStatus: z.number().int().nullable(),
    error: z.string().nullable(),
  })
  .meta({ id: "DeliveryResult" });
export type DeliveryResult = z.infer<typeof DeliveryResult>;

export const Delivery = z
  .object({
    id: z.string(),
    at: Timestamp,
    channel: z.string(),
    alertId: z.string().nullable(),
    event: z.enum(["alert.fired", "alert.resolved", "test"]),
    status: z.enum(["delivered", "retrying", "failed"]),
    attempt: z.number().int(),
    responseStatus: z.number().int().nullable(),
    error: z.string().nullable(),
  })
  .meta({ id: "Delivery" });
export type Delivery = z.infer<typeof Delivery>;

export const Baseline = z
  .object({
    mean: z.number(),
    stddev: z.number(),
    samples: z.number().int(),
    basis: z.enum(["hour-of-day", "window"]),
  })
  .meta({ id: "Baseline" });

export const SeriesSummary = z
  .object({
    name: z.string(),
    unit: z.string(),
    title: z.string(),
    fleet: z.object({
      value: z.number().nullable(),
      at: Timestamp.nullable(),
      baseline: Baseline.nullable(),
      sentence: z.string(),
    }),
    nodes: z.array(
      z.object({
        node: z.string(),
        value: z.number(),
        at: Timestamp,
        baseline: Baseline.nullable(),
        outlier: z.boolean(),
      }),
    ),
  })
  .meta({ id: "SeriesSummary" });

export const MetricsOverview = z
  .object({ sampleIntervalMs: z.number(), items: z.array(SeriesSummary) })
  .meta({ id: "MetricsOverview" });
export type MetricsOverview = z.infer<typeof MetricsOverview>;

export const SeriesHistory = z
  .object({
    name: z.string(),
    unit: z.string(),
    title: z.string(),
    label: z.string(),
    node: z.string().nullable().meta({ description: "null: the fleet-wide series" }),
    since: Timestamp,
    until: Timestamp,
    baseline: Baseline.nullable(),
    band: z.object({ low: z.number(), high: z.number() }).nullable(),
    points: z.array(
      z.object({
        at: Timestamp,
        value: z.number(),
        resolution: z.enum(["raw", "hour"]),
        min: z.number().optional(),
        max: z.number().optional(),
      }),
    ),
  })
  .meta({ id: "SeriesHistory" });
export type SeriesHistory = z.infer<typeof SeriesHistory>;

export const FlagView = z
  .object({
    name: z.string(),
    description: z.string(),
    default: z.boolean(),
    percentage: z.number(),
    tenants: z.record(z.string(), z.boolean()),
    updatedAt: Timestamp.nullable(),
    updatedBy: z.string().nullable(),
    known: z.boolean().meta({ description: "Whether the answering node's code reads the flag" }),
    stored: z.boolean().meta({ description: "false: the built-in default applies everywhere" }),
  })
  .meta({ id: "Flag" });
export type FlagView = z.infer<typeof FlagView>;

export const FlagEvaluation = z
  .object({
    flag: z.string(),
    tenant: z.string(),
    value: z.boolean(),
    reason: z.enum(["tenant", "percentage", "default"]),
    node: z.string(),
    revision: z.number().nullable(),
  })
  .meta({ id: "FlagEvaluation", description: "How the answering node evaluates a flag for one tenant" });
export type FlagEvaluation = z.infer<typeof FlagEvaluation>;

export const Versions = z
  .object({
    imgfleet: z.string(),
    node: z.string(),
    os: z.string(),
    sharp: z.string(),
    libvips: z.string(),
    natsServer: z.string().nullable(),
    database: z.object({ kind: z.string(), version: z.string() }),
  })
  .meta({ id: "Versions" });
export type Versions = z.infer<typeof Versions>;

export const NodeConfig = z
  .object({
    node: z.object({
      id: z.string(),
      roles: z.array(z.string()),
      fleet: z.boolean(),
      startedAt: Timestamp,
    }),
    versions: Versions,
    config: z
      .record(z.string(), z.unknown())
      .meta({ description: "The effective configuration, secrets redacted, URLs cut to scheme and host" }),
  })
  .meta({ id: "NodeConfig" });
export type NodeConfig = z.infer<typeof NodeConfig>;

export const SessionView = z
  .object({
    keyId: z.string(),
    csrfToken: z.string().meta({ description: "Echo it in X-CSRF-Token on every write" }),
    idleTimeoutMs: z.number(),
    expiresAt: Timestamp,
  })
  .meta({ id: "Session" });
export type SessionView = z.infer<typeof SessionView>;
