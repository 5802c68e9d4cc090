import type { Logger } from "pino";
import { z } from "zod";
import type { KeyValue } from "../kv/key-value.js";
import { jittered } from "../util/backoff.js";
import { LOG_ONLY_WIRE, readWire, stamped, type WireRejections } from "../wire/wire.js";

export interface LeaseOptions {
  kv: KeyValue;
  /** The singleton's name, e.g. `usage-aggregator`; the KV key is `lease.<name>`. */
  name: string;
  holder: string;
  /** Must match the bucket's max age: an unrenewed lease disappears after it. */
  ttlMs: number;
  logger: Logger;
  onAcquired: () => Promise<void>;
  onLost: () => Promise<void>;
  /** Called with every change of who holds it (for events and metrics). */
  onChange?: (held: boolean) => void;
  /** Where a lease value that fails its schema is reported (default: logged only). */
  wire?: WireRejections;
}

/**
 * A lease's value (version 1). Unknown fields are tolerated and dropped:
 * who holds it is decided by the entry's revision and age, never by a field.
 */
const LeaseValueWire = z.object({ holder: z.string().min(1), since: z.number().int().nonnegative() });
type LeaseValue = z.infer<typeof LeaseValueWire>;

/**
 * The holder a lease entry names, or null when it cannot be read (reported
 * to `wire`). Also read by the alerts page to show who runs a singleton.
 */
export function leaseHolder(key: string, value: string, wire: WireRejections = LOG_ONLY_WIRE): string | null {
  return (
    readWire(LeaseValueWire, value, { source: "lease", from: `KV leases key ${key}` }, wire)?.holder ?? null
  );
}

function encodeLease(value: LeaseValue): string {
  return JSON.stringify(stamped(value));
}

/**
 * A control singleton's lease in a KeyValue bucket: created if absent,
 * renewed by compare-and-set every third of its TTL, lost when a renewal
 * fails, and taken over by another node once the holder stops renewing
 * (the bucket's max age removes the stale entry; a holder whose entry is
 * older than the TTL is treated as gone even before that).
 */
export class Lease {
  #revision: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #busy: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaseOptions) {}

  get held(): boolean {
    return this.#revision !== null;
  }

  get key(): string {
    return `lease.${this.options.name}`;
  }

  /** Tries once now (so a lone node starts its singleton before serving), then keeps trying. */
  async start(): Promise<void> {
    await this.#tick();
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#busy;
    if (this.#revision === null) return;
    this.#revision = null;
    await this.options.onLost();
    // Hand over at once rather than after the TTL.
    await this.options.kv.delete(this.key).catch(() => {});
  }

  #holderOf(value: string): string | null {
    return leaseHolder(this.key, value, this.options.wire);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const every = this.options.ttlMs / 3;
    this.#timer = setTimeout(() => void this.#tick().finally(() => this.#schedule()), jittered(every, 0.1));
    this.#timer.unref();
  }

  #tick(): Promise<void> {
    this.#busy = this.#busy.then(() => (this.#revision === null ? this.#acquire() : this.#renew()));
    return this.#busy;
  }

  async #acquire(): Promise<void> {
    const { kv, holder, ttlMs } = this.options;
    const value = encodeLease({ holder, since: Date.now() });
    try {
      const existing = await kv.entry(this.key);
      let revision: number | null;
      if (!existing) revision = await kv.create(this.key, value);
      // A value that cannot be read names nobody: taken over once stale, like any other holder's.
      else if (Date.now() - existing.updatedAt > ttlMs || this.#holderOf(existing.value) === holder)
        revision = await kv.update(this.key, value, existing.revision);
      else return;
      if (revision === null) return;
      this.#revision = revision;
      this.options.logger.info(
        { lease: this.options.name, holder },
        `took the ${this.options.name} lease: this node runs it now`,
      );
      this.options.onChange?.(true);
      await this.#startOrRelease();
    } catch (error) {
      this.options.logger.warn(
        { err: error, lease: this.options.name },
        `could not take the ${this.options.name} lease; retrying`,
      );
    }
  }

  /** A singleton that cannot start (its dependencies are not ready yet) must not sit on the lease doing nothing. */
  async #startOrRelease(): Promise<void> {
    try {
      await this.options.onAcquired();
    } catch (error) {
      this.#revision = null;
      this.options.onChange?.(false);
      await this.options.onLost().catch(() => {});
      await this.options.kv.delete(this.key).catch(() => {});
      throw error;
    }
  }

  async #renew(): Promise<void> {
    const { kv, holder } = this.options;
    const value = encodeLease({ holder, since: Date.now() });
    const revision = await kv.update(this.key, value, this.#revision as number).catch(() => null);
    if (revision !== null) {
      this.#revision = revision;
      return;
    }
    this.#revision = null;
    this.options.logger.warn(
      { lease: this.options.name, holder },
      `lost the ${this.options.name} lease (could not renew it in time); stopping it here, another node takes over`,
    );
    this.options.onChange?.(false);
    await this.options.onLost();
  }
}
