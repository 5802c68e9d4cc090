import {
  assertKvKey,
  type KeyValue,
  type KvChange,
  type KvEntry,
  KvFullError,
  type KvWatch,
} from "./key-value.js";

interface Entry {
  value: string;
  revision: number;
  writtenAt: number;
}

export interface MemoryKeyValueOptions {
  /** Entries older than this expire (per bucket, like NATS KV's max_age). 0 keeps them forever. */
  maxAgeMs?: number;
  maxEntries: number;
  maxValueBytes: number;
  now?: () => number;
}

/**
 * The embedded KeyValue adapter. Watchers are called synchronously after a
 * write, so in one process a change is visible to the data plane before
 * `put` returns. Every method checks and writes without an `await` in
 * between, so compare-and-set needs no lock in one event loop. Expiry is
 * swept on a timer and watchers are told (`value: null`).
 */
export class MemoryKeyValue implements KeyValue {
  readonly #entries = new Map<string, Entry>();
  readonly #watchers = new Set<{ prefix: string; onChange: (change: KvChange) => void }>();
  readonly #options: Required<MemoryKeyValueOptions>;
  #revision = 0;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryKeyValueOptions) {
    this.#options = { maxAgeMs: 0, now: Date.now, ...options };
    if (this.#options.maxAgeMs > 0) {
      const every = Math.max(50, Math.min(1000, this.#options.maxAgeMs / 4));
      this.#sweeper = setInterval(() => this.#expire(), every);
      this.#sweeper.unref();
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  async get(key: string): Promise<string | null> {
    return this.#live(key)?.value ?? null;
  }

  async entry(key: string): Promise<KvEntry | null> {
    const entry = this.#live(key);
    return entry ? toKvEntry(key, entry) : null;
  }

  async entries(prefix = ""): Promise<KvEntry[]> {
    return this.#liveUnder(prefix).map(([key, entry]) => toKvEntry(key, entry));
  }

  async put(key: string, value: string): Promise<number> {
    assertKvKey(key);
    return this.#write(key, value);
  }

  async create(key: string, value: string): Promise<number | null> {
    assertKvKey(key);
    if (this.#live(key)) return null;
    return this.#write(key, value);
  }

  async update(key: string, value: string, revision: number): Promise<number | null> {
    assertKvKey(key);
    if (this.#live(key)?.revision !== revision) return null;
    return this.#write(key, value);
  }

  async delete(key: string): Promise<void> {
    assertKvKey(key);
    if (!this.#entries.delete(key)) return;
    this.#notify({ key, value: null, revision: ++this.#revision });
  }

  async keys(prefix = ""): Promise<string[]> {
    return this.#liveUnder(prefix).map(([key]) => key);
  }

  async watch(prefix: string, onChange: (change: KvChange) => void): Promise<KvWatch> {
    for (const [key, entry] of this.#liveUnder(prefix)) {
      onChange({ key, value: entry.value, revision: entry.revision });
    }
    const watcher = { prefix, onChange };
    this.#watchers.add(watcher);
    return { initialLoaded: Promise.resolve(), stop: () => void this.#watchers.delete(watcher) };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#watchers.clear();
  }

  /** Checks the bounds and writes; the caller has validated the key and any precondition. */
  #write(key: string, value: string): number {
    if (Buffer.byteLength(value) > this.#options.maxValueBytes) {
      throw new KvFullError(`value of ${key} is larger than ${this.#options.maxValueBytes} bytes`);
    }
    const previous = this.#entries.get(key);
    if (previous && this.#expired(previous)) {
      // Replacing an entry the sweeper has not reached: watchers hear of its expiry first.
      this.#entries.delete(key);
      this.#notify({ key, value: null, revision: ++this.#revision });
    }
    if (!this.#entries.has(key) && this.#entries.size >= this.#options.maxEntries) {
      this.#expire();
      if (this.#entries.size >= this.#options.maxEntries) {
        throw new KvFullError(`the bucket holds its maximum of ${this.#options.maxEntries} entries`);
      }
    }
    const revision = ++this.#revision;
    this.#entries.set(key, { value, revision, writtenAt: this.#options.now() });
    this.#notify({ key, value, revision });
    return revision;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    return entry && !this.#expired(entry) ? entry : undefined;
  }

  /** Live entries under `prefix`, oldest revision first. */
  #liveUnder(prefix: string): [string, Entry][] {
    return [...this.#entries]
      .filter(([key, entry]) => key.startsWith(prefix) && !this.#expired(entry))
      .sort(([, a], [, b]) => a.revision - b.revision);
  }

  #notify(change: KvChange): void {
    for (const w of this.#watchers) if (change.key.startsWith(w.prefix)) w.onChange(change);
  }

  #expired(entry: Entry): boolean {
    return this.#options.maxAgeMs > 0 && this.#options.now() - entry.writtenAt >= this.#options.maxAgeMs;
  }

  #expire(): void {
    for (const [key, entry] of this.#entries) {
      if (this.#expired(entry)) {
        this.#entries.delete(key);
        this.#notify({ key, value: null, revision: ++this.#revision });
      }
    }
  }
}

function toKvEntry(key: string, entry: Entry): KvEntry {
  return { key, value: entry.value, revision: entry.revision, updatedAt: entry.writtenAt };
}
