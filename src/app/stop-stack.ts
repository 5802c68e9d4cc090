import type { Logger } from "pino";

type Stop = () => Promise<unknown> | unknown;

/**
 * What a node has started, in order, so that it is stopped in reverse: by a
 * failure half-way through start (nothing started is left running, listening
 * or holding the data directory) and by shutdown alike, through the same
 * entries. Every entry is stopped even when an earlier one throws; the
 * failures are logged under the entry's name.
 */
export class StopStack {
  readonly #entries: { name: string; stop: Stop }[] = [];
  #unwinding: Promise<void> | null = null;

  constructor(private readonly logger?: Pick<Logger, "warn">) {}

  /** Records a part already started; `stop` runs when the stack unwinds. */
  defer(name: string, stop: Stop): void {
    if (this.#unwinding) throw new Error(`cannot start ${name}: the node is stopping`);
    this.#entries.push({ name, stop });
  }

  /** Starts a part and records how to stop it; a part whose start throws is not recorded. */
  async start<T>(
    name: string,
    start: () => Promise<T> | T,
    stop: (started: T) => Promise<unknown> | unknown,
  ) {
    const started = await start();
    this.defer(name, () => stop(started));
    return started;
  }

  /** The names of the parts started so far, in start order. */
  names(): string[] {
    return this.#entries.map((entry) => entry.name);
  }

  /** Stops everything started, last first; calling it again waits for the same unwinding. */
  unwind(): Promise<void> {
    this.#unwinding ??= this.#stopAll();
    return this.#unwinding;
  }

  /**
   * Runs `start` (the rest of a start sequence); if it throws, unwinds what
   * was started and rethrows the start's own error.
   */
  async orUnwind<T>(start: () => Promise<T>): Promise<T> {
    try {
      return await start();
    } catch (error) {
      await this.unwind();
      throw error;
    }
  }

  async #stopAll(): Promise<void> {
    for (let entry = this.#entries.pop(); entry; entry = this.#entries.pop()) {
      try {
        await entry.stop();
      } catch (error) {
        this.logger?.warn({ err: error, part: entry.name }, `${entry.name} did not stop cleanly`);
      }
    }
  }
}
