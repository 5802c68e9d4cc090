import { type KeyValue, KV_KEY, type KvChange, KvFullError, type KvWatch } from "./key-value.js";

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
 * `put` returns.
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
    const entry = this.#entries.get(key);
    return entry && !this.#expired(entry) ? entry.value : null;
  }

  async put(key: string, value: string): Promise<number> {
    checkKey(key);
    if (Buffer.byteLength(value) > this.#options.maxValueBytes) {
      throw new KvFullError(`value of ${key} is larger than ${this.#options.maxValueBytes} bytes`);
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

  async delete(key: string): Promise<void> {
    if (!this.#entries.delete(key)) return;
    this.#notify({ key, value: null, revision: ++this.#revision });
  }

  async keys(prefix = ""): Promise<string[]> {
    return [...this.#entries]
      .filter(([key, entry]) => key.startsWith(prefix) && !this.#expired(entry))
      .map(([key]) => key);
  }

  async watch(prefix: string, onChange: (change: KvChange) => void): Promise<KvWatch> {
    const current = [...this.#entries]
      .filter(([key, entry]) => key.startsWith(prefix) && !this.#expired(entry))
      .sort(([, a], [, b]) => a.revision - b.revision);
    for (const [key, entry] of current) onChange({ key, value: entry.value, revision: entry.revision });
    const watcher = { prefix, onChange };
    this.#watchers.add(watcher);
    return { initialLoaded: Promise.resolve(), stop: () => void this.#watchers.delete(watcher) };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#watchers.clear();
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

function checkKey(key: string): void {
  if (!KV_KEY.test(key) || key.startsWith(".") || key.endsWith(".")) {
    throw new Error(`invalid KV key '${key}': use letters, digits and - / _ = . (not at either end)`);
  }
}
