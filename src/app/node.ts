import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApi } from "../api/server.js";
import { type Config, type Role, resolveRoles } from "../config/schema.js";
import { type Flags, startFlags } from "../flags/flags.js";
import { Discovery, type NodeInfo } from "../fleet/discovery.js";
import { Singletons } from "../fleet/singletons.js";
import { type Identity, startIdentity } from "../identity/identity.js";
import { outbox } from "../identity/outbox.js";
import { createMetrics, type Metrics } from "../metrics/metrics.js";
import { EventLog } from "../ops/events.js";
import { summariseAll } from "../ops/metric-summary.js";
import { type Ops, startOps } from "../ops/ops.js";
import { deadLetters } from "../queue/dead-letters.js";
import { DrainRate } from "../resize/drain-rate.js";
import { ResizeService } from "../resize/resize-service.js";
import { ConsoleSessions } from "../session/sessions.js";
import { startUsage, type Usage } from "../usage/usage.js";
import { findJemalloc } from "../workers/spawn.js";
import { WorkerPool } from "../workers/worker-pool.js";
import { type Adapters, createAdapters } from "./adapters.js";
import { lockDataDir } from "./data-dir-lock.js";
import { createLogger } from "./logger.js";
import { readinessOf, refreshLiveGauges } from "./readiness.js";
import { VERSION } from "./version.js";

export interface ImgfleetNode {
  readonly config: Readonly<Config>;
  readonly roles: ReadonlySet<Role>;
  readonly api: FastifyInstance;
  /** The worker processes; null without the worker role. */
  readonly pool: WorkerPool | null;
  readonly adapters: Adapters;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly identity: Identity;
  readonly usage: Usage;
  readonly discovery: Discovery;
  readonly singletons: Singletons;
  readonly ops: Ops;
  /** Feature flags: every node evaluates them from memory. */
  readonly flags: Flags;
  /** Listens on the configured host and port, registers in discovery; resolves with the base URL. */
  listen(): Promise<string>;
  /**
   * Graceful stop: refuse new requests (503 + Connection: close), let
   * in-flight ones finish within the grace period, then stop workers and
   * hand over leases. Resolves true when everything finished in time.
   */
  stop(): Promise<boolean>;
}

/** The composition root: wires the roles of one node from config, embedded or fleet. */
export async function createNode(
  config: Readonly<Config>,
  options: { logger?: Logger } = {},
): Promise<ImgfleetNode> {
  const logger = options.logger ?? createLogger(config);
  const metrics = createMetrics();
  const roles = resolveRoles(config);
  // PGlite and the usage spool live under dataDir: one process per directory.
  const unlock = lockDataDir(config.dataDir);
  const cleanups: (() => Promise<void> | void)[] = [unlock];
  const failed = async (error: unknown): Promise<never> => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    throw error;
  };
  const adapters = await createAdapters(config, logger).catch(failed);
  cleanups.push(() => adapters.close());
  if (adapters.brokerWarning) logger.warn(adapters.brokerWarning);
  const parts = await startParts(config, roles, adapters, metrics, logger).catch(failed);
  return assemble(config, roles, adapters, metrics, logger, parts, unlock);
}

type Parts = Awaited<ReturnType<typeof startParts>>;

async function startParts(
  config: Readonly<Config>,
  roles: Set<Role>,
  adapters: Adapters,
  metrics: Metrics,
  logger: Logger,
) {
  const state = { url: undefined as string | undefined, draining: false, started: false };
  const startedAt = Date.now();
  // First, so that what the node does from its very start (leases taken, sweeps) is in the event log.
  const events = new EventLog(adapters.db, adapters.nodeId, (error) =>
    logger.warn({ err: error }, "could not record an operations event (database unavailable?)"),
  );
  const singletons = new Singletons({
    kv: adapters.leasesKv,
    holder: adapters.nodeId,
    ttlMs: config.fleet.leaseTtlMs,
    logger,
    report: (name, held) => metrics.leaseHeld.set({ lease: name }, held ? 1 : 0),
    // Taking over a dead holder's work is self-healing: worth an event, never a page.
    onChange: (name, held) =>
      void events.record(
        held ? "lease.acquired" : "lease.lost",
        held
          ? `${adapters.nodeId} took the ${name} lease and runs it now`
          : `${adapters.nodeId} lost the ${name} lease`,
        { lease: name },
      ),
  });
  let pool: WorkerPool | null = null;
  const self = (): NodeInfo => ({
    id: adapters.nodeId,
    roles: [...roles],
    version: VERSION,
    url: state.url ?? "",
    startedAt,
    load: {
      inFlight: adapters.pending.size,
      queueDepth: adapters.queue.stats().depth,
      workersBusy: pool?.busyCount ?? 0,
      workers: pool?.workers().length ?? 0,
      rssBytes: process.memoryUsage.rss(),
    },
  });
  const discovery = new Discovery({
    kv: adapters.nodesKv,
    self,
    refreshMs: config.fleet.discoveryRefreshMs,
    ttlMs: config.fleet.discoveryTtlMs,
    logger,
  });
  const control = roles.has("control");
  const identity = await startIdentity({
    config,
    db: adapters.db,
    kv: adapters.identityKv,
    metrics: metrics.identity,
    logger,
    dataPlane: roles.has("api"),
    publisher: control ? singletons.create("outbox-publisher") : null,
    limitShare: () => 1 / discovery.apiNodeCount(),
  });
  const usage = await startUsage({
    config,
    db: adapters.db,
    log: adapters.usageLog,
    nodeId: adapters.nodeId,
    metrics: metrics.usage,
    logger,
    meters: roles.has("api"),
    aggregatorLease: control ? singletons.create("usage-aggregator") : null,
    onArchiveSwept: (removed) =>
      void events.record("sweep", `removed ${removed} usage archive files past their retention`, {
        action: "archive-swept",
        count: removed,
      }),
  }).catch(async (error: unknown) => {
    await identity.stop();
    throw error;
  });
  if (roles.has("worker")) pool = startPool(config, adapters, metrics, logger);
  const ops = await startOps({
    events,
    config,
    db: adapters.db,
    nodeId: adapters.nodeId,
    discovery,
    singletons,
    metrics,
    logger,
    control,
    leasesKv: adapters.leasesKv,
  });
  const flags = await startFlags({
    kv: adapters.flagsKv,
    db: adapters.db,
    events,
    logger,
    checkTenant: async (id) => void (await identity.admin.getTenant(id)),
  }).catch(async (error: unknown) => {
    await pool?.stop();
    await ops.stop();
    await usage.stop();
    await identity.stop();
    throw error;
  });
  return { state, singletons, discovery, identity, usage, ops, flags, startedAt, pool: () => pool };
}

function startPool(
  config: Readonly<Config>,
  adapters: Adapters,
  metrics: Metrics,
  logger: Logger,
): WorkerPool {
  const jemalloc = findJemalloc(config.workers.jemalloc);
  return new WorkerPool({
    count: config.workers.count,
    maxRssBytes: config.workers.maxRssMb * 2 ** 20,
    jemalloc,
    queue: adapters.queue,
    dataPath: adapters.dataPath,
    metrics,
    logger,
    deadLetter: (entry) => deadLetters.record(adapters.db, { ...entry, workerNode: adapters.nodeId }),
  });
}

async function assemble(
  config: Readonly<Config>,
  roles: Set<Role>,
  adapters: Adapters,
  metrics: Metrics,
  logger: Logger,
  parts: Parts,
  unlock: () => void,
): Promise<ImgfleetNode> {
  const { state, singletons, discovery, identity, usage, ops, flags } = parts;
  const pool = parts.pool();
  const service = new ResizeService({
    config,
    ...adapters,
    drain: new DrainRate(),
    metrics,
    selfUrl: () => (adapters.fleet ? state.url : undefined),
    // AVIF costs several times WebP's CPU: format=auto offers it per tenant, by flag.
    autoChoices: (tenant) => ({ avif: flags.cache.enabled("avif-auto", tenant) }),
  });
  const readiness = () => readinessOf({ adapters, pool, config, roles, state, identity, singletons });
  const api = await buildApi({
    config,
    logger,
    metrics,
    service,
    readiness,
    refreshGauges: () => {
      refreshLiveGauges(metrics, adapters, config.dataDir);
      usage.refreshGauges();
    },
    isDraining: () => state.draining,
    identity,
    meter: usage.meter,
    db: adapters.db,
    publicApi: roles.has("api"),
    internal:
      adapters.fleet && roles.has("api") && config.fleet.clusterSecret
        ? { staging: adapters.staging, pending: adapters.pending, clusterSecret: config.fleet.clusterSecret }
        : null,
    nodes: () => discovery.list(),
    ops,
    outboxBacklog: () => outbox.backlog(adapters.db),
    flags,
    nodeId: adapters.nodeId,
    sessions: roles.has("api")
      ? new ConsoleSessions({
          kv: adapters.sessionsKv,
          settings: config.console,
          keys: identity.keys,
          cache: identity.cache,
        })
      : undefined,
    report: {
      config,
      db: adapters.db,
      node: {
        id: adapters.nodeId,
        roles: [...roles],
        fleet: adapters.fleet,
        startedAt: parts.startedAt,
        brokerVersion: adapters.brokerVersion,
      },
      nodes: () => discovery.list(),
      events: (limit) => ops.events.list({ limit }),
      flags: () => flags.admin.list(),
      metrics: metrics.registry,
      refreshMetrics: () => {
        refreshLiveGauges(metrics, adapters, config.dataDir);
        usage.refreshGauges();
      },
      seriesNow: () => summariseAll(ops.history, Date.now()),
    },
  });
  if (pool) {
    await pool.start();
    logger.info(
      { workers: config.workers.count, queueCapacity: config.queue.capacity },
      `worker pool ready: ${config.workers.count} worker processes`,
    );
  }
  state.started = true;
  return {
    config,
    roles,
    api,
    pool,
    adapters,
    metrics,
    logger,
    identity,
    usage,
    discovery,
    singletons,
    ops,
    flags,
    async listen() {
      await api.listen({ host: config.server.host, port: config.server.port });
      const { port } = api.server.address() as AddressInfo;
      const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
      const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
      state.url = config.fleet.advertiseUrl ?? url;
      await discovery.start();
      logger.info(
        { url, port, node: adapters.nodeId, roles: [...roles], fleet: adapters.fleet },
        `imgfleet listening on ${url} (${[...roles].join(", ")}${adapters.fleet ? ", fleet" : ", embedded"})`,
      );
      return url;
    },
    async stop() {
      const stopStarted = Date.now();
      state.draining = true;
      const finished = await closeWithin(api, config.server.shutdownGraceMs);
      if (!finished) {
        logger.error(
          { graceMs: config.server.shutdownGraceMs },
          "in-flight requests did not finish within server.shutdownGraceMs; their connections were closed",
        );
      }
      const httpClosedMs = Date.now() - stopStarted;
      await pool?.stop();
      await ops.stop();
      flags.stop();
      await discovery.stop();
      await usage.stop();
      await identity.stop();
      await adapters.close();
      unlock();
      logger.info(
        { httpClosedMs, workersStoppedMs: Date.now() - stopStarted - httpClosedMs },
        "HTTP server closed, worker processes stopped and leases handed over",
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
