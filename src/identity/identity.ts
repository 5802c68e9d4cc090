import type { Logger } from "pino";
import type { Authenticator } from "../api/authentication.js";
import { anonymousAccess } from "../api/authentication.js";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import type { KeyValue } from "../kv/key-value.js";
import type { IdentityMetrics } from "../metrics/identity-metrics.js";
import { IdentityAdmin, type IssuedKey } from "./identity-admin.js";
import { IdentityCache } from "./identity-cache.js";
import { KeyAuthenticator } from "./key-authenticator.js";
import { OutboxPublisher } from "./outbox-publisher.js";
import { TenantLimiter } from "./tenant-limiter.js";

export interface Identity {
  /** The management plane (database + outbox + audit). */
  admin: IdentityAdmin;
  /** The data plane (in-memory keys and tenants). */
  cache: IdentityCache;
  keys: KeyAuthenticator;
  /** What guards `/v1/*`: the key authenticator, or anonymous access when `auth.mode` is `none`. */
  tenantAccess: Authenticator;
  /** The first start's admin key, shown once; null on every later start. */
  bootstrapKey: IssuedKey | null;
  stop(): Promise<void>;
}

/** Wires both identity planes: database → outbox → KeyValue bucket → in-memory cache. */
export async function startIdentity(deps: {
  config: Readonly<Config>;
  db: Database;
  kv: KeyValue;
  metrics: IdentityMetrics;
  logger: Logger;
}): Promise<Identity> {
  const { config, db, kv, metrics, logger } = deps;
  const publisher = new OutboxPublisher({ db, kv, metrics, logger, pollMs: config.auth.outboxPollMs });
  const admin = new IdentityAdmin({
    db,
    defaults: { ...config.auth.tenantDefaults, maxInputBytes: null, outputFormats: null },
    onCommit: () => publisher.poke(),
  });
  const cache = new IdentityCache(kv, metrics);
  const bootstrapKey = await admin.bootstrapAdminKey();
  await publisher.start();
  await cache.start();
  const keys = new KeyAuthenticator(cache, new TenantLimiter());
  if (config.auth.mode === "none") {
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
      await publisher.stop();
      cache.stop();
    },
  };
}
