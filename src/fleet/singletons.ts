import type { Logger } from "pino";
import type { KeyValue } from "../kv/key-value.js";
import type { WireRejections } from "../wire/wire.js";
import { Lease } from "./lease.js";

/** Something a singleton runs while it holds its lease. */
export interface SingletonTask {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A control singleton: at most one node of the fleet runs its task at a time. */
export interface Singleton {
  readonly name: string;
  readonly held: boolean;
  /** Starts competing for the lease; resolves after the first attempt (holding it or not). */
  run(task: SingletonTask): Promise<void>;
  stop(): Promise<void>;
}

/** Makes the singletons of one node, each on its own lease in the leases bucket. */
export class Singletons {
  readonly #all: Singleton[] = [];

  constructor(
    private readonly options: {
      kv: KeyValue;
      holder: string;
      ttlMs: number;
      logger: Logger;
      onChange?: (name: string, held: boolean) => void;
      /** Told every singleton's state from its creation on (a metric): unlike onChange, also the first "not held". */
      report?: (name: string, held: boolean) => void;
      /** Where a lease value that fails its schema is reported. */
      wire?: WireRejections;
    },
  ) {}

  create(name: string): Singleton {
    const { kv, holder, ttlMs, logger, onChange, report, wire } = this.options;
    let lease: Lease | null = null;
    report?.(name, false);
    const singleton: Singleton = {
      name,
      get held() {
        return lease?.held ?? false;
      },
      async run(task) {
        lease = new Lease({
          kv,
          name,
          holder,
          ttlMs,
          logger,
          wire,
          onAcquired: () => task.start(),
          onLost: () => task.stop(),
          onChange: (held) => {
            report?.(name, held);
            onChange?.(name, held);
          },
        });
        await lease.start();
      },
      async stop() {
        await lease?.stop();
      },
    };
    this.#all.push(singleton);
    return singleton;
  }

  /** Which singletons this node holds now, for /readyz and the fleet view. */
  held(): string[] {
    return this.#all.filter((s) => s.held).map((s) => s.name);
  }
}
