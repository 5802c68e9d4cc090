/**
 * The ports: every interface the domain depends on where a deployment picks
 * the implementation. Each port's adapters live beside it; they are chosen in
 * one place, `app/adapters.ts` (embedded) and `app/fleet-adapters.ts` (fleet),
 * and each has a contract suite that every adapter must pass. See
 * docs/development.md, "Adding an adapter for a port".
 */

/** Database: PostgreSQL-dialect SQL with transactions (PgliteDatabase embedded; PostgresDatabase). */
export type { Database, SqlExecutor } from "../db/database.js";
/** Authenticator: who is calling `/v1`, from the Authorization header (KeyAuthenticator; anonymousAccess). */
export type { Authenticator, Principal } from "../identity/authenticator.js";
/** KeyValue: watched string buckets with compare-and-set and max age (MemoryKeyValue; NatsKeyValue). */
export type { KeyValue, KvChange, KvEntry, KvWatch } from "../kv/key-value.js";
/** JobQueue: bounded at-least-once queue of job control messages (MemoryJobQueue; JetStreamJobQueue). */
export type { Delivery, JobMessage, JobQueue, QueueStats, StagedRef } from "../queue/job-queue.js";
export { QueueFullError } from "../queue/job-queue.js";
/** JobDataPath: how a worker fetches a job's staged bytes and returns its outcome (LocalDataPath; FleetDataPath over HTTP). */
export type { JobDataPath } from "../staging/data-path.js";
export type { JobOutcome, WorkerTimings } from "../staging/job-outcome.js";
/** UsageLog: carries sealed usage batches from spools to the aggregator (MemoryUsageLog; JetStreamUsageLog). */
export type { UsageConsumer, UsageLog } from "../usage/usage-log.js";
