import type { Logger } from "pino";
import type { KeyValue, KvChange, KvWatch } from "../kv/key-value.js";
import { FLAG_KEY_PREFIX, parseFlag } from "./flag-store.js";
import { evaluateFlag, type Flag, type FlagEvaluation } from "./model.js";
import { builtInFlag } from "./registry.js";

/** One flag as this node holds it, with the bucket revision it came from (null: built-in settings). */
export interface CachedFlag {
  flag: Flag;
  revision: number | null;
}

/**
 * Every stored flag, in memory on every node, kept current by watching the
 * flags bucket (a change reaches a fleet's nodes in well under a second).
 * Evaluation reads only this map: a resize never waits on the network for a
 * flag, and a node cut off from NATS keeps its last settings.
 */
export class FlagCache {
  readonly #flags = new Map<string, CachedFlag>();
  #watch: KvWatch | undefined;
  #loaded = false;

  constructor(
    private readonly kv: KeyValue,
    private readonly logger: Logger,
  ) {}

  /** Resolves once the bucket's current flags are loaded. */
  async start(): Promise<void> {
    this.#watch = await this.kv.watch(FLAG_KEY_PREFIX, (change) => this.#apply(change));
    await this.#watch.initialLoaded;
    this.#loaded = true;
  }

  stop(): void {
    this.#watch?.stop();
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  /** The settings this node uses for `name`: stored ones, else the built-in default. */
  get(name: string): CachedFlag {
    return this.#flags.get(name) ?? { flag: builtInFlag(name), revision: null };
  }

  evaluate(name: string, tenantId: string | null): FlagEvaluation {
    return evaluateFlag(this.get(name).flag, tenantId);
  }

  enabled(name: string, tenantId: string | null): boolean {
    return this.evaluate(name, tenantId).value;
  }

  #apply(change: KvChange): void {
    const name = change.key.slice(FLAG_KEY_PREFIX.length);
    if (change.value === null) {
      this.#flags.delete(name);
      if (this.#loaded) this.logger.info({ flag: name }, `flag ${name} is back to its built-in settings`);
      return;
    }
    const flag = parseFlag(change.value);
    if (!flag || flag.name !== name) {
      // Written by another version, or by hand: keep what we had rather than guess.
      this.logger.warn(
        { flag: name, revision: change.revision },
        `ignoring unreadable settings of flag ${name}`,
      );
      return;
    }
    this.#flags.set(name, { flag, revision: change.revision });
    if (this.#loaded) {
      this.logger.info(
        { flag: name, revision: change.revision, default: flag.default, percentage: flag.percentage },
        `flag ${name} changed (default ${flag.default ? "on" : "off"}, ${flag.percentage}% rollout, ${Object.keys(flag.tenants).length} tenant overrides)`,
      );
    }
  }
}
