import type { Logger } from "pino";
import type { Singleton } from "../../fleet/singletons.js";
import type { AlertEngine } from "./engine.js";

/**
 * Runs the engine every `intervalMs` (ops.sampleIntervalMs: there is nothing
 * new to judge more often) while this node holds the `alert-evaluator`
 * lease, so one node of the fleet evaluates and notifies. A failed cycle is
 * logged and leaves every alert as it was; the next one retries.
 */
export class AlertEvaluator {
  #timer: NodeJS.Timeout | undefined;
  #cycle: Promise<void> | null = null;
  #running = false;
  #failures = 0;

  constructor(
    private readonly options: { lease: Singleton; engine: AlertEngine; intervalMs: number; logger: Logger },
  ) {}

  async start(): Promise<void> {
    await this.options.lease.run({
      start: async () => {
        this.#running = true;
        this.#schedule();
      },
      stop: async () => {
        this.#running = false;
        clearTimeout(this.#timer);
        await this.#cycle;
      },
    });
  }

  async stop(): Promise<void> {
    await this.options.lease.stop();
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#cycle = this.options.engine
        .evaluate()
        .then(() => {
          this.#failures = 0;
        })
        .catch((error: unknown) => {
          if (this.#failures++ % 10 === 0) {
            this.options.logger.warn(
              { err: error, failures: this.#failures },
              "an alert evaluation failed (database or NATS unavailable?); alerts stay as they were, the next cycle retries",
            );
          }
        })
        .finally(() => {
          this.#cycle = null;
          this.#schedule();
        });
    }, this.options.intervalMs);
    this.#timer.unref();
  }
}
