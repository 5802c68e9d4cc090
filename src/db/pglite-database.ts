import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import {
  freeBytes,
  isNoSpaceError,
  RECOVERY_SPACE_BYTES,
  type StorageFailure,
  StorageFullError,
  StorageWatch,
} from "../util/storage.js";
import { type Database, DatabaseUnavailableError, type SqlExecutor } from "./database.js";

/** int8 (bigint, count(*)) as a JS number, as the pg adapter does: our counters stay far below 2^53. */
const INT8_OID = 20;

/** How often a database stopped by a full disk is probed. */
const PROBE_EVERY_MS = 1000;
/** Calls meanwhile try to reopen it at most this often (each try on a full disk costs a PGlite start). */
const REOPEN_EVERY_MS = 500;

/**
 * The embedded adapter: PostgreSQL compiled to WebAssembly, its files under
 * the data directory. One connection; PGlite queues queries itself, and a
 * transaction holds that connection until it ends.
 *
 * A full disk: a write that cannot extend a file fails with PostgreSQL's
 * disk_full (53100), and the instance keeps working; a checkpoint or WAL
 * write that fails is a PANIC, which in WebAssembly aborts the instance for
 * good (every later call fails). Both answer StorageFullError (a 503, never
 * a 500) and are reported through `storageFailure()`; an aborted instance is
 * dropped and a new one opened on the same files — PostgreSQL's own crash
 * recovery, as its postmaster restarts after a PANIC — once the disk takes
 * writes again, without a restart of the node.
 */
export class PgliteDatabase implements Database {
  readonly kind = "pglite";
  /** Null once it aborted: the next call (or the probe) opens a new one. */
  #pg: PGlite | null;
  #reopening: Promise<PGlite> | null = null;
  #lastReopenAt = 0;
  readonly #storage: StorageWatch | null;
  #closed = false;

  private constructor(
    pg: PGlite,
    /** Where its files are (as configured), or `memory://…`. */
    readonly location: string,
  ) {
    this.#pg = pg;
    this.#storage = location.startsWith("memory://")
      ? null
      : new StorageWatch({
          store: "the embedded database",
          path: location,
          probeDir: dirname(location),
          everyMs: PROBE_EVERY_MS,
          recover: async () =>
            await this.#instance().then(
              () => true,
              () => false,
            ),
        });
  }

  /** `memory://` keeps everything in memory (tests); otherwise a directory, created when missing. */
  static async open(dataDir: string): Promise<PgliteDatabase> {
    return new PgliteDatabase(await openPglite(dataDir), dataDir);
  }

  /** Why its files cannot be written now, or null. */
  storageFailure(): StorageFailure | null {
    return this.#storage?.failure ?? null;
  }

  /**
   * "PGlite 0.3.16 (PostgreSQL 17.5 in WebAssembly), embedded in data/pglite": what runs,
   * in words. `SELECT version()` alone names the WebAssembly build's host ("… on aarch64
   * … 32-bit"), which describes neither this machine nor the embedding.
   */
  async describe(): Promise<string> {
    const [row] = await this.query<{ server_version: string }>("SHOW server_version");
    const where = this.location.startsWith("memory://") ? "in memory" : `embedded in ${this.location}`;
    return `PGlite ${await pgliteVersion()} (PostgreSQL ${row?.server_version ?? "unknown"} in WebAssembly), ${where}`;
  }

  query<Row>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.#run(async (pg) => (await pg.query<Row>(sql, params as unknown[])).rows);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#run((pg) =>
      pg.transaction((tx) =>
        fn({
          query: async <Row>(sql: string, params: readonly unknown[] = []) =>
            (await tx.query<Row>(sql, params as unknown[])).rows,
        }),
      ),
    );
  }

  async exec(sql: string): Promise<void> {
    await this.#run((pg) => pg.exec(sql));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#storage?.close();
    const pg = this.#pg ?? (await this.#reopening?.catch(() => null));
    this.#pg = null;
    if (pg && !pg.closed) await pg.close();
  }

  async #run<T>(op: (pg: PGlite) => Promise<T>): Promise<T> {
    const pg = await this.#instance();
    try {
      return await op(pg);
    } catch (error) {
      throw this.#translate(error, pg);
    }
  }

  /** The live instance, or a new one on the same files after an abort (at most one try a second). */
  #instance(): Promise<PGlite> {
    if (this.#pg) return Promise.resolve(this.#pg);
    if (this.#reopening) return this.#reopening;
    // Closed: never opened again (the node stopped, and its data directory lock may be gone).
    if (this.#closed) return Promise.reject(new DatabaseUnavailableError("the embedded database is closed"));
    const failure = this.storageFailure();
    if (failure && Date.now() - this.#lastReopenAt < REOPEN_EVERY_MS) {
      return Promise.reject(this.#stoppedError(failure));
    }
    this.#lastReopenAt = Date.now();
    this.#reopening = openPglite(this.location)
      .then((pg) => {
        this.#pg = pg;
        this.#storage?.succeeded();
        return pg;
      })
      .catch((error: unknown) => {
        const stopped = this.#storage?.failed(asStorageError(error, this.location)) ?? null;
        throw stopped ? this.#stoppedError(stopped) : error;
      })
      .finally(() => {
        this.#reopening = null;
      });
    return this.#reopening;
  }

  /** A full disk becomes StorageFullError; an abort also drops the instance. Anything else passes untouched. */
  #translate(error: unknown, pg: PGlite): unknown {
    if (!this.#storage) return error;
    if (isAbort(error)) {
      if (this.#pg === pg) this.#pg = null;
      return this.#stoppedError(this.#storage.failed(asStorageError(error, this.location)));
    }
    if (!isNoSpaceError(error)) return error;
    const failure = this.#storage.failed(error);
    return new StorageFullError(
      this.location,
      `the embedded database cannot write ${this.location}: the disk is full (${failure.message})`,
      { cause: error },
    );
  }

  #stoppedError(failure: StorageFailure): Error {
    if (failure.noSpace) {
      return new StorageFullError(
        this.location,
        `the embedded database stopped: the disk under ${this.location} is full; it starts again by itself once space is freed`,
        { cause: failure },
      );
    }
    return new DatabaseUnavailableError(
      `the embedded database stopped (${failure.message}) and could not be opened again yet`,
    );
  }
}

async function openPglite(dataDir: string): Promise<PGlite> {
  if (!dataDir.startsWith("memory://")) await mkdir(dataDir, { recursive: true });
  const pg = new PGlite(dataDir, { parsers: { [INT8_OID]: Number } });
  await pg.waitReady;
  return pg;
}

/** PGlite's WebAssembly instance aborted (a PostgreSQL PANIC, or a failed start): it answers nothing sensible after. */
function isAbort(error: unknown): boolean {
  // WebAssembly.RuntimeError: "Aborted(). Build with -sASSERTIONS for more info."
  return error instanceof Error && (error.name === "RuntimeError" || /^Aborted\(/.test(error.message));
}

/**
 * An abort says nothing of its cause: it is taken for a full disk when the
 * disk is nearly full (which is when PostgreSQL PANICs on a checkpoint or WAL write).
 */
function asStorageError(error: unknown, location: string): Error {
  if (isNoSpaceError(error)) return error as Error;
  const free = freeBytes(location);
  const full = free !== null && free < RECOVERY_SPACE_BYTES;
  const message = error instanceof Error ? error.message : String(error);
  return Object.assign(new Error(`PGlite stopped: ${message}`, { cause: error }), {
    code: full ? "ENOSPC" : "EIO",
  });
}

/** The installed PGlite's version, from its package.json (the package exports no version constant). */
async function pgliteVersion(): Promise<string> {
  try {
    const entry = import.meta.resolve("@electric-sql/pglite");
    const manifest = JSON.parse(await readFile(fileURLToPath(new URL("../package.json", entry)), "utf8")) as {
      version?: unknown;
    };
    return typeof manifest.version === "string" ? manifest.version : "unknown";
  } catch {
    return "unknown";
  }
}
