/**
 * The ports: the interfaces the domain depends on, each with its adapters
 * beside it. Adapters are chosen in one place, `app/adapters.ts`.
 */
export type { Authenticator, Principal } from "../api/authentication.js";
export type { Delivery, JobMessage, JobQueue, QueueStats, StagedRef } from "../queue/job-queue.js";
export { QueueFullError } from "../queue/job-queue.js";
export type { JobDataPath } from "../staging/data-path.js";
export type { JobOutcome, WorkerTimings } from "../staging/job-outcome.js";
