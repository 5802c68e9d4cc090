import { join } from "node:path";
import type { Logger } from "pino";
import type { Part } from "../config/roles.js";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import type { Singleton } from "../fleet/singletons.js";
import type { UsageMetrics } from "../metrics/usage-metrics.js";
import { delay } from "../util/time.js";
import { UsageAggregator } from "./aggregator.js";
import { UsageArchive } from "./archive.js";
import { UsageMeter } from "./meter.js";
import { UsageShipper } from "./shipper.js";
import { UsageSpool } from "./spool/usage-spool.js";
import type { UsageLog } from "./usage-log.js";

const HOUR_MS = 3_600_000;

export interface Usage {
  /** Null when `usage.enabled` is false or this node has no API role. */
  meter: UsageMeter | null;
  spool: UsageSpool | null;
  shipper: UsageShipper | null;
  /** Runs on the node holding the aggregator's lease (control role). */
  aggregator: UsageAggregator;
  archive: UsageArchive;
  /**
   * Seals the open batch and waits until the database has committed every
   * batch of this node's spool (tests, shutdown); false if `timeoutMs` ran out.
   */
  flush(timeoutMs: number): Promise<boolean>;
  /** Sets the spool gauges; called when /metrics is scraped. */
  refreshGauges(): void;
  stop(): Promise<void>;
}

export interface UsageDeps {
  config: Readonly<Config>;
  db: Database;
  log: UsageLog;
  nodeId: string;
  metrics: UsageMetrics;
  logger: Logger;
  /** The node's parts: with `metering`, meter requests into a local spool and ship it. */
  parts: ReadonlySet<Part>;
  /** Control role: the aggregator singleton (and the archive sweeper with it); null elsewhere. */
  aggregatorLease: Singleton | null;
  /** Told how many archive files a sweep removed, when it removed any (the event log). */
  onArchiveSwept?: (removed: number) => void;
}

/** Wires the usage pipeline of one node: meter → spool → shipper → usage log → aggregator → rollups + archive. */
export async function startUsage(deps: UsageDeps): Promise<Usage> {
  const { config, logger } = deps;
  const settings = config.usage;
  const archive = new UsageArchive(
    settings.archiveDir ?? join(config.dataDir, "usage", "archive"),
    settings.archiveRetentionDays,
  );
  const aggregator = new UsageAggregator({ ...deps, archive });
  let sweeper: NodeJS.Timeout | undefined;
  await deps.aggregatorLease?.run({
    async start() {
      aggregator.start();
      sweeper = startArchiveSweeper(archive, logger, deps.onArchiveSwept);
    },
    async stop() {
      clearInterval(sweeper);
      await aggregator.stop();
    },
  });
  const parts = { aggregator, archive, metrics: deps.metrics, lease: deps.aggregatorLease };
  if (!deps.parts.has("metering")) return pipeline({ ...parts, meter: null, spool: null, shipper: null });
  if (!settings.enabled) {
    logger.warn("usage.enabled is false: requests are not metered and nothing will be billed");
    return pipeline({ ...parts, meter: null, spool: null, shipper: null });
  }
  const spool = await UsageSpool.open({
    dir: join(config.dataDir, "usage", "spool"),
    node: deps.nodeId,
    maxBytes: settings.spool.maxBytes,
    segmentBytes: settings.spool.segmentBytes,
    fsync: settings.spool.fsync,
  });
  logSpoolRecovery(spool, logger);
  const shipper = new UsageShipper({
    ...deps,
    spool,
    confirmIntervalMs: settings.confirmIntervalMs,
    reshipAfterMs: settings.reshipAfterMs,
  });
  const meter = new UsageMeter({
    spool,
    settings,
    metrics: deps.metrics,
    logger,
    onSealed: (batch) => shipper.offer(batch),
  });
  shipper.start();
  return pipeline({ ...parts, meter, spool, shipper });
}

function pipeline(
  parts: Omit<Usage, "flush" | "stop" | "refreshGauges"> & { metrics: UsageMetrics; lease: Singleton | null },
): Usage {
  const { meter, spool, shipper, lease, metrics } = parts;
  const flush = async (timeoutMs: number) => {
    meter?.seal();
    if (!spool || !shipper) return true;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await shipper.round();
      if (spool.pending().length === 0) return true;
      if (Date.now() >= deadline) return false;
      await delay(20);
    }
  };
  return {
    ...parts,
    flush,
    refreshGauges() {
      if (!spool) return;
      metrics.spoolBytes.set(spool.bytes);
      metrics.recordsBuffered.set(spool.openRecords);
      const oldest = spool.oldestPendingSealedAt();
      metrics.oldestUnshippedAge.set(oldest === null ? 0 : Math.max(0, Date.now() - oldest) / 1000);
    },
    async stop() {
      // A short, bounded last effort; whatever is not committed ships at the next start.
      await flush(2000).catch(() => false);
      await shipper?.stop();
      await lease?.stop();
      meter?.close();
      await spool?.close();
    },
  };
}

function startArchiveSweeper(
  archive: UsageArchive,
  logger: Logger,
  onSwept: (removed: number) => void = () => {},
): NodeJS.Timeout {
  const sweep = () =>
    archive
      .sweep()
      .then((removed) => {
        if (removed === 0) return;
        logger.info({ removed }, `removed ${removed} usage archive files past their retention`);
        onSwept(removed);
      })
      .catch((error: unknown) =>
        logger.warn({ err: error }, "could not sweep the usage archive; check the disk under dataDir/usage"),
      );
  void sweep();
  const timer = setInterval(sweep, HOUR_MS);
  timer.unref();
  return timer;
}

function logSpoolRecovery(spool: UsageSpool, logger: Logger): void {
  const { truncatedBytes, repairedSegments, recoveredBatch } = spool.recovery;
  if (truncatedBytes > 0) {
    logger.warn(
      { truncatedBytes, repairedSegments },
      "the usage spool had a torn or corrupt tail (a crash or power cut mid-write); it was cut off and every whole record kept",
    );
  }
  if (recoveredBatch) {
    logger.info(
      { batch: recoveredBatch.id, records: recoveredBatch.records },
      "sealed the batch that was open when the node last stopped; it ships now",
    );
  }
}
