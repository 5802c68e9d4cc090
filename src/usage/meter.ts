import type { Logger } from "pino";
import type { z } from "zod";
import type { Config } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import type { UsageMetrics } from "../metrics/usage-metrics.js";
import { type MeterRecord, MeterRecordSchema, type UsageBatch } from "./model.js";
import type { UsageSpool } from "./spool/usage-spool.js";

export interface MeterDeps {
  spool: UsageSpool;
  settings: Readonly<Config["usage"]>;
  metrics: UsageMetrics;
  logger: Logger;
  /** Called with each sealed batch (the shipper ships it). */
  onSealed: (batch: UsageBatch) => void;
}

/** After a spool write error, new requests are refused for this long before trying the disk again. */
const WRITE_ERROR_HOLD_MS = 5000;

/**
 * Meters requests on an API node. Each record is journaled to the spool
 * before its response is sent, so a crash cannot lose a request the client
 * saw answered; records are grouped into a batch sealed on a time or size
 * boundary. When the spool is full the node refuses new work (or, with
 * `onFull: serve`, serves it unbilled and counts what it dropped).
 */
export class UsageMeter {
  #sealTimer: NodeJS.Timeout | undefined;
  #writeErrorAt = 0;

  constructor(private readonly deps: MeterDeps) {
    deps.metrics.spoolCapacity.set(deps.settings.spool.maxBytes);
  }

  /** Admission: throws 503 metering-unavailable when usage cannot be recorded and the policy is to refuse. */
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
    if (Date.now() - this.#writeErrorAt < WRITE_ERROR_HOLD_MS) {
      throw new ProblemError(
        "metering-unavailable",
        "this node could not write its usage spool (disk error); retry later or on another node",
        { retryAfterS: 5, extras: { reason: "spool-write-error" } },
      );
    }
  }

  /**
   * Journals one answered request. Throws InvalidMeterRecordError for a
   * record that lacks a billed field (its CPU above all): a bug upstream,
   * which must fail where it happens rather than bill zero in silence.
   */
  record(record: MeterRecord): void {
    const checked = MeterRecordSchema.safeParse(record);
    if (!checked.success) throw new InvalidMeterRecordError(record, checked.error);
    const { spool, settings, metrics } = this.deps;
    if (spool.full && settings.spool.onFull === "serve") {
      metrics.recordsDropped.inc({ reason: "spool-full" });
      return;
    }
    try {
      spool.append(record);
    } catch (error) {
      this.#writeFailed(error);
      return;
    }
    metrics.recordsBuffered.set(spool.openRecords);
    if (spool.openRecords >= settings.maxBatchRecords) this.seal();
    else if (!this.#sealTimer) {
      this.#sealTimer = setTimeout(() => this.seal(), settings.flushIntervalMs);
      this.#sealTimer.unref();
    }
  }

  /** Seals the open batch now (also on shutdown). */
  seal(): void {
    clearTimeout(this.#sealTimer);
    this.#sealTimer = undefined;
    let batch: UsageBatch | null;
    try {
      batch = this.deps.spool.seal();
    } catch (error) {
      this.#writeFailed(error);
      return;
    }
    this.deps.metrics.recordsBuffered.set(0);
    if (!batch) return;
    this.deps.metrics.batchesSealed.inc();
    this.deps.onSealed(batch);
  }

  #writeFailed(error: unknown): void {
    this.#writeErrorAt = Date.now();
    this.deps.metrics.recordsDropped.inc({ reason: "write-error" });
    this.deps.logger.error(
      { err: error },
      "could not write a usage record to the spool: this request goes unbilled and new requests are refused for a few seconds; check the disk under dataDir/usage (full? read-only?)",
    );
  }
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
