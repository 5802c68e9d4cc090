import type { KeyValue } from "../kv/key-value.js";
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
    const entry = await this.kv.entry(flagKey(name));
    if (!entry) return { flag: builtInFlag(name), stored: false, revision: null };
    return { flag: parseFlag(entry.value) ?? builtInFlag(name), stored: true, revision: entry.revision };
  }

  /** Every stored flag, by name; values this version cannot read are left out. */
  async list(): Promise<Flag[]> {
    const entries = await this.kv.entries(FLAG_KEY_PREFIX);
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
    const written =
      revision === null
        ? await this.kv.create(flagKey(flag.name), value)
        : await this.kv.update(flagKey(flag.name), value, revision);
    return written !== null;
  }

  async remove(name: string): Promise<void> {
    await this.kv.delete(flagKey(name));
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
