import { ProblemError } from "../errors/problem.js";
import { type KeyValue, KvFullError } from "../kv/key-value.js";
import { type Flag, StoredFlag } from "./model.js";
import { builtInFlag } from "./registry.js";

/** Every flag is one value under this prefix in the flags bucket. */
export const FLAG_KEY_PREFIX = "flag.";

export function flagKey(name: string): string {
  return FLAG_KEY_PREFIX + name;
}

/** A flag as read, with the revision a compare-and-set write needs (null: nothing stored). */
export interface FlagRead {
  flag: Flag;
  stored: boolean;
  revision: number | null;
}

/**
 * Flag settings through the KeyValue port (embedded: in memory; fleet: the
 * replicated `imgfleet-flags` bucket). Writes are compare-and-set on the
 * revision that was read, so two admins changing one flag from two nodes
 * cannot lose each other's change. Nodes never read this on a request: they
 * evaluate from their FlagCache.
 */
export class FlagStore {
  constructor(private readonly kv: KeyValue) {}

  async read(name: string): Promise<FlagRead> {
    const entry = await guard(() => this.kv.entry(flagKey(name)));
    if (!entry) return { flag: builtInFlag(name), stored: false, revision: null };
    return { flag: parseFlag(entry.value) ?? builtInFlag(name), stored: true, revision: entry.revision };
  }

  /** Every stored flag, by name; values this version cannot read are left out. */
  async list(): Promise<Flag[]> {
    const entries = await guard(() => this.kv.entries(FLAG_KEY_PREFIX));
    return entries
      .map((e) => parseFlag(e.value))
      .filter((f): f is Flag => f !== null)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Writes `flag` if the stored value is still at `revision` (null: still
   * absent). Returns false when someone wrote in between: read again.
   */
  async write(flag: Flag, revision: number | null): Promise<boolean> {
    const value = JSON.stringify(flag);
    const written = await guard(() =>
      revision === null
        ? this.kv.create(flagKey(flag.name), value)
        : this.kv.update(flagKey(flag.name), value, revision),
    );
    return written !== null;
  }

  async remove(name: string): Promise<void> {
    await guard(() => this.kv.delete(flagKey(name)));
  }
}

/** Seconds a client waits before retrying while the bucket is unreachable (a NATS leader election takes 4-9 s). */
const RETRY_AFTER_S = 5;

/** KV failures as answers an operator can act on, never a 500. */
async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof KvFullError) {
      throw new ProblemError(
        "conflict",
        "the flags bucket is full (at most 1000 flags of 256 KiB each); delete flags that are no longer read",
        { cause: error },
      );
    }
    throw new ProblemError(
      "flags-unavailable",
      `the flags bucket did not answer (${(error as Error).message}); nothing was changed, retry in a few seconds`,
      { retryAfterS: RETRY_AFTER_S, cause: error },
    );
  }
}

/** A stored value, or null when it is not a flag this version understands. */
export function parseFlag(raw: string): Flag | null {
  try {
    const parsed = StoredFlag.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
