import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { closeAllConnections } from "../api/request-life.js";
import { type ApiDeps, buildApi } from "../api/server.js";
import { type Part, partsOf } from "../config/roles.js";
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
import type { ReportSources } from "../report/sources.js";
import { DrainRate } from "../resize/drain-rate.js";
import { ResizeService } from "../resize/resize-service.js";
import { ConsoleSessions } from "../session/sessions.js";
import { startUsage, type Usage } from "../usage/usage.js";
import { WireRejections } from "../wire/wire.js";
import { describeJemalloc, findJemalloc } from "../workers/spawn.js";
import { WorkerPool } from "../workers/worker-pool.js";
import { type Adapters, createAdapters } from "./adapters.js";
import { lockDataDir } from "./data-dir-lock.js";
import { createLogger } from "./logger.js";
import { logReadinessChanges, readinessOf, refreshLiveGauges } from "./readiness.js";
import { StopStack } from "./stop-stack.js";
import { VERSION } from "./version.js";

export interface ImgfleetNode {
  readonly config: Readonly<Config>;
  readonly roles: ReadonlySet<Role>;
  /** What this node runs, by the names of the role table (config/roles.ts). */
  readonly parts: ReadonlySet<Part>;
  readonly api: FastifyInstance;
  /** The worker processes; null without the `worker-pool` part. */
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
  /**
   * Listens on the configured host and port, registers in discovery; resolves
   * with the base URL. When it cannot (the port is taken), everything the
   * node started is stopped before it rejects.
   */
  listen(): Promise<string>;
  /**
   * Graceful stop: refuse new requests (503 + Connection: close), let
   * in-flight ones finish within the grace period, then stop the rest in the
   * reverse order of their start. Resolves true when everything finished in time.
   */
  stop(): Promise<boolean>;
}

/** What every part of a node is wired from. */
interface NodeBase {
  config: Readonly<Config>;
  roles: ReadonlySet<Role>;
  parts: ReadonlySet<Part>;
  metrics: Metrics;
  logger: Logger;
  /** Where messages read from the network and refused are reported: logged and counted. */
  wire: WireRejections;
  adapters: Adapters;
  /** Everything started so far; stopped in reverse by a failed start and by `stop()`. */
  stack: StopStack;
  state: NodeState;
}

interface NodeState {
  /** This node's URL for other nodes, once it listens. */
  url: string | undefined;
  draining: boolean;
  started: boolean;
  startedAt: number;
  /** Whether in-flight requests finished within the grace period when the HTTP server closed. */
  closedInTime: boolean;
}

/** The node's services, started in this order (and stopped in the reverse). */
interface Services {
  events: EventLog;
  singletons: Singletons;
  discovery: Discovery;
  identity: Identity;
  usage: Usage;
  ops: Ops;
  flags: Flags;
  pool: WorkerPool | null;
}

/**
 * The composition root: wires the parts of one node from config, embedded or
 * fleet. Each part is put on one stop stack as it starts, so a part that
 * fails to start stops every part before it, last first.
 */
export async function createNode(
  config: Readonly<Config>,
  options: { logger?: Logger } = {},
): Promise<ImgfleetNode> {
  const logger = options.logger ?? createLogger(config);
  const roles = resolveRoles(config);
  const metrics = createMetrics();
  const wire = new WireRejections(logger, metrics.wireRejected);
  const stack = new StopStack(logger);
  return stack.orUnwind(async () => {
    // PGlite and the usage spool live under dataDir: one process per directory.
    stack.defer("data-dir-lock", await lockDataDir(config.dataDir));
    const adapters = await stack.start(
      "adapters",
      () => createAdapters(config, logger, wire),
      (a) => a.close(),
    );
    if (adapters.brokerWarning) logger.warn(adapters.brokerWarning);
    const state: NodeState = {
      url: undefined,
      draining: false,
      started: false,
      startedAt: Date.now(),
      closedInTime: true,
    };
    const base: NodeBase = {
      config,
      roles,
      parts: partsOf(roles),
      metrics,
      logger,
      wire,
      adapters,
      stack,
      state,
    };
    const services = await startServices(base);
    // Last on the stack, so it closes first: in-flight requests finish while workers still run.
    const api = await stack.start(
      "http-server",
      () => buildApi(apiDeps(base, services)),
      async (server) => {
        state.closedInTime = await closeWithin(server, config.server.shutdownGraceMs, logger);
      },
    );
    state.started = true;
    return nodeHandle(base, services, api);
  });
}

async function startServices(base: NodeBase): Promise<Services> {
  const { adapters, stack, parts } = base;
  // First, so that what the node does from its very start (leases taken, sweeps) is in the event log.
  const events = new EventLog(adapters.db, adapters.nodeId, (error) =>
    base.logger.warn({ err: error }, "could not record an operations event (database unavailable?)"),
  );
  const singletons = createSingletons(base, events);
  const pool = parts.has("worker-pool") ? createPool(base) : null;
  const discovery = createDiscovery(base, pool);
  const identity = await stack.start(
    "identity",
    () => startIdentityPart(base, singletons, discovery),
    (i) => i.stop(),
  );
  const usage = await stack.start(
    "usage",
    () => startUsagePart(base, singletons, events),
    (u) => u.stop(),
  );
  const ops = await stack.start(
    "ops",
    () => startOps({ ...base, ...adapters, events, discovery, singletons, leasesKv: adapters.leasesKv }),
    (o) => o.stop(),
  );
  const flags = await stack.start(
    "flags",
    () => startFlagsPart(base, events, identity),
    (f) => f.stop(),
  );
  if (pool) await startPool(base, pool);
  // Deregistered before the rest stops; registered once the node listens.
  stack.defer("discovery", () => discovery.stop());
  return { events, singletons, discovery, identity, usage, ops, flags, pool };
}

function createSingletons(base: NodeBase, events: EventLog): Singletons {
  const { adapters, metrics } = base;
  return new Singletons({
    kv: adapters.leasesKv,
    holder: adapters.nodeId,
    ttlMs: base.config.fleet.leaseTtlMs,
    logger: base.logger,
    wire: base.wire,
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
}

function createDiscovery(base: NodeBase, pool: WorkerPool | null): Discovery {
  const { adapters, state } = base;
  const self = (): NodeInfo => ({
    id: adapters.nodeId,
    roles: [...base.roles],
    version: VERSION,
    url: state.url ?? "",
    startedAt: state.startedAt,
    load: {
      inFlight: adapters.pending.size,
      queueDepth: adapters.queue.stats().depth,
      workersBusy: pool?.busyCount ?? 0,
      workers: pool?.workers().length ?? 0,
      rssBytes: process.memoryUsage.rss(),
    },
  });
  const { discoveryRefreshMs: refreshMs, discoveryTtlMs: ttlMs } = base.config.fleet;
  return new Discovery({
    kv: adapters.nodesKv,
    self,
    refreshMs,
    ttlMs,
    logger: base.logger,
    wire: base.wire,
  });
}

function startIdentityPart(base: NodeBase, singletons: Singletons, discovery: Discovery): Promise<Identity> {
  const { adapters, parts } = base;
  return startIdentity({
    config: base.config,
    db: adapters.db,
    kv: adapters.identityKv,
    metrics: base.metrics.identity,
    logger: base.logger,
    wire: base.wire,
    parts,
    publisher: parts.has("outbox-publisher") ? singletons.create("outbox-publisher") : null,
    limitShare: () => 1 / discovery.apiNodeCount(),
  });
}

function startUsagePart(base: NodeBase, singletons: Singletons, events: EventLog): Promise<Usage> {
  const { adapters, parts } = base;
  return startUsage({
    config: base.config,
    db: adapters.db,
    log: adapters.usageLog,
    nodeId: adapters.nodeId,
    metrics: base.metrics.usage,
    logger: base.logger,
    parts,
    aggregatorLease: parts.has("usage-aggregator") ? singletons.create("usage-aggregator") : null,
    onArchiveSwept: (removed) =>
      void events.record("sweep", `removed ${removed} usage archive files past their retention`, {
        action: "archive-swept",
        count: removed,
      }),
  });
}

function startFlagsPart(base: NodeBase, events: EventLog, identity: Identity): Promise<Flags> {
  return startFlags({
    kv: base.adapters.flagsKv,
    db: base.adapters.db,
    events,
    logger: base.logger,
    checkTenant: async (id) => void (await identity.admin.getTenant(id)),
  });
}

function createPool({ config, adapters, metrics, logger, wire }: NodeBase): WorkerPool {
  return new WorkerPool({
    count: config.workers.count,
    maxRssBytes: config.workers.maxRssMb * 2 ** 20,
    jemalloc: findJemalloc(config.workers.jemalloc),
    queue: adapters.queue,
    dataPath: adapters.dataPath,
    metrics,
    logger,
    wire,
    deadLetter: (entry) => deadLetters.record(adapters.db, { ...entry, workerNode: adapters.nodeId }),
  });
}

/** Recorded before it starts: a pool that spawned some of its workers and then failed stops them too. */
async function startPool({ config, logger, stack }: NodeBase, pool: WorkerPool): Promise<void> {
  stack.defer("worker-pool", () => pool.stop());
  await pool.start();
  logger.info(
    { workers: config.workers.count, queueCapacity: config.queue.capacity, jemalloc: pool.jemalloc ?? null },
    `worker pool ready: ${config.workers.count} worker processes, ${describeJemalloc(config.workers.jemalloc, pool.jemalloc)}`,
  );
}

function apiDeps(base: NodeBase, services: Services): ApiDeps {
  const { config, adapters, parts, state } = base;
  const { identity, usage, discovery, ops, flags, pool, singletons } = services;
  const service = new ResizeService({
    config,
    ...adapters,
    drain: new DrainRate(),
    metrics: base.metrics,
    selfUrl: () => (adapters.fleet ? state.url : undefined),
    // AVIF costs several times WebP's CPU: format=auto offers it per tenant, by flag.
    autoChoices: (tenant) => ({ avif: flags.cache.enabled("avif-auto", tenant) }),
  });
  const internal = adapters.fleet && parts.has("public-api") ? config.fleet.clusterSecret : undefined;
  return {
    config,
    logger: base.logger,
    metrics: base.metrics,
    service,
    readiness: logReadinessChanges(
      () =>
        readinessOf({
          adapters,
          pool,
          config,
          roles: base.roles,
          parts,
          state,
          identity,
          singletons,
          meter: usage.meter,
        }),
      base.logger,
    ),
    refreshGauges: () => refreshGauges(base, usage),
    isDraining: () => state.draining,
    identity,
    meter: usage.meter,
    db: adapters.db,
    parts,
    internal: internal
      ? { staging: adapters.staging, pending: adapters.pending, clusterSecret: internal, wire: base.wire }
      : null,
    nodes: () => discovery.list(),
    ops,
    outboxBacklog: () => outbox.backlog(adapters.db),
    flags,
    nodeId: adapters.nodeId,
    sessions: parts.has("console-sessions") ? consoleSessions(base, identity) : undefined,
    report: reportSources(base, services),
  };
}

function refreshGauges(base: NodeBase, usage: Usage): void {
  refreshLiveGauges(base.metrics, base.adapters, base.config.dataDir);
  usage.refreshGauges();
}

function consoleSessions({ adapters, config, wire }: NodeBase, identity: Identity): ConsoleSessions {
  return new ConsoleSessions({
    wire,
    kv: adapters.sessionsKv,
    settings: config.console,
    keys: identity.keys,
    cache: identity.cache,
  });
}

function reportSources(base: NodeBase, services: Services): ReportSources {
  const { config, adapters } = base;
  const { discovery, ops, flags, usage } = services;
  return {
    config,
    db: adapters.db,
    node: {
      id: adapters.nodeId,
      roles: [...base.roles],
      fleet: adapters.fleet,
      startedAt: base.state.startedAt,
      brokerVersion: adapters.brokerVersion,
    },
    nodes: () => discovery.list(),
    events: (limit) => ops.events.list({ limit }),
    flags: () => flags.admin.list(),
    metrics: base.metrics.registry,
    refreshMetrics: () => refreshGauges(base, usage),
    seriesNow: () => summariseAll(ops.history, Date.now()),
  };
}

function nodeHandle(base: NodeBase, services: Services, api: FastifyInstance): ImgfleetNode {
  const { config, roles, parts, adapters, metrics, logger, stack, state } = base;
  const { pool, identity, usage, discovery, singletons, ops, flags } = services;
  return {
    config,
    roles,
    parts,
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
    listen: () => stack.orUnwind(() => listen(base, api, discovery)),
    async stop() {
      const stopStarted = Date.now();
      state.draining = true;
      await stack.unwind();
      logger.info(
        { stopMs: Date.now() - stopStarted, parts: [...parts] },
        "HTTP server closed, worker processes stopped and leases handed over",
      );
      return state.closedInTime;
    },
  };
}

async function listen(base: NodeBase, api: FastifyInstance, discovery: Discovery): Promise<string> {
  const { config, adapters, roles, parts, state, logger } = base;
  await api.listen({ host: config.server.host, port: config.server.port }).catch((error: unknown) => {
    throw explainListenError(error, config.server);
  });
  const { port } = api.server.address() as AddressInfo;
  const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  state.url = config.fleet.advertiseUrl ?? url;
  await discovery.start();
  logger.info(
    { url, port, node: adapters.nodeId, roles: [...roles], parts: [...parts], fleet: adapters.fleet },
    `imgfleet listening on ${url} (${[...roles].join(", ")}${adapters.fleet ? ", fleet" : ", embedded"})`,
  );
  return url;
}

/** A port in use or not ours to take, said with what to do about it; the error's code is kept. */
function explainListenError(error: unknown, server: { host: string; port: number }): unknown {
  const { code } = error as NodeJS.ErrnoException;
  const where = `${server.host}:${server.port}`;
  const advice =
    code === "EADDRINUSE"
      ? `${where} is already in use by another process (another imgfleet?): stop it, or choose another port with --port or server.port`
      : code === "EACCES"
        ? `this process may not listen on ${where} (ports below 1024 need privileges): choose another port with --port or server.port`
        : null;
  if (!advice) return error;
  return Object.assign(new Error(advice, { cause: error }), { code });
}

/**
 * Closes the HTTP server, letting in-flight requests finish for `graceMs`
 * at most; past it, their connections are closed.
 */
async function closeWithin(api: FastifyInstance, graceMs: number, logger: Logger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const closed = api.close().then(() => true);
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const finished = await Promise.race([closed, expired]);
  clearTimeout(timer);
  if (!finished) {
    logger.error(
      { graceMs },
      "in-flight requests did not finish within server.shutdownGraceMs; their connections were closed",
    );
    closeAllConnections(api);
    await closed;
  }
  return finished;
}
