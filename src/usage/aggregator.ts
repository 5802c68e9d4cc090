import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { UsageMetrics } from "../metrics/usage-metrics.js";
import type { UsageArchive } from "./archive.js";
import type { UsageBatch } from "./model.js";
import { rollupStore } from "./rollup-store.js";
import type { UsageConsumer, UsageLog } from "./usage-log.js";

export interface AggregatorDeps {
  db: Database;
  log: UsageLog;
  archive: UsageArchive;
  metrics: UsageMetrics;
  logger: Logger;
}

/**
 * The usage aggregator (a singleton: embedded, the one node; in a fleet,
 * the holder of its lease). Per batch: claim and count in one transaction,
 * then archive the raw records and mark the batch archived. A batch counts
 * once however often it arrives; one that fails is delivered again.
 */
export class UsageAggregator {
  #consumer: UsageConsumer | null = null;
  #failures = 0;

  constructor(private readonly deps: AggregatorDeps) {}

  start(): void {
    this.#consumer = this.deps.log.consume((batch) => this.apply(batch));
  }

  async stop(): Promise<void> {
    await this.#consumer?.stop();
    this.#consumer = null;
  }

  async apply(batch: UsageBatch): Promise<void> {
    const { db, archive, metrics } = this.deps;
    try {
      const result = await rollupStore.apply(db, batch);
      if (result.claimed) {
        metrics.batchesAggregated.inc();
        metrics.aggregationLag.observe(Math.max(0, Date.now() - batch.sealedAt) / 1000);
      } else {
        metrics.duplicatesIgnored.inc();
      }
      if (!result.archived) {
        await archive.write(batch);
        await rollupStore.markArchived(db, batch.id);
      }
      this.#failures = 0;
    } catch (error) {
      this.#failed(batch, error);
      throw error;
    }
  }

  #failed(batch: UsageBatch, error: unknown): void {
    this.deps.metrics.aggregateErrors.inc();
    this.#failures++;
    // The first failure, then every tenth: a database outage should not flood the log.
    if (this.#failures % 10 !== 1) return;
    this.deps.logger.warn(
      { err: error, batch: batch.id, failures: this.#failures },
      "could not add a usage batch to the rollups or the archive (retrying with backoff); usage waits in the spool, nothing is lost: check the database and the disk under dataDir/usage",
    );
  }
}
