import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { MIN_RATE_PER_SECOND, MIN_RATE_RULE } from "../contract/vocabulary.js";

const MiB = 1024 * 1024;

export const INPUT_FORMATS = ["jpeg", "png", "webp", "avif", "gif", "tiff", "heif", "svg"] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** Accepts a list as an array or as a comma-separated string (handy in env vars). */
function listOf<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (v) =>
      typeof v === "string"
        ? v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z.array(item),
  );
}

/** A non-empty string; an env value such as `2024` arrives as a number and is taken back as text. */
function text() {
  return z.preprocess((v) => (typeof v === "number" ? String(v) : v), z.string().min(1));
}

const ServerSchema = z
  .object({
    host: text().default("127.0.0.1"),
    /** 0 picks a free port; the chosen one is logged. */
    port: z.number().int().min(0).max(65535).default(8080),
    /** SIGTERM: how long in-flight requests may take to finish before the process exits anyway. */
    shutdownGraceMs: z.number().int().min(0).max(600_000).default(10_000),
    /** The request line and headers must arrive within this; a slower client gets 408 and its connection closed. */
    headersTimeoutMs: z.number().int().min(500).max(300_000).default(10_000),
    /**
     * Load balancers whose X-Forwarded-For is believed (addresses, CIDRs, or
     * loopback/linklocal/uniquelocal). The client address they report is what
     * the audit trail, the request log and the sign-in limiter see; from
     * anyone else the header is ignored.
     */
    trustProxy: listOf(
      text().refine(
        isProxyAddress,
        "must be an IP address, a CIDR such as 10.0.0.0/8, or loopback, linklocal, uniquelocal",
      ),
    ).default([]),
  })
  .strict();

function isProxyAddress(value: string): boolean {
  if (["loopback", "linklocal", "uniquelocal"].includes(value)) return true;
  const [address = "", bits, ...rest] = value.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

const LimitsSchema = z
  .object({
    /** 25 MiB: the body is held in memory once in the API and once in a worker. */
    maxInputBytes: z
      .number()
      .int()
      .min(1024)
      .max(512 * MiB)
      .default(25 * MiB),
    /** 50 MP, read from the header before decoding: ~200 MB of RGBA in a worker at worst. */
    maxInputPixels: z.number().int().min(1).max(1_000_000_000).default(50_000_000),
    /** Largest output side (after dpr): 8192² RGBA is ~268 MB, the worst a worker allocates for output. */
    maxOutputDimension: z.number().int().min(16).max(16_384).default(8192),
    /** Frames kept with animated=true; each frame costs its full pixel count in memory. */
    maxFrames: z.number().int().min(1).max(1000).default(100),
    /** A worker still busy after this is killed and the request answered 504; it bounds hostile images. */
    processingTimeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    /** SVG is off by default: it is a document format with scripts and external references. */
    inputFormats: listOf(z.enum(INPUT_FORMATS))
      .default(["jpeg", "png", "webp", "avif", "gif", "tiff", "heif"])
      .refine((v) => v.length > 0, "must name at least one format"),
  })
  .strict();

const QueueSchema = z
  .object({
    /** Jobs waiting for a worker. Each holds only a reference to staged bytes; beyond it the API answers 503. */
    capacity: z.number().int().min(1).max(100_000).default(64),
    /** End-to-end budget of a synchronous resize; a job found expired is dropped before processing. */
    deadlineMs: z.number().int().min(100).max(600_000).default(15_000),
    /** Deliveries of one job; a job that crashed its worker this often is answered 502, not retried. */
    maxAttempts: z.number().int().min(1).max(10).default(2),
  })
  .strict();

const StagingSchema = z
  .object({
    /** Bytes of uploads held while their jobs wait or run: 256 MiB by default; beyond it the API answers 503. */
    maxBytes: z
      .number()
      .int()
      .min(MiB)
      .max(64 * 1024 * MiB)
      .default(256 * MiB),
    /**
     * The most one tenant may hold, as a share of maxBytes (never less than one
     * upload of limits.maxInputBytes): beyond it that tenant's uploads answer
     * 429 while other tenants are still admitted.
     */
    tenantShare: z.number().gt(0).max(1).default(0.25),
  })
  .strict();

/** How fast an upload's body must arrive: slow clients cannot hold connections and staging. */
const UploadsSchema = z
  .object({
    /** After the grace, an upload slower than this over the window is cut off with 408; 0 turns the floor off. */
    minBytesPerSecond: z
      .number()
      .int()
      .min(0)
      .max(1024 * MiB)
      .default(4096),
    /** From the request's start: time for a client to get going before the floor applies. */
    graceMs: z.number().int().min(0).max(600_000).default(5000),
    /** The rate is measured over the last windowMs. */
    windowMs: z.number().int().min(100).max(600_000).default(5000),
    /** The whole body must have arrived within this of the request's start, at any rate. */
    timeoutMs: z.number().int().min(1000).max(3_600_000).default(60_000),
  })
  .strict();

const WorkersSchema = z
  .object({
    /** Worker processes, each resizing one image at a time. Default: one per core. */
    count: z.number().int().min(1).max(256).default(availableParallelism()),
    /** A worker whose resident memory exceeds this after a job is replaced. */
    maxRssMb: z.number().int().min(1).max(65_536).default(320),
    /** libvips fragments glibc's allocator; jemalloc keeps worker memory flat. */
    jemalloc: z.enum(["auto", "on", "off"]).default("auto"),
  })
  .strict();

const DatabaseSchema = z
  .object({
    /** postgres://user:password@host:port/db for a fleet; absent: PGlite under dataDir (embedded). */
    url: text()
      .refine((v) => /^postgres(ql)?:\/\//.test(v), "must be a postgres:// or postgresql:// URL")
      .optional(),
    /** Connections per node to PostgreSQL. PGlite has exactly one. */
    poolMax: z.number().int().min(1).max(100).default(5),
    connectTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    /** Admin queries are small; one that runs longer than this is cancelled. */
    statementTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  })
  .strict();

const TenantDefaultsSchema = z
  .object({
    ratePerSecond: z.number().min(MIN_RATE_PER_SECOND, MIN_RATE_RULE).max(100_000).default(20),
    burst: z.number().int().min(1).max(1_000_000).default(40),
    /** Well under queue.capacity, so one tenant's burst cannot fill the queue. */
    maxInFlight: z.number().int().min(1).max(100_000).default(8),
  })
  .strict();

const AuthSchema = z
  .object({
    /** `keys`: every /v1 request needs a tenant's API key. `none`: open to anyone (behind your own gateway only). */
    mode: z.enum(["keys", "none"]).default("keys"),
    /** How long a rotated key keeps working beside its replacement, unless the request says otherwise. */
    rotationGraceSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * 86_400)
      .default(86_400),
    /** How often the outbox is polled for changes made by other nodes; this node's own changes publish at once. */
    outboxPollMs: z.number().int().min(50).max(60_000).default(1000),
    /** Bound on the identity KeyValue bucket (keys + tenants) in embedded mode. */
    maxRecords: z.number().int().min(100).max(10_000_000).default(1_000_000),
    tenantDefaults: TenantDefaultsSchema.prefault({}),
  })
  .strict();

const SpoolSchema = z
  .object({
    /**
     * Bound on the spool's files: 1 GiB holds about 5 million records (~200 bytes each), an hour of a busy
     * node with the aggregator down. At the bound the node answers 503 usage-spool-full (onFull: reject).
     */
    maxBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(1024 * 1024 * MiB)
      .default(1024 * MiB),
    /** A segment takes no new batch once this size is reached; a segment is deleted when all its batches are committed. */
    segmentBytes: z
      .number()
      .int()
      .min(4096)
      .max(1024 * MiB)
      .default(4 * MiB),
    /**
     * `seal`: fsync when a batch is sealed (a power cut loses at most the open batch); `always`: also after
     * every record (nothing lost, ~1 ms per request); `never`: leave it to the OS (a process crash still loses nothing).
     */
    fsync: z.enum(["always", "seal", "never"]).default("seal"),
    /** `reject`: refuse new requests with 503 while the spool is full rather than serve unbilled work; `serve`: serve and drop their records. */
    onFull: z.enum(["reject", "serve"]).default("reject"),
  })
  .strict();

const PricesSchema = z
  .object({
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD")
      .default("USD"),
    /** Prices apply to successful requests only; failures are counted but free. */
    per1000Requests: z.number().min(0).default(0.5),
    perGbIn: z.number().min(0).default(0.02),
    perGbOut: z.number().min(0).default(0.08),
    /** Per million input pixels decoded. */
    perMegapixel: z.number().min(0).default(0.0002),
    perCpuHour: z.number().min(0).default(0.05),
  })
  .strict();

const UsageSchema = z
  .object({
    /** Off: no record is kept and nothing is billed (for sites that do not bill; the benchmark compares both). */
    enabled: z.boolean().default(true),
    /** A batch is sealed this long after its first record, */
    flushIntervalMs: z.number().int().min(10).max(600_000).default(2000),
    /** or once it holds this many records, whichever comes first. Records of the open batch are held in memory. */
    // At most 4000: a batch (~205 bytes per record) must fit in one 1 MB NATS message in a fleet.
    maxBatchRecords: z.number().int().min(1).max(4000).default(2000),
    spool: SpoolSchema.prefault({}),
    /** How often the shipper asks the database which shipped batches are committed. */
    confirmIntervalMs: z.number().int().min(10).max(60_000).default(1000),
    /** A shipped batch not committed after this is shipped again (its transport may have lost it). */
    reshipAfterMs: z.number().int().min(100).max(3_600_000).default(30_000),
    /** Raw records are kept as gzipped NDJSON per tenant per day for this many days. */
    archiveRetentionDays: z.number().int().min(1).max(3650).default(90),
    /**
     * Where the archive lives (default `<dataDir>/usage/archive`). Only the
     * holder of the usage-aggregator lease writes it: with two control nodes,
     * a directory both mount keeps one archive when the lease moves.
     */
    archiveDir: text().optional(),
    prices: PricesSchema.prefault({}),
  })
  .strict();

const LogSchema = z
  .object({
    level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .strict();

const WebhookSchema = z
  .object({
    name: text(),
    url: text().refine((v) => /^https?:\/\//.test(v), "must be an http:// or https:// URL"),
    /** `webhook`: imgfleet's JSON; `slack`: a Slack-compatible incoming-webhook body. */
    kind: z.enum(["webhook", "slack"]).default("webhook"),
    /** Signs each delivery (HMAC-SHA256 in X-Imgfleet-Signature) so the receiver can trust it. */
    secret: text().optional(),
  })
  .strict();

const AlertRulesSchema = z
  .object({
    /** Anomaly: a series beyond k standard deviations of its baseline, */
    anomalyK: z.number().min(1).max(20).default(3),
    /** for this many minutes in a row. */
    anomalyMinutes: z.number().int().min(1).max(1440).default(10),
    /** Hard limit: share of 5xx answers (0-1), */
    errorRateMax: z.number().min(0).max(1).default(0.05),
    /** for this many minutes. */
    errorRateMinutes: z.number().int().min(1).max(1440).default(2),
    /** Hard limit: the oldest waiting job, in seconds. */
    oldestJobAgeMaxS: z.number().min(1).max(86_400).default(10),
    /** Hard limit: the oldest usage batch not yet committed, in seconds. */
    spoolBacklogMaxS: z
      .number()
      .min(10)
      .max(86_400 * 7)
      .default(600),
    /** A node that answered no scrape for this long. */
    nodeSilentS: z.number().int().min(10).max(86_400).default(60),
    /** A control singleton nobody has held for this long. */
    leaseMissingS: z.number().int().min(10).max(86_400).default(60),
    /** Forecast: warn when a disk or the spool will be full within this many days at the current trend. */
    forecastDays: z.number().int().min(1).max(365).default(14),
  })
  .strict();

const OpsSchema = z
  .object({
    /** Off: no metric history, baselines or alerts (the benchmark compares both). */
    sampling: z.boolean().default(true),
    /** The control role samples every node's key series this often. */
    sampleIntervalMs: z.number().int().min(1000).max(600_000).default(15_000),
    /** Raw samples are kept this long, */
    rawRetentionHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 14)
      .default(24),
    /** and hourly downsampled ones this long. Bound: series × nodes × 24 × days rows. */
    historyDays: z.number().int().min(1).max(3650).default(180),
    /** Baselines are the mean ± standard deviation over this window (by hour of day with enough history). */
    baselineDays: z.number().int().min(1).max(90).default(7),
    /** Series of more nodes than this are not sampled (a bound on the history's size). */
    maxNodes: z.number().int().min(1).max(10_000).default(200),
    alerts: AlertRulesSchema.prefault({}),
    /** Notification channels set in config (more can be added through the admin API). */
    webhooks: z.array(WebhookSchema).default([]),
    /** Attempts per notification, with exponential backoff and jitter between them. */
    notifyAttempts: z.number().int().min(1).max(20).default(5),
  })
  .strict();

const ConsoleSchema = z
  .object({
    /** A console session ends after this long without a request (the browser then asks to sign in again). */
    idleTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 3_600_000)
      .default(30 * 60_000),
    /** and this long after sign-in whatever happens; also the sessions bucket's max age. */
    sessionLifetimeMs: z
      .number()
      .int()
      .min(1000)
      .max(30 * 24 * 3_600_000)
      .default(12 * 3_600_000),
    /**
     * Failed key checks (console sign-in, Bearer on /admin/v1 and /v1) per client address and per key id
     * per minute; beyond it a backoff doubling from 1 s to 15 min refuses further failures
     * (`429 sign-in-rate-limited` / `auth-rate-limited`). A valid key is always accepted.
     */
    signInsPerMinute: z.number().int().min(1).max(10_000).default(10),
  })
  .strict()
  .refine((v) => v.idleTimeoutMs <= v.sessionLifetimeMs, {
    message: "idleTimeoutMs must not exceed sessionLifetimeMs",
    path: ["idleTimeoutMs"],
  });

export const ROLES = ["api", "worker", "control"] as const;
export type Role = (typeof ROLES)[number];

const NatsSchema = z
  .object({
    /** nats://host:port of every server of the cluster; empty: embedded mode, no NATS. */
    servers: listOf(
      text().refine((v) => /^(nats|tls):\/\//.test(v), "must be a nats:// or tls:// URL"),
    ).default([]),
    connectTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    /** At start, attempts to reach NATS (exponential backoff with jitter) before giving up with an error. */
    connectAttempts: z.number().int().min(1).max(100).default(5),
  })
  .strict();

const FleetSchema = z
  .object({
    nats: NatsSchema.prefault({}),
    /**
     * Signs the internal requests between nodes (workers fetching staged uploads and posting results).
     * The same value on every node; at least 32 characters (e.g. `openssl rand -base64 48`).
     */
    clusterSecret: text()
      .refine((v) => v.length >= 32, "must be at least 32 characters")
      .optional(),
    /** How other nodes reach this one (http://host:port); default: from server.host and the listening port. */
    advertiseUrl: text()
      .refine((v) => /^https?:\/\//.test(v), "must be an http:// or https:// URL")
      .optional(),
    /** This node's id in discovery; default: host name, process id and a random suffix. */
    nodeId: text()
      .refine((v) => /^[-\w.]{1,64}$/.test(v), "letters, digits, - _ . (at most 64)")
      .optional(),
    /** Replicas of streams and buckets: 3 on a 3-server cluster (Raft), 1 on a single server. Default: 3 when 3+ servers are named. */
    replicas: z.union([z.literal(1), z.literal(3)]).optional(),
    /** A node re-registers this often; one that misses registrations for discoveryTtlMs is gone. */
    discoveryRefreshMs: z.number().int().min(100).max(60_000).default(3000),
    discoveryTtlMs: z.number().int().min(500).max(300_000).default(10_000),
    /** A singleton's lease lasts this long unless renewed (renewed every third); another node takes it after. */
    leaseTtlMs: z.number().int().min(500).max(300_000).default(10_000),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** Where embedded mode keeps its state. */
    dataDir: text().default("./data"),
    server: ServerSchema.prefault({}),
    limits: LimitsSchema.prefault({}),
    queue: QueueSchema.prefault({}),
    staging: StagingSchema.prefault({}),
    uploads: UploadsSchema.prefault({}),
    workers: WorkersSchema.prefault({}),
    log: LogSchema.prefault({}),
    database: DatabaseSchema.prefault({}),
    auth: AuthSchema.prefault({}),
    usage: UsageSchema.prefault({}),
    /**
     * Roles of this process. `all` (the default) is every role; without fleet.nats.servers that is
     * embedded mode, on one machine with no external services.
     */
    roles: listOf(z.enum(["all", ...ROLES]))
      .default(["all"])
      .refine((v) => v.length > 0, "name at least one role"),
    fleet: FleetSchema.prefault({}),
    ops: OpsSchema.prefault({}),
    /** The web console's sessions (the console itself is served by every API node at /console). */
    console: ConsoleSchema.prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const fleet = config.fleet.nats.servers.length > 0;
    const partial = !config.roles.includes("all");
    if (partial && !fleet) {
      ctx.addIssue({
        code: "custom",
        path: ["roles"],
        message: `a role subset (${config.roles.join(",")}) runs in a fleet: name the NATS servers in fleet.nats.servers`,
      });
    }
    if (fleet && !config.database.url) {
      ctx.addIssue({
        code: "custom",
        path: ["database", "url"],
        message: "a fleet keeps its management plane in PostgreSQL: set database.url (postgres://...)",
      });
    }
    if (fleet && !config.fleet.clusterSecret) {
      ctx.addIssue({
        code: "custom",
        path: ["fleet", "clusterSecret"],
        message:
          "a fleet signs requests between nodes: set the same fleet.clusterSecret (32+ characters) on every node",
      });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ImageLimits = Config["limits"];

/** The roles a node runs: `all` (embedded) is every one of them. */
export function resolveRoles(config: Readonly<Config>): Set<Role> {
  return new Set(config.roles.includes("all") ? ROLES : (config.roles as Role[]));
}
