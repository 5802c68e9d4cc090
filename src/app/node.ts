import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Readiness } from "../api/routes/health.js";
import { buildApi } from "../api/server.js";
import type { Config } from "../config/schema.js";
import { type Identity, startIdentity } from "../identity/identity.js";
import { outbox } from "../identity/outbox.js";
import { createMetrics, type Metrics } from "../metrics/metrics.js";
import { DrainRate } from "../resize/drain-rate.js";
import { ResizeService } from "../resize/resize-service.js";
import { startUsage, type Usage } from "../usage/usage.js";
import { findJemalloc } from "../workers/spawn.js";
import { WorkerPool } from "../workers/worker-pool.js";
import { type Adapters, createAdapters } from "./adapters.js";
import { lockDataDir } from "./data-dir-lock.js";
import { createLogger } from "./logger.js";

/** Staging above this share of its bound makes /readyz say "saturated" before requests start failing. */
const SATURATION_SHARE = 0.9;

export interface ImgfleetNode {
  readonly config: Readonly<Config>;
  readonly api: FastifyInstance;
  readonly pool: WorkerPool;
  readonly adapters: Adapters;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly identity: Identity;
  readonly usage: Usage;
  /** Listens on the configured host and port; resolves with the base URL. */
  listen(): Promise<string>;
  /**
   * Graceful stop: refuse new requests (503 + Connection: close), let
   * in-flight ones finish within the grace period, then stop workers.
   * Resolves true when everything finished in time.
   */
  stop(): Promise<boolean>;
}

/** The composition root: wires every role of an embedded node from config. */
export async function createNode(
  config: Readonly<Config>,
  options: { logger?: Logger } = {},
): Promise<ImgfleetNode> {
  const logger = options.logger ?? createLogger(config);
  const metrics = createMetrics();
  // PGlite and the usage spool both live under dataDir: one process per directory.
  const unlock = lockDataDir(config.dataDir);
  const adapters = await createAdapters(config).catch((error: unknown) => {
    unlock();
    throw error;
  });
  const identity = await startIdentity({
    config,
    db: adapters.db,
    kv: adapters.identityKv,
    metrics: metrics.identity,
    logger,
  }).catch(async (error: unknown) => {
    await adapters.close();
    unlock();
    throw error;
  });
  const usage = await startUsage({
    config,
    db: adapters.db,
    log: adapters.usageLog,
    nodeId: adapters.nodeId,
    metrics: metrics.usage,
    logger,
  }).catch(async (error: unknown) => {
    await identity.stop();
    await adapters.close();
    unlock();
    throw error;
  });
  const jemalloc = findJemalloc(config.workers.jemalloc);
  const pool = new WorkerPool({
    count: config.workers.count,
    maxRssBytes: config.workers.maxRssMb * 2 ** 20,
    jemalloc,
    queue: adapters.queue,
    dataPath: adapters.dataPath,
    metrics,
    logger,
  });
  const drain = new DrainRate();
  const service = new ResizeService({ config, ...adapters, drain, metrics });
  let draining = false;
  let started = false;
  const readiness = (): Readiness => readinessOf({ adapters, pool, config, draining, started, identity });
  const refreshGauges = () => {
    refreshLiveGauges(metrics, adapters);
    usage.refreshGauges();
  };
  const api = await buildApi({
    config,
    logger,
    metrics,
    service,
    readiness,
    refreshGauges,
    isDraining: () => draining,
    identity,
    meter: usage.meter,
    outboxBacklog: () => outbox.backlog(adapters.db),
    db: adapters.db,
  });
  await pool.start();
  started = true;
  logger.info(
    { workers: config.workers.count, jemalloc: jemalloc ?? "off", queueCapacity: config.queue.capacity },
    `worker pool ready: ${config.workers.count} worker processes${jemalloc ? " with jemalloc" : ""}`,
  );
  return {
    config,
    api,
    pool,
    adapters,
    metrics,
    logger,
    identity,
    usage,
    async listen() {
      await api.listen({ host: config.server.host, port: config.server.port });
      const { port } = api.server.address() as AddressInfo;
      const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
      const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
      logger.info({ url, port }, `imgfleet listening on ${url}`);
      return url;
    },
    async stop() {
      const stopStarted = Date.now();
      draining = true;
      const finished = await closeWithin(api, config.server.shutdownGraceMs);
      if (!finished) {
        logger.error(
          { graceMs: config.server.shutdownGraceMs },
          "in-flight requests did not finish within server.shutdownGraceMs; their connections were closed",
        );
      }
      const httpClosedMs = Date.now() - stopStarted;
      await pool.stop();
      await usage.stop();
      await identity.stop();
      await adapters.close();
      unlock();
      logger.info(
        { httpClosedMs, workersStoppedMs: Date.now() - stopStarted - httpClosedMs },
        "HTTP server closed and worker processes stopped",
      );
      return finished;
    },
  };
}

async function closeWithin(api: FastifyInstance, graceMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const closed = api.close().then(() => true);
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const finished = await Promise.race([closed, expired]);
  clearTimeout(timer);
  if (!finished) {
    api.server.closeAllConnections();
    await closed;
  }
  return finished;
}

function readinessOf(s: {
  adapters: Adapters;
  pool: WorkerPool;
  config: Readonly<Config>;
  draining: boolean;
  started: boolean;
  identity: Identity;
}): Readiness {
  const queue = s.adapters.queue.stats();
  const workers = s.pool.workers().length;
  const reasons: string[] = [];
  if (!s.started) reasons.push("starting");
  if (s.draining) reasons.push("draining");
  if (workers === 0) reasons.push("no worker process is running");
  if (!s.identity.cache.loaded) reasons.push("API keys not loaded yet");
  if (queue.depth >= queue.capacity) reasons.push("job queue full");
  if (s.adapters.staging.bytes >= s.adapters.staging.maxBytes * SATURATION_SHARE)
    reasons.push("upload staging nearly full");
  return {
    ready: reasons.length === 0,
    reasons,
    queue: { depth: queue.depth, capacity: queue.capacity, oldestAgeMs: queue.oldestAgeMs },
    workers: { running: workers, busy: s.pool.busyCount, configured: s.config.workers.count },
  };
}

function refreshLiveGauges(metrics: Metrics, adapters: Adapters): void {
  const q = adapters.queue.stats();
  metrics.queueDepth.set(q.depth);
  metrics.queueCapacity.set(q.capacity);
  metrics.queueOldestAge.set(q.oldestAgeMs / 1000);
  metrics.stagingBytes.set(adapters.staging.bytes);
  metrics.stagingCapacity.set(adapters.staging.maxBytes);
}
