import type { StorageFailure } from "../util/storage.js";

/** Something SQL can run on: the database itself or an open transaction. */
export interface SqlExecutor {
  /** Runs one statement with `$1…` parameters and returns its rows. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

/**
 * The Database port: one SQL dialect (PostgreSQL's) behind two adapters,
 * PGlite embedded and PostgreSQL through `pg`. PGlite has a single
 * connection and serialises everything, so callers never assume a pool:
 * work that must be atomic goes through `transaction`.
 */
export interface Database extends SqlExecutor {
  readonly kind: "pglite" | "postgres";
  /** Commits when `fn` resolves, rolls back when it throws (and rethrows). */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs several statements separated by semicolons, without parameters (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
  /**
   * Embedded adapters, whose files are under the data directory: why they
   * cannot be written now (a full disk), or null. /readyz reports it.
   */
  storageFailure?(): StorageFailure | null;
}

/** The database could not be reached or did not answer in time: a 503 for admin writes, never a 500. */
export class DatabaseUnavailableError extends Error {
  override readonly name = "DatabaseUnavailableError";
}
