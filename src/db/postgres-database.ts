import pg from "pg";
import { StorageFullError } from "../util/storage.js";
import { type Database, DatabaseUnavailableError, type SqlExecutor } from "./database.js";

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database`; the password never reaches an error message. */
  url: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Errors of idle pooled connections (the server restarted, a proxy dropped them): the pool replaces them. */
  onError?: (err: Error) => void;
}

const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;
/** Idle connections are closed after this, so a quiet node holds few server slots. */
const IDLE_TIMEOUT_MS = 30_000;
const OPEN_ATTEMPTS = 5;
const BACKOFF_MIN_MS = 100;
/** Past statement_timeout, so the server's own cancellation (a clean 57014) normally wins over the client's guard. */
const QUERY_TIMEOUT_GRACE_MS = 1_000;

/**
 * int8 (bigint, count(*)) as a JS number, as PGlite is configured: our counters
 * stay far below 2^53. Per pool, not on the global `pg.types`, so loading this
 * module changes nothing for other users of `pg` in the process.
 */
function typeParsers(): pg.CustomTypesConfig {
  const overrides = new pg.TypeOverrides();
  overrides.setTypeParser(INT8_OID, "text", Number);
  // 1016 is not among @types/pg's built-in type ids, hence the widening.
  const arrayOid: number = INT8_ARRAY_OID;
  const parseTextArray: (text: string) => unknown = pg.types.getTypeParser(arrayOid, "text");
  overrides.setTypeParser(INT8_ARRAY_OID, "text", (text: string) => toNumbers(parseTextArray(text)));
  return overrides;
}

function toNumbers(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toNumbers);
  return typeof value === "string" ? Number(value) : value;
}

/** Node's network errors that mean "no server there (any more)". */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
]);
/**
 * SQLSTATEs of a server going away or not accepting work: admin/crash shutdown,
 * starting up, and 57014 (statement_timeout: the server "did not answer in time").
 */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "57014"]);
/** pg reports these without a code. */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable/i;

/** True when the error says the server could not be reached or stopped answering, as opposed to rejecting the SQL. */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08")) return true;
  }
  // Node 20 tries every address of a host name and reports them together.
  if (err instanceof AggregateError && err.errors.some(isConnectionFailure)) return true;
  return UNAVAILABLE_MESSAGES.test(err.message);
}

/**
 * Wraps a connection failure as DatabaseUnavailableError and a full disk on the server (disk_full, 53100)
 * as StorageFullError, naming the server; passes anything else through.
 */
function translate(err: unknown, address: string): unknown {
  if ((err as { code?: unknown } | null)?.code === "53100") {
    return new StorageFullError(address, `the disk of PostgreSQL at ${address} is full: ${reasonOf(err)}`, {
      cause: err,
    });
  }
  if (err instanceof DatabaseUnavailableError || !isConnectionFailure(err)) return err;
  return new DatabaseUnavailableError(`PostgreSQL at ${address} is unavailable: ${reasonOf(err)}`, {
    cause: err,
  });
}

function reasonOf(err: unknown): string {
  // An AggregateError (one failure per address of a host name) has an empty message of its own.
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(reasonOf).join("; ");
  return err instanceof Error ? err.message || err.name : String(err);
}

/** The URL as it can be shown: `postgres://user:***@host:port/database`. */
export function describeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(an unparseable PostgreSQL URL)";
  }
  const user = decodeURIComponent(parsed.username);
  const credentials = user ? `${user}${parsed.password ? ":***" : ""}@` : "";
  // A Unix socket is given as ?host=/path, with the URL's host left empty.
  const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
  const port = parsed.port || "5432";
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || user || "postgres";
  return `postgres://${credentials}${host}:${port}/${database}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The fleet adapter: PostgreSQL through a `pg` pool. Every failure to reach the
 * server surfaces as `DatabaseUnavailableError` (the API answers 503); errors
 * about the SQL itself pass through untouched, `.code` and all.
 */
export class PostgresDatabase implements Database {
  readonly kind = "postgres";
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly address: string,
  ) {}

  /**
   * Opens the pool and proves the server answers, retrying a few times (a
   * server restarting, a fleet booting together) within twice the connect
   * timeout, then gives up with `DatabaseUnavailableError`.
   */
  static async open(options: PostgresOptions): Promise<PostgresDatabase> {
    const address = describeUrl(options.url);
    const config = poolConfig(options);
    await waitForServer(config, options.connectTimeoutMs, address);
    const pool = new pg.Pool(config);
    // Without a listener an idle connection's error would crash the process.
    pool.on("error", (err) => options.onError?.(err));
    return new PostgresDatabase(pool, address);
  }

  query<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.withClient((client) => run<Row>(client, sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.withClient(async (client, discard) => {
      await client.query("BEGIN");
      const tx = new TransactionExecutor(client, this.address);
      try {
        const result = await fn(tx);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        // A dead connection has no transaction left to roll back; withClient discards it.
        if (!isConnectionFailure(err)) {
          // The caller gets its own error, not the rollback's; a connection that cannot roll back is not reused.
          await client.query("ROLLBACK").catch(discard);
        }
        throw err;
      } finally {
        tx.finish();
      }
    });
  }

  exec(sql: string): Promise<void> {
    // No parameters: the simple protocol, which accepts several statements.
    return this.withClient(async (client) => void (await client.query(sql)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /**
   * Checks a connection out for `fn` and returns it, destroying it instead when
   * it failed (so the pool never hands out a dead one); translates connection
   * failures. Not `pool.query`: that discards the connection on any error,
   * a unique violation included.
   */
  private async withClient<T>(
    fn: (client: pg.PoolClient, discard: (err: Error) => void) => Promise<T>,
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw translate(err, this.address);
    }
    // A connection dropping between two statements of a transaction is emitted, not thrown.
    let dropped: Error | undefined;
    const onDrop = (err: Error) => {
      dropped = err;
    };
    client.on("error", onDrop);
    let failure: unknown;
    try {
      return await fn(client, onDrop);
    } catch (err) {
      failure = err;
      throw translate(err, this.address);
    } finally {
      client.off("error", onDrop);
      const broken = dropped ?? (isConnectionFailure(failure) ? (failure as Error) : undefined);
      client.release(broken);
    }
  }
}

/** The executor handed to a transaction body; refuses use once the transaction has ended, like PGlite's. */
class TransactionExecutor implements SqlExecutor {
  private done = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly address: string,
  ) {}

  async query<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    if (this.done) throw new Error("the transaction has already ended");
    try {
      return await run<Row>(this.client, sql, params);
    } catch (err) {
      // The body sees the same errors as outside a transaction.
      throw translate(err, this.address);
    }
  }

  finish(): void {
    this.done = true;
  }
}

/**
 * Always the extended protocol, even without parameters, as PGlite does: one
 * statement per call, so SQL that works on one adapter works on the other.
 */
async function run<Row>(client: pg.ClientBase, sql: string, params: readonly unknown[]): Promise<Row[]> {
  // `queryMode` is missing from @types/pg.
  const config: pg.QueryConfig<unknown[]> & { queryMode: "extended" } = {
    text: sql,
    values: [...params],
    queryMode: "extended",
  };
  const result = await client.query<Row & pg.QueryResultRow>(config);
  return result.rows;
}

function poolConfig(options: PostgresOptions): pg.PoolConfig {
  const statementTimeout = options.statementTimeoutMs > 0 ? options.statementTimeoutMs : undefined;
  return {
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    ...(statementTimeout !== undefined && {
      statement_timeout: statementTimeout,
      // The server enforces statement_timeout; this catches a server that stopped answering at all.
      query_timeout: statementTimeout + QUERY_TIMEOUT_GRACE_MS,
    }),
    types: typeParsers(),
  };
}

/**
 * Up to OPEN_ATTEMPTS probes on a fresh connection, with exponential backoff
 * and full jitter (nodes starting together do not retry in step), all within
 * twice the connect timeout. Errors other than connection failures (a wrong
 * password, a missing database) are not worth retrying and are thrown at once.
 */
async function waitForServer(
  config: pg.PoolConfig,
  connectTimeoutMs: number,
  address: string,
): Promise<void> {
  const started = Date.now();
  const budget = connectTimeoutMs * 2;
  const deadline = started + budget;
  // Sized so the doubling delays between the attempts can span the whole budget.
  const backoffBase = Math.max(BACKOFF_MIN_MS, budget / 2 ** (OPEN_ATTEMPTS - 1));
  let last: unknown;
  let attempts = 0;
  while (attempts < OPEN_ATTEMPTS) {
    attempts++;
    const timeout = Math.max(1, Math.min(connectTimeoutMs, deadline - Date.now()));
    try {
      await probe(config, timeout);
      return;
    } catch (err) {
      if (!isConnectionFailure(err)) {
        throw new Error(`PostgreSQL at ${address} refused the connection: ${reasonOf(err)}`, { cause: err });
      }
      last = err;
    }
    const backoff = Math.random() * backoffBase * 2 ** (attempts - 1);
    if (attempts >= OPEN_ATTEMPTS || Date.now() + backoff >= deadline) break;
    await sleep(backoff);
  }
  const elapsed = Date.now() - started;
  throw new DatabaseUnavailableError(
    `PostgreSQL at ${address} is unavailable: ${attempts} connection attempt(s) over ${elapsed} ms failed ` +
      `(connect timeout ${connectTimeoutMs} ms each, within ${budget} ms); last error: ${reasonOf(last)}`,
    { cause: last },
  );
}

async function probe(config: pg.PoolConfig, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: timeoutMs });
  // A failed connect may still emit 'error' afterwards; unhandled, it would crash the process.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
  } finally {
    await client.end().catch(() => {});
  }
}
