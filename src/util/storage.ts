import { closeSync, fsyncSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";

/*
 * Local storage that cannot be written: what every writer under the data
 * directory (the usage spool, embedded PGlite) reports in one shape, so that
 * readiness, the answers and the logs say the same thing, and how each one
 * finds out that space is back.
 */

/** Below this, the data directory's filesystem is called full (and /readyz says so before a write fails). */
export const LOW_SPACE_BYTES = 1024 * 1024;
/** A failed store is tried again only with this much free: some hysteresis, so readiness does not flap at the edge. */
export const RECOVERY_SPACE_BYTES = 4 * 1024 * 1024;
/** The probe written to tell that a directory takes writes again. */
const PROBE_BYTES = 64 * 1024;

/** Why a store under the data directory cannot be written. */
export interface StorageFailure {
  /** What failed, for people: "the usage spool", "the embedded database". */
  store: string;
  /** The directory it writes. */
  path: string;
  /** When it first failed (ms since the epoch). */
  since: number;
  /** ENOSPC, EDQUOT, 53100, EIO…; "" when the error had none. */
  code: string;
  message: string;
  /** Out of space (or quota): freeing space is the cure. */
  noSpace: boolean;
}

/** The write failed for lack of space: ENOSPC, EDQUOT, PostgreSQL's disk_full (53100), or the message of one. */
export function isNoSpaceError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === "ENOSPC" || code === "EDQUOT" || code === "53100") return true;
    if (/no space left on device|disk quota exceeded/i.test(e.message)) return true;
  }
  return false;
}

export function errorCode(error: unknown): string {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : "";
}

/** Bytes this process may still write on the filesystem of `path`; null when it cannot be told. */
export function freeBytes(path: string): number | null {
  try {
    const fs = statfsSync(path);
    // Root may write into the blocks reserved for it (ext4's 5%), which bavail leaves out.
    const blocks = process.getuid?.() === 0 ? fs.bfree : fs.bavail;
    return blocks * fs.bsize;
  } catch {
    return null;
  }
}

/** Whether `dir` takes a write again: enough free space, and a probe file written, synced and removed. */
export function probeWritable(dir: string): boolean {
  const free = freeBytes(dir);
  if (free !== null && free < RECOVERY_SPACE_BYTES) return false;
  const file = join(dir, ".imgfleet-write-probe");
  try {
    const fd = openSync(file, "w");
    try {
      if (writeSync(fd, Buffer.alloc(PROBE_BYTES)) !== PROBE_BYTES) return false;
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  } finally {
    rmSync(file, { force: true });
  }
}

/** A failure of `store` at `path`, from the error it threw. */
export function storageFailure(
  store: string,
  path: string,
  error: unknown,
  since = Date.now(),
): StorageFailure {
  return {
    store,
    path,
    since,
    code: errorCode(error) || (isNoSpaceError(error) ? "ENOSPC" : ""),
    message: error instanceof Error ? error.message : String(error),
    noSpace: isNoSpaceError(error),
  };
}

/** One sentence for /readyz and the logs: what, where, why, what to do. */
export function describeFailure(f: StorageFailure): string {
  const free = freeBytes(f.path);
  const left = free === null ? "" : `, ${free} bytes free on its filesystem`;
  return f.noSpace
    ? `disk full: ${f.store} cannot write ${f.path} (${f.code}${left}); free space on that filesystem — the node takes work again by itself once writes succeed`
    : `${f.store} cannot write ${f.path} (${f.code || f.message}${left}); check that filesystem (read-only? failing?)`;
}

/**
 * Local storage that refused a write: a 503 for whoever needed it, never a
 * 500. `path` is the directory, named in the answer for the operator.
 */
export class StorageFullError extends Error {
  override readonly name = "StorageFullError";
  constructor(
    readonly path: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
 * Tracks one store's failure and finds out when space is back: while
 * failed, every `everyMs` it probes the directory and then runs `recover`
 * (reopen what the failure broke); both succeeding clears the failure.
 */
export class StorageWatch {
  #failure: StorageFailure | null = null;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;

  constructor(
    private readonly options: {
      store: string;
      /** The directory the store writes (named in messages, and probed unless `probeDir` is given). */
      path: string;
      /** Where to write the probe file, when not in `path` itself (a directory whose every file is the store's). */
      probeDir?: string;
      everyMs: number;
      recover?: () => Promise<boolean> | boolean;
      /** Told when the failure clears. */
      onRecovered?: (failure: StorageFailure) => void;
    },
  ) {}

  get failure(): StorageFailure | null {
    return this.#failure;
  }

  /** Records the failure (keeping when it started) and starts probing. */
  failed(error: unknown): StorageFailure {
    const next = storageFailure(this.options.store, this.options.path, error, this.#failure?.since);
    this.#failure = next;
    this.#timer ??= setInterval(() => void this.probe(), this.options.everyMs).unref();
    return next;
  }

  /** A write just worked: whatever failed before is over. */
  succeeded(): void {
    if (this.#failure) this.#clear();
  }

  /** Probes now; true when the store works (again). */
  async probe(): Promise<boolean> {
    if (!this.#failure) return true;
    if (this.#probing) return false;
    this.#probing = true;
    try {
      if (!probeWritable(this.options.probeDir ?? this.options.path)) return false;
      if (this.options.recover && !(await this.options.recover())) return false;
      this.#clear();
      return true;
    } finally {
      this.#probing = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #clear(): void {
    const failure = this.#failure;
    this.#failure = null;
    this.close();
    if (failure) this.options.onRecovered?.(failure);
  }
}
