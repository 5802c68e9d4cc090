import type { Logger } from "pino";
import { type Config, resolveRoles } from "../config/schema.js";
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
import {
  type Adapters,
  defaultNodeId,
  MAX_IDENTITY_VALUE_BYTES,
  MAX_SESSION_VALUE_BYTES,
  MAX_SESSIONS,
  MAX_SMALL_VALUE_BYTES,
  openDatabase,
} from "./adapters.js";

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
const MAX_NODES = 10_000;
/** Well under the default 15 s request deadline, so a job of a dead worker node still has time to run elsewhere. */
const ACK_WAIT_MS = 6000;
/** Flags: a few dozen in practice; a flag with per-tenant overrides is at most this large. */
const MAX_FLAGS = 1000;
const MAX_FLAG_VALUE_BYTES = 256 * 1024;

/**
 * The fleet adapters: JetStream for the job queue and the usage log, NATS
 * KV buckets for identity, discovery and leases (replicated ×3 on a
 * cluster), PostgreSQL for the management plane, HTTP between nodes for the
 * image bytes. Each bucket and stream is created if absent.
 */
/** Queue stats: fresh for API nodes, which admit on them; each refresh is one or two JetStream API requests. */
const ADMISSION_STATS_REFRESH_MS = 250;
const REPORTED_STATS_REFRESH_MS = 2_000;

export async function createFleetAdapters(config: Readonly<Config>, logger: Logger): Promise<Adapters> {
  const { fleet } = config;
  const nodeId = fleet.nodeId ?? defaultNodeId();
  const replicas = fleet.replicas ?? (fleet.nats.servers.length >= 3 ? 3 : 1);
  const db = await openDatabase(config);
  const nc = await connectNats(
    {
      servers: fleet.nats.servers,
      name: `imgfleet ${nodeId}`,
      connectTimeoutMs: fleet.nats.connectTimeoutMs,
      attempts: fleet.nats.connectAttempts,
    },
    logger,
  ).catch(async (error: unknown) => {
    await db.close();
    throw error;
  });
  let opened: JetStreamJobQueue | undefined;
  try {
    const queue = await JetStreamJobQueue.open(nc, {
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
      statsRefreshMs: resolveRoles(config).has("api")
        ? ADMISSION_STATS_REFRESH_MS
        : REPORTED_STATS_REFRESH_MS,
      logger,
    });
    opened = queue;
    const kv = (bucket: string, maxAgeMs: number, maxEntries: number, maxValueBytes: number) =>
      retryTransient(() => NatsKeyValue.open(nc, { bucket, maxAgeMs, maxEntries, maxValueBytes, replicas }));
    const identityKv = await kv(
      FLEET_NAMES.identityBucket,
      0,
      config.auth.maxRecords,
      MAX_IDENTITY_VALUE_BYTES,
    );
    const nodesKv = await kv(FLEET_NAMES.nodesBucket, fleet.discoveryTtlMs, MAX_NODES, MAX_SMALL_VALUE_BYTES);
    const leasesKv = await kv(FLEET_NAMES.leasesBucket, fleet.leaseTtlMs, MAX_NODES, MAX_SMALL_VALUE_BYTES);
    const flagsKv = await kv(FLEET_NAMES.flagsBucket, 0, MAX_FLAGS, MAX_FLAG_VALUE_BYTES);
    const sessionsKv = await kv(
      FLEET_NAMES.sessionsBucket,
      config.console.sessionLifetimeMs,
      MAX_SESSIONS,
      MAX_SESSION_VALUE_BYTES,
    );
    const usageLog = await retryTransient(() =>
      JetStreamUsageLog.open(nc, {
        stream: FLEET_NAMES.usageStream,
        subject: FLEET_NAMES.usageSubject,
        capacity: USAGE_STREAM_CAPACITY,
        replicas,
      }),
    );
    const staging = new StagingTable(config.staging.maxBytes);
    const pending = new PendingResults();
    const remote = new HttpDataPath({
      clusterSecret: fleet.clusterSecret as string,
      attemptTimeoutMs: DATA_PATH_ATTEMPT_MS,
      maxResponseBytes: config.limits.maxInputBytes,
    });
    return {
      nodeId,
      fleet: true,
      queue,
      staging,
      pending,
      dataPath: new FleetDataPath(nodeId, new LocalDataPath(staging, pending), remote),
      db,
      identityKv,
      nodesKv,
      leasesKv,
      flagsKv,
      sessionsKv,
      usageLog,
      brokerWarning: serverVersionWarning(nc),
      brokerVersion: nc.info?.version ?? null,
      async close() {
        await queue.close();
        await usageLog.close();
        remote.close();
        for (const bucket of [identityKv, nodesKv, leasesKv, flagsKv, sessionsKv]) await bucket.close();
        await nc.drain().catch(() => nc.close());
        await db.close();
      },
    };
  } catch (error) {
    await opened?.close().catch(() => {});
    await nc.close().catch(() => {});
    await db.close();
    throw error;
  }
}
