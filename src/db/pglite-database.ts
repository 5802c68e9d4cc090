import { mkdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { Database, SqlExecutor } from "./database.js";

/** int8 (bigint, count(*)) as a JS number, as the pg adapter does: our counters stay far below 2^53. */
const INT8_OID = 20;

/**
 * The embedded adapter: PostgreSQL compiled to WebAssembly, its files under
 * the data directory. One connection; PGlite queues queries itself, and a
 * transaction holds that connection until it ends.
 */
export class PgliteDatabase implements Database {
  readonly kind = "pglite";

  private constructor(
    private readonly pg: PGlite,
    /** Where its files are (as configured), or `memory://…`. */
    readonly location: string,
  ) {}

  /** `memory://` keeps everything in memory (tests); otherwise a directory, created when missing. */
  static async open(dataDir: string): Promise<PgliteDatabase> {
    if (!dataDir.startsWith("memory://")) await mkdir(dataDir, { recursive: true });
    const pg = new PGlite(dataDir, { parsers: { [INT8_OID]: Number } });
    await pg.waitReady;
    return new PgliteDatabase(pg, dataDir);
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

  async query<Row>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    const result = await this.pg.query<Row>(sql, params as unknown[]);
    return result.rows;
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.pg.transaction((tx) =>
      fn({
        query: async <Row>(sql: string, params: readonly unknown[] = []) =>
          (await tx.query<Row>(sql, params as unknown[])).rows,
      }),
    );
  }

  async exec(sql: string): Promise<void> {
    await this.pg.exec(sql);
  }

  async close(): Promise<void> {
    if (!this.pg.closed) await this.pg.close();
  }
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
