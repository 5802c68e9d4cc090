import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { KeyValue } from "../kv/key-value.js";
import type { EventLog } from "../ops/events.js";
import { FlagAdmin } from "./flag-admin.js";
import { FlagCache } from "./flag-cache.js";
import { FlagStore } from "./flag-store.js";

/** Feature flags on one node: the in-memory cache every role evaluates from, and the admin side. */
export interface Flags {
  cache: FlagCache;
  admin: FlagAdmin;
  stop(): void;
}

export interface FlagsDeps {
  kv: KeyValue;
  db: Database;
  events: EventLog;
  logger: Logger;
  checkTenant: (tenantId: string) => Promise<void>;
}

/** Loads every stored flag before resolving, so the first request is evaluated on current settings. */
export async function startFlags(deps: FlagsDeps): Promise<Flags> {
  const store = new FlagStore(deps.kv);
  const cache = new FlagCache(deps.kv, deps.logger);
  await cache.start();
  const admin = new FlagAdmin({ store, db: deps.db, events: deps.events, checkTenant: deps.checkTenant });
  return { cache, admin, stop: () => cache.stop() };
}
