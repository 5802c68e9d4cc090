import type { Logger } from "pino";
import type { Part } from "../config/roles.js";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import type { Singleton } from "../fleet/singletons.js";
import type { KeyValue } from "../kv/key-value.js";
import type { IdentityMetrics } from "../metrics/identity-metrics.js";
import type { WireRejections } from "../wire/wire.js";
import { type Authenticator, anonymousAccess } from "./authenticator.js";
import { GuessLimiter } from "./guess-limiter.js";
import { IdentityAdmin, type IssuedKey } from "./identity-admin.js";
import { IdentityCache } from "./identity-cache.js";
import { KeyAuthenticator } from "./key-authenticator.js";
import type { OutboxRef } from "./outbox.js";
import { OutboxPublisher, publishRef } from "./outbox-publisher.js";
import { TenantLimiter } from "./tenant-limiter.js";

export interface Identity {
  /** The management plane (database + outbox + audit). */
  admin: IdentityAdmin;
  /** The data plane (in-memory keys and tenants); loaded only on API nodes. */
  cache: IdentityCache;
  keys: KeyAuthenticator;
  /** What guards `/v1/*`: the key authenticator, or anonymous access when `auth.mode` is `none`. */
  tenantAccess: Authenticator;
  /** The first start's admin key, shown once; null on every later start. */
  bootstrapKey: IssuedKey | null;
  stop(): Promise<void>;
}

export interface IdentityDeps {
  config: Readonly<Config>;
  db: Database;
  kv: KeyValue;
  metrics: IdentityMetrics;
  logger: Logger;
  /** Where an identity value that fails its schema is reported; the data plane forgets that key or tenant. */
  wire?: WireRejections;
  /** The node's parts: with `api-keys`, load the data plane and serve authentication from it. */
  parts: ReadonlySet<Part>;
  /** Control role: run the outbox publisher as this singleton (under its lease); null elsewhere. */
  publisher: Singleton | null;
  /** This node's share of each tenant's limits: 1 / live API nodes. */
  limitShare: () => number;
}

/** Wires both identity planes: database → outbox → KeyValue bucket → in-memory cache. */
export async function startIdentity(deps: IdentityDeps): Promise<Identity> {
  const { config, db, kv, metrics, logger } = deps;
  let publisher: OutboxPublisher | null = null;
  const admin = new IdentityAdmin({
    db,
    defaults: { ...config.auth.tenantDefaults, maxInputBytes: null, outputFormats: null },
    // Where this node runs the publisher it drains the outbox now; elsewhere the node publishes its own change.
    onCommit: (refs) => (publisher ? publisher.poke() : publishNow(db, kv, refs, logger)),
  });
  const dataPlane = deps.parts.has("api-keys");
  const bootstrapKey = dataPlane ? await admin.bootstrapAdminKey() : null;
  // A lone node takes the lease at once, so the bucket is filled before the data plane loads.
  await deps.publisher?.run({
    async start() {
      publisher = new OutboxPublisher({ db, kv, metrics, logger, pollMs: config.auth.outboxPollMs });
      await publisher.start();
    },
    async stop() {
      await publisher?.stop();
      publisher = null;
    },
  });
  const cache = new IdentityCache(kv, metrics, deps.wire);
  if (dataPlane) await cache.start();
  const keys = new KeyAuthenticator(cache, new TenantLimiter(undefined, deps.limitShare), Date.now, {
    guesses: new GuessLimiter({ failuresPerMinute: config.console.signInsPerMinute }),
    onThrottled: (surface, by) => metrics.authThrottled.inc({ surface, by }),
  });
  if (dataPlane && config.auth.mode === "none") {
    logger.warn(
      "auth.mode is 'none': /v1 answers anyone without an API key, and nothing is rate limited per tenant; use it only behind a gateway that authenticates",
    );
  }
  return {
    admin,
    cache,
    keys,
    tenantAccess: config.auth.mode === "none" ? anonymousAccess : keys,
    bootstrapKey,
    async stop() {
      await deps.publisher?.stop();
      cache.stop();
    },
  };
}

/** Best effort: the outbox publisher writes the same state within a poll if this fails. */
async function publishNow(
  db: Database,
  kv: KeyValue,
  refs: readonly OutboxRef[],
  logger: Logger,
): Promise<void> {
  const committedAt = Date.now();
  for (const ref of refs) {
    await publishRef(db, kv, ref, committedAt).catch((error: unknown) =>
      logger.warn(
        { err: error, ref },
        "could not publish an identity change at once; the outbox publisher will",
      ),
    );
  }
}
