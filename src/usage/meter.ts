import type { Logger } from "pino";
import type { z } from "zod";
import type { Config } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import type { UsageMetrics } from "../metrics/usage-metrics.js";
import { RepeatedLog, repeatsNote } from "../util/log-once.js";
import { describeFailure, type StorageFailure, StorageWatch } from "../util/storage.js";
import { type MeterRecord, MeterRecordSchema, type UsageBatch } from "./model.js";
import type { UsageSpool } from "./spool/usage-spool.js";

export interface MeterDeps {
  spool: UsageSpool;
  settings: Readonly<Config["usage"]>;
  metrics: UsageMetrics;
  logger: Logger;
  /** Called with each sealed batch (the shipper ships it). */
  onSealed: (batch: UsageBatch) => void;
  /** How often a spool that failed is probed for space again. */
  probeEveryMs?: number;
  /** Repeated write failures are logged once per this interval, with a count. */
  logEveryMs?: number;
}

const PROBE_EVERY_MS = 1000;
const LOG_EVERY_MS = 10_000;
/** A refused client comes back after this; by then space is usually back or the node is out of rotation. */
const RETRY_AFTER_S = 10;

/**
 * Meters requests on an API node. Each record is journaled to the spool
 * before its response is sent, so a crash cannot lose a request the client
 * saw answered; a record that cannot be journaled (a full disk) throws, so
 * the answer is not sent as a success either. Records are grouped into a
 * batch sealed on a time or size boundary. When the spool is full or its
 * disk refuses writes the node refuses new work (or, with `onFull: serve`,
 * serves it unbilled and counts what it dropped) until a probe finds that
 * the disk takes writes again.
 */
export class UsageMeter {
  #sealTimer: NodeJS.Timeout | undefined;
  readonly #storage: StorageWatch;
  readonly #log: RepeatedLog;

  constructor(private readonly deps: MeterDeps) {
    deps.metrics.spoolCapacity.set(deps.settings.spool.maxBytes);
    this.#log = new RepeatedLog(deps.logEveryMs ?? LOG_EVERY_MS);
    this.#storage = new StorageWatch({
      store: "the usage spool",
      path: deps.spool.dir,
      everyMs: deps.probeEveryMs ?? PROBE_EVERY_MS,
      onRecovered: (failure) => this.#recovered(failure),
    });
  }

  /** Why the spool cannot be written now, or null (for /readyz). */
  get storageFailure(): StorageFailure | null {
    return this.#storage.failure;
  }

  /** Admission: throws 503 (storage-full, metering-unavailable) when usage cannot be recorded and the policy is to refuse. */
  admit(): void {
    const { spool, settings } = this.deps;
    if (settings.spool.onFull === "serve") return;
    if (spool.full) {
      throw new ProblemError(
        "metering-unavailable",
        `this node's usage spool is full (${mib(spool.bytes)} of ${mib(settings.spool.maxBytes)} MiB): usage cannot be recorded until the aggregator catches up; retry later`,
        { retryAfterS: 30, extras: { reason: "spool-full" } },
      );
    }
    const failure = this.#storage.failure;
    if (failure) throw unrecordable(failure);
  }

  /**
   * Journals one answered request. When the spool cannot take the record of
   * a success (status below 400), it throws the ProblemError to answer
   * instead (503 storage-full, or metering-unavailable): a success is never
   * sent unless its record is journaled. A failure's record is best effort:
   * its answer goes out, the record is counted as dropped. Throws
   * InvalidMeterRecordError for a record that lacks a billed field (its CPU
   * above all): a bug upstream, which must fail where it happens rather than
   * bill zero in silence.
   */
  record(record: MeterRecord): void {
    const checked = MeterRecordSchema.safeParse(record);
    if (!checked.success) throw new InvalidMeterRecordError(record, checked.error);
    const { spool, settings, metrics } = this.deps;
    const serve = settings.spool.onFull === "serve";
    if (spool.full && serve) {
      metrics.recordsDropped.inc({ reason: "spool-full" });
      return;
    }
    try {
      spool.append(record);
    } catch (error) {
      const failure = this.#writeFailed(error, "record");
      // `serve`: the operator chose serving over billing; the record is counted as dropped.
      if (!serve && record.status < 400) throw unrecordable(failure);
      return;
    }
    this.#storage.succeeded();
    metrics.recordsBuffered.set(spool.openRecords);
    if (spool.openRecords >= settings.maxBatchRecords) this.seal();
    else this.#armSeal();
  }

  /** Seals the open batch now (also on shutdown). A seal that fails is tried again once the disk takes writes. */
  seal(): void {
    clearTimeout(this.#sealTimer);
    this.#sealTimer = undefined;
    let batch: UsageBatch | null;
    try {
      batch = this.deps.spool.seal();
    } catch (error) {
      // The batch stays open, every record of it in the file: nothing is lost, the seal waits for space.
      this.#writeFailed(error, "seal");
      return;
    }
    this.#storage.succeeded();
    this.deps.metrics.recordsBuffered.set(0);
    if (!batch) return;
    this.deps.metrics.batchesSealed.inc();
    this.deps.onSealed(batch);
  }

  /** Stops probing and writes the pending log counts (shutdown). */
  close(): void {
    clearTimeout(this.#sealTimer);
    this.#storage.close();
    this.#log.close();
  }

  #armSeal(): void {
    if (this.#sealTimer) return;
    this.#sealTimer = setTimeout(() => this.seal(), this.deps.settings.flushIntervalMs);
    this.#sealTimer.unref();
  }

  #writeFailed(error: unknown, what: "record" | "seal"): StorageFailure {
    if (what === "record") this.deps.metrics.recordsDropped.inc({ reason: "write-error" });
    const failure = this.#storage.failed(error);
    this.#log.report("spool-write", (repeats) =>
      this.deps.logger.error(
        { err: error, path: failure.path, code: failure.code, repeats },
        `could not write the usage spool: ${describeFailure(failure)}; requests are refused (503) meanwhile${repeatsNote(repeats, this.#log.intervalMs)}`,
      ),
    );
    return failure;
  }

  #recovered(failure: StorageFailure): void {
    const downS = Math.round((Date.now() - failure.since) / 1000);
    this.deps.logger.warn(
      { path: failure.path, downS },
      `the usage spool takes writes again after ${downS} s (${failure.path}); requests are served again`,
    );
    // A seal that failed meanwhile: the open batch is sealed and shipped now.
    if (this.deps.spool.openRecords > 0) this.#armSeal();
  }
}

/** The answer for work that cannot be billed because the spool cannot be written. */
function unrecordable(failure: StorageFailure): ProblemError {
  if (failure.noSpace) {
    return new ProblemError(
      "storage-full",
      `this node's disk is full (${failure.path}): its usage cannot be recorded, so it takes no work; retry later or on another node`,
      { retryAfterS: RETRY_AFTER_S, extras: { reason: "disk-full", store: "usage-spool" } },
    );
  }
  return new ProblemError(
    "metering-unavailable",
    "this node could not write its usage spool (disk error); retry later or on another node",
    { retryAfterS: RETRY_AFTER_S, extras: { reason: "spool-write-error" } },
  );
}

/** A record the meter refuses to journal: what is missing or wrong, by field. */
export class InvalidMeterRecordError extends Error {
  override readonly name = "InvalidMeterRecordError";
  constructor(record: Partial<MeterRecord>, error: z.ZodError) {
    const fields = error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    super(`request ${String(record.id)}: not a billable usage record (${fields})`);
  }
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}
