import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { KeyValue } from "../kv/key-value.js";
import type { IdentityMetrics } from "../metrics/identity-metrics.js";
import { jitteredBackoffMs } from "../util/backoff.js";
import {
  encodePublishedValue,
  KEY_PREFIX,
  kvKeyOf,
  type PublishedValue,
  TENANT_PREFIX,
} from "./identity-kv.js";
import { keyStore } from "./key-store.js";
import { outbox } from "./outbox.js";
import { tenantStore, toRecord } from "./tenant-store.js";

const BATCH = 500;
const MAX_BACKOFF_MS = 30_000;

export interface OutboxPublisherDeps {
  db: Database;
  kv: KeyValue;
  metrics: IdentityMetrics;
  logger: Logger;
  /** Catches changes committed by other processes; in-process writes call `poke`. */
  pollMs: number;
}

/**
 * Moves identity changes from the database outbox into the KeyValue bucket
 * the data plane watches. At start it republishes everything (the embedded
 * bucket starts empty; a fleet bucket may hold stale keys). Publishing is
 * at least once and idempotent: each outbox row names a record, and the
 * record's current state is what gets written.
 */
export class OutboxPublisher {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** Consecutive failed rounds: the poll backs off while the database or bucket is down. */
  #failures = 0;

  constructor(private readonly deps: OutboxPublisherDeps) {}

  async start(): Promise<void> {
    await this.#resync();
    await this.#drain();
    this.#schedule();
  }

  /** Publish now: called after an in-process admin write commits. Coalesces concurrent calls. */
  poke(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#drain()
      .then(() => {
        this.#failures = 0;
      })
      .catch((error: unknown) => this.#failed(error))
      .finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#stopped) {
          this.#again = false;
          void this.poke();
        }
      });
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    // Exponential backoff while failing, up to 30 s; jitter keeps a fleet's publishers out of lockstep.
    const delay = jitteredBackoffMs(this.#failures + 1, this.deps.pollMs, MAX_BACKOFF_MS);
    this.#timer = setTimeout(() => void this.poke().finally(() => this.#schedule()), delay);
    this.#timer.unref();
  }

  async #drain(): Promise<void> {
    const { db, metrics } = this.deps;
    for (;;) {
      const rows = await outbox.next(db, BATCH);
      if (rows.length === 0) break;
      const committedAt = new Map<string, number>();
      for (const row of rows)
        committedAt.set(row.ref, Math.max(committedAt.get(row.ref) ?? 0, row.committedAt));
      for (const [ref, at] of committedAt) await this.#publishRef(ref, at);
      await outbox.remove(
        db,
        rows.map((r) => r.seq),
      );
      metrics.published.inc(committedAt.size);
      if (rows.length < BATCH) break;
    }
    metrics.outboxBacklog.set(await outbox.backlog(db));
  }

  #publishRef(ref: string, committedAt: number): Promise<void> {
    return publishRef(this.deps.db, this.deps.kv, ref, committedAt);
  }

  async #put(value: PublishedValue): Promise<void> {
    await this.deps.kv.put(kvKeyOf(value.kind, value.record.id), encodePublishedValue(value));
  }

  async #resync(): Promise<void> {
    const { db, kv, logger } = this.deps;
    const started = Date.now();
    const [tenants, keys] = await Promise.all([tenantStore.records(db), keyStore.records(db)]);
    const wanted = new Set<string>();
    for (const record of tenants) {
      wanted.add(kvKeyOf("tenant", record.id));
      await this.#put({ kind: "tenant", record, committedAt: null });
    }
    for (const record of keys) {
      wanted.add(kvKeyOf("key", record.id));
      await this.#put({ kind: "key", record, committedAt: null });
    }
    const present = [...(await kv.keys(TENANT_PREFIX)), ...(await kv.keys(KEY_PREFIX))];
    const stale = present.filter((k) => !wanted.has(k));
    // Looked up again rather than deleted: a key created since the read above is live, not stale.
    for (const key of stale) await publishRef(db, kv, refOfKvKey(key), null);
    logger.info(
      { tenants: tenants.length, keys: keys.length, removed: stale.length, ms: Date.now() - started },
      "identity data plane published from the database",
    );
  }

  #failed(error: unknown): void {
    this.#failures++;
    this.deps.metrics.publishErrors.inc();
    // First failure and then every tenth: a long outage should not flood the log.
    if (this.#failures % 10 !== 1) return;
    this.deps.logger.warn(
      { err: error, failures: this.#failures },
      "could not publish identity changes (retrying with backoff): new keys, revocations and limit changes wait until the database and KeyValue store answer; check the database",
    );
  }
}

/**
 * Writes one record's current state from the database to the bucket
 * (idempotent). The outbox publisher does this for every change; an API node
 * that is not running the publisher does it too, right after its own admin
 * write commits, so its change reaches every node without waiting for the
 * publisher's next poll (which then writes the same state again).
 */
export async function publishRef(
  db: Database,
  kv: KeyValue,
  ref: string,
  committedAt: number | null,
): Promise<void> {
  const [kind, id = ""] = ref.split(":") as ["tenant" | "key", string];
  const put = (value: PublishedValue) =>
    kv.put(kvKeyOf(value.kind, value.record.id), encodePublishedValue(value));
  if (kind === "tenant") {
    const tenant = await tenantStore.get(db, id);
    if (!tenant || tenant.status === "deleted") return kv.delete(kvKeyOf("tenant", id));
    await put({ kind, record: toRecord(tenant), committedAt });
  } else {
    const record = await keyStore.record(db, id);
    if (!record) return kv.delete(kvKeyOf("key", id));
    await put({ kind, record, committedAt });
  }
}

/** `key.<id>` → `key:<id>`, `tenant.<id>` → `tenant:<id>`. */
function refOfKvKey(kvKey: string): string {
  return kvKey.startsWith(KEY_PREFIX)
    ? `key:${kvKey.slice(KEY_PREFIX.length)}`
    : `tenant:${kvKey.slice(TENANT_PREFIX.length)}`;
}
