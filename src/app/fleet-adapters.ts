import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { configuredParts } from "../config/roles.js";
import type { Config } from "../config/schema.js";
import { NatsKeyValue } from "../kv/nats-kv.js";
import { connectNats, serverVersionWarning } from "../nats/connection.js";
import { retryTransient } from "../nats/jetstream-errors.js";
import { JetStreamJobQueue } from "../queue/jetstream-queue.js";
import { FleetDataPath } from "../staging/fleet-data-path.js";
import { HttpDataPath } from "../staging/http-data-path.js";
import { LocalDataPath } from "../staging/local-data-path.js";
import { PendingResults } from "../staging/pending-results.js";
import { StagingTable } from "../staging/staging-table.js";
import { JetStreamUsageLog } from "../usage/jetstream-usage-log.js";
import type { WireRejections } from "../wire/wire.js";
import {
  type Adapters,
  defaultNodeId,
  MAX_IDENTITY_VALUE_BYTES,
  MAX_NODES,
  MAX_SESSION_VALUE_BYTES,
  MAX_SESSIONS,
  MAX_SMALL_VALUE_BYTES,
  openDatabase,
} from "./adapter-set.js";
import { StopStack } from "./stop-stack.js";

/** Names of the fleet's streams and buckets: one set per NATS account. */
export const FLEET_NAMES = {
  jobStream: "IMGFLEET_JOBS",
  jobSubject: "imgfleet.jobs",
  workers: "imgfleet-workers",
  usageStream: "IMGFLEET_USAGE",
  usageSubject: "imgfleet.usage",
  identityBucket: "imgfleet-identity",
  nodesBucket: "imgfleet-nodes",
  leasesBucket: "imgfleet-leases",
  flagsBucket: "imgfleet-flags",
  sessionsBucket: "imgfleet-sessions",
} as const;

/** Sealed usage batches the stream holds while the aggregator is away; spools hold the rest. */
const USAGE_STREAM_CAPACITY = 100_000;
/** One attempt of a worker's fetch or post to an API node; the job's deadline bounds the retries. */
const DATA_PATH_ATTEMPT_MS = 5000;
/** Well under the default 15 s request deadline, so a job of a dead worker node still has time to run elsewhere. */
const ACK_WAIT_MS = 6000;
/** Flags: a few dozen in practice; a flag with per-tenant overrides is at most this large. */
const MAX_FLAGS = 1000;
const MAX_FLAG_VALUE_BYTES = 256 * 1024;

/** Queue stats: fresh for API nodes, which admit on them; each refresh is one or two JetStream API requests. */
const ADMISSION_STATS_REFRESH_MS = 250;
const REPORTED_STATS_REFRESH_MS = 2_000;

/**
 * The fleet adapters: JetStream for the job queue and the usage log, NATS
 * KV buckets for identity, discovery and leases (replicated ×3 on a
 * cluster), PostgreSQL for the management plane, HTTP between nodes for the
 * image bytes. Each bucket and stream is created if absent; whatever was
 * opened is closed again, in reverse, when a later one fails.
 */
export async function createFleetAdapters(
  config: Readonly<Config>,
  logger: Logger,
  wire?: WireRejections,
): Promise<Adapters> {
  const nodeId = config.fleet.nodeId ?? defaultNodeId();
  const opened = new StopStack(logger);
  return opened.orUnwind(async () => {
    const db = await opened.start(
      "database",
      () => openDatabase(config),
      (d) => d.close(),
    );
    const nc = await opened.start(
      "nats",
      () => connectFleet(config, nodeId, logger),
      (c) => c.drain().catch(() => c.close()),
    );
    const replicas: Replicas = config.fleet.replicas ?? (config.fleet.nats.servers.length >= 3 ? 3 : 1);
    const queue = await opened.start(
      "job-queue",
      () => openJobQueue(nc, config, replicas, { logger, wire }),
      (q) => q.close(),
    );
    const buckets = await openBuckets(nc, config, replicas, opened);
    const usageLog = await opened.start(
      "usage-log",
      () => openUsageLog(nc, replicas, { logger, wire }),
      (log) => log.close(),
    );
    const staging = StagingTable.fromConfig(config);
    const pending = new PendingResults();
    const remote = new HttpDataPath({
      clusterSecret: config.fleet.clusterSecret as string,
      attemptTimeoutMs: DATA_PATH_ATTEMPT_MS,
      maxResponseBytes: config.limits.maxInputBytes,
    });
    opened.defer("data-path", () => remote.close());
    return {
      nodeId,
      fleet: true,
      queue,
      staging,
      pending,
      dataPath: new FleetDataPath(nodeId, new LocalDataPath(staging, pending), remote),
      db,
      ...buckets,
      usageLog,
      brokerWarning: serverVersionWarning(nc),
      brokerVersion: nc.info?.version ?? null,
      close: () => opened.unwind(),
    };
  });
}

function connectFleet(config: Readonly<Config>, nodeId: string, logger: Logger): Promise<NatsConnection> {
  const { nats } = config.fleet;
  return connectNats(
    {
      servers: nats.servers,
      name: `imgfleet ${nodeId}`,
      connectTimeoutMs: nats.connectTimeoutMs,
      attempts: nats.connectAttempts,
    },
    logger,
  );
}

function openJobQueue(
  nc: NatsConnection,
  config: Readonly<Config>,
  replicas: Replicas,
  report: Reporting,
): Promise<JetStreamJobQueue> {
  return JetStreamJobQueue.open(nc, {
    stream: FLEET_NAMES.jobStream,
    subject: FLEET_NAMES.jobSubject,
    durable: FLEET_NAMES.workers,
    capacity: config.queue.capacity,
    maxAttempts: config.queue.maxAttempts,
    replicas,
    // A worker node that died: its job goes to another worker after this. Live workers signal
    // progress every 2 s (working()), so this need not cover a whole job, only a missed signal or two.
    ackWaitMs: ACK_WAIT_MS,
    // Admission reads the stats on every request; other roles only report them (health, metrics).
    statsRefreshMs: configuredParts(config).has("public-api")
      ? ADMISSION_STATS_REFRESH_MS
      : REPORTED_STATS_REFRESH_MS,
    ...report,
  });
}

type Replicas = 1 | 3;

/** Where an adapter logs, and reports messages it refuses to read. */
interface Reporting {
  logger: Logger;
  wire: WireRejections | undefined;
}

type Buckets = Pick<Adapters, "identityKv" | "nodesKv" | "leasesKv" | "flagsKv" | "sessionsKv">;

/** The KV buckets, each closed by `opened` when it unwinds. */
async function openBuckets(
  nc: NatsConnection,
  config: Readonly<Config>,
  replicas: Replicas,
  opened: StopStack,
): Promise<Buckets> {
  const { fleet, auth, console: consoleSettings } = config;
  const kv = (bucket: string, maxAgeMs: number, maxEntries: number, maxValueBytes: number) =>
    opened.start(
      bucket,
      () =>
        retryTransient(() =>
          NatsKeyValue.open(nc, { bucket, maxAgeMs, maxEntries, maxValueBytes, replicas }),
        ),
      (bucket) => bucket.close(),
    );
  return {
    identityKv: await kv(FLEET_NAMES.identityBucket, 0, auth.maxRecords, MAX_IDENTITY_VALUE_BYTES),
    nodesKv: await kv(FLEET_NAMES.nodesBucket, fleet.discoveryTtlMs, MAX_NODES, MAX_SMALL_VALUE_BYTES),
    leasesKv: await kv(FLEET_NAMES.leasesBucket, fleet.leaseTtlMs, MAX_NODES, MAX_SMALL_VALUE_BYTES),
    flagsKv: await kv(FLEET_NAMES.flagsBucket, 0, MAX_FLAGS, MAX_FLAG_VALUE_BYTES),
    sessionsKv: await kv(
      FLEET_NAMES.sessionsBucket,
      consoleSettings.sessionLifetimeMs,
      MAX_SESSIONS,
      MAX_SESSION_VALUE_BYTES,
    ),
  };
}

function openUsageLog(nc: NatsConnection, replicas: Replicas, report: Reporting): Promise<JetStreamUsageLog> {
  return retryTransient(() =>
    JetStreamUsageLog.open(nc, {
      stream: FLEET_NAMES.usageStream,
      subject: FLEET_NAMES.usageSubject,
      capacity: USAGE_STREAM_CAPACITY,
      replicas,
      ...report,
    }),
  );
}
