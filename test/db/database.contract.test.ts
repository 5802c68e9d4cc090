import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Database, DatabaseUnavailableError, type SqlExecutor } from "../../src/db/database.js";
import { describeUrl, isConnectionFailure, PostgresDatabase } from "../../src/db/postgres-database.js";
import {
  describeDatabases,
  freePort,
  hasPostgres,
  type PostgresServer,
  postgresOptions,
  startPostgres,
} from "../helpers/postgres.js";

/** The Database port's contract: whatever passes here behaves the same on PGlite and on PostgreSQL. */
describeDatabases("Database contract", (open) => {
  let db: Database;
  beforeEach(async () => {
    db = await open();
  });

  describe("parameters and result types", () => {
    it("passes text, integers, booleans and null", async () => {
      const [row] = await db.query("SELECT $1::text AS t, $2::int AS i, $3::boolean AS b, $4::text AS n", [
        "héllo 'quoted'",
        42,
        true,
        null,
      ]);
      expect(row).toEqual({ t: "héllo 'quoted'", i: 42, b: true, n: null });
    });

    it("passes text arrays, commas and quotes included", async () => {
      const values = ["plain", "with,comma", 'with"quote', "with space", ""];
      const [row] = await db.query<{ a: string[]; hit: boolean }>(
        "SELECT $1::text[] AS a, 'with,comma' = ANY($1::text[]) AS hit",
        [values],
      );
      expect(row).toEqual({ a: values, hit: true });
    });

    it("passes JSON objects as text cast to jsonb and returns them parsed", async () => {
      const value = { name: "acme", limits: [1, 2], nested: { on: true, none: null } };
      const [row] = await db.query("SELECT $1::jsonb AS j, ($1::jsonb)->>'name' AS name", [
        JSON.stringify(value),
      ]);
      expect(row).toEqual({ j: value, name: "acme" });
    });

    it("returns timestamptz as a Date", async () => {
      const at = new Date("2024-02-29T12:34:56.789Z");
      const [row] = await db.query<{ at: Date; now: Date }>("SELECT $1::timestamptz AS at, now() AS now", [
        at.toISOString(),
      ]);
      expect(row?.at).toBeInstanceOf(Date);
      expect(row?.at.getTime()).toBe(at.getTime());
      expect(row?.now).toBeInstanceOf(Date);
    });

    it("returns bigint, count(*) and bigint[] as numbers", async () => {
      const [row] = await db.query(
        "SELECT count(*) AS n, $1::bigint AS big, ARRAY[1, 2]::bigint[] AS list FROM generate_series(1, 3)",
        [Number.MAX_SAFE_INTEGER],
      );
      expect(row).toEqual({ n: 3, big: Number.MAX_SAFE_INTEGER, list: [1, 2] });
    });

    it("runs one statement per query: several are a syntax error (42601)", async () => {
      await expect(db.query("SELECT 1; SELECT 2")).rejects.toMatchObject({ code: "42601" });
    });
  });

  describe("errors", () => {
    beforeEach(async () => {
      await db.query("CREATE TABLE tenants (id text PRIMARY KEY)");
    });

    it("reports a unique violation with code 23505", async () => {
      await db.query("INSERT INTO tenants (id) VALUES ($1)", ["acme"]);
      const failure = db.query("INSERT INTO tenants (id) VALUES ($1)", ["acme"]);
      await expect(failure).rejects.toMatchObject({ code: "23505", constraint: "tenants_pkey" });
      await expect(failure).rejects.not.toBeInstanceOf(DatabaseUnavailableError);
    });

    it("stays usable after an SQL error", async () => {
      await expect(db.query("SELECT nonsense FROM nowhere")).rejects.toMatchObject({ code: "42P01" });
      expect(await db.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    });
  });

  describe("transactions", () => {
    beforeEach(async () => {
      await db.exec(`
        CREATE TABLE tenants (id text PRIMARY KEY);
        CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
        INSERT INTO counters (id, n) VALUES (1, 0);
      `);
    });
    const ids = async () =>
      (await db.query<{ id: string }>("SELECT id FROM tenants ORDER BY id")).map((r) => r.id);

    it("commits when the body resolves, and returns its value", async () => {
      const result = await db.transaction(async (tx) => {
        await tx.query("INSERT INTO tenants (id) VALUES ($1), ($2)", ["a", "b"]);
        return (await tx.query<{ n: number }>("SELECT count(*) AS n FROM tenants"))[0]?.n;
      });
      expect(result).toBe(2);
      expect(await ids()).toEqual(["a", "b"]);
    });

    it("rolls back when the body throws, and rethrows the same error", async () => {
      const boom = new Error("boom");
      const failing = db.transaction(async (tx) => {
        await tx.query("INSERT INTO tenants (id) VALUES ($1)", ["a"]);
        throw boom;
      });
      await expect(failing).rejects.toBe(boom);
      expect(await ids()).toEqual([]);
    });

    it("rolls back on an SQL error inside, which keeps its code", async () => {
      const failing = db.transaction(async (tx) => {
        await tx.query("INSERT INTO tenants (id) VALUES ($1)", ["a"]);
        await tx.query("INSERT INTO tenants (id) VALUES ($1)", ["a"]);
      });
      await expect(failing).rejects.toMatchObject({ code: "23505" });
      expect(await ids()).toEqual([]);
      // The connection that held the failed transaction is usable again.
      await db.transaction((tx) => tx.query("INSERT INTO tenants (id) VALUES ('b')"));
      expect(await ids()).toEqual(["b"]);
    });

    it("refuses the transaction's executor once the transaction has ended", async () => {
      let kept: SqlExecutor | undefined;
      await db.transaction(async (tx) => {
        kept = tx;
      });
      await expect(kept?.query("SELECT 1")).rejects.toThrow();
    });

    it("keeps concurrent transactions apart: 2 × 20 read-modify-write increments make 40", async () => {
      const increment20Times = (tx: SqlExecutor) => async () => {
        for (let i = 0; i < 20; i++) {
          const [row] = await tx.query<{ n: number }>("SELECT n FROM counters WHERE id = 1 FOR UPDATE");
          // Yield between the read and the write, inviting the other transaction in.
          await new Promise((resolve) => setImmediate(resolve));
          await tx.query("UPDATE counters SET n = $1 WHERE id = 1", [(row?.n ?? 0) + 1]);
        }
      };
      await Promise.all([
        db.transaction((tx) => increment20Times(tx)()),
        db.transaction((tx) => increment20Times(tx)()),
      ]);
      expect(await db.query("SELECT n FROM counters WHERE id = 1")).toEqual([{ n: 40 }]);
    });
  });

  describe("exec", () => {
    it("runs several statements separated by semicolons", async () => {
      await db.exec(`
        CREATE TABLE a (id int);
        CREATE TABLE b (id int);
        INSERT INTO a VALUES (1), (2);
        INSERT INTO b SELECT id * 10 FROM a;
      `);
      expect(await db.query("SELECT id FROM b ORDER BY id")).toEqual([{ id: 10 }, { id: 20 }]);
    });
  });
});

describe("PostgresDatabase error classification", () => {
  const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });

  it("treats network errors, shutdowns and timeouts as the server being unavailable", () => {
    for (const code of ["ECONNREFUSED", "ETIMEDOUT", "ENOTFOUND", "57P01", "57P03", "08006", "57014"]) {
      expect(isConnectionFailure(withCode(code)), code).toBe(true);
    }
    expect(isConnectionFailure(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(isConnectionFailure(new Error("timeout exceeded when trying to connect"))).toBe(true);
    expect(isConnectionFailure(new AggregateError([withCode("ECONNREFUSED")], ""))).toBe(true);
  });

  it("leaves errors about the SQL alone", () => {
    for (const code of ["23505", "42601", "42P01", "40001", "28P01"]) {
      expect(isConnectionFailure(withCode(code)), code).toBe(false);
    }
    expect(isConnectionFailure(new Error("boom"))).toBe(false);
  });

  it("names the server without its password", () => {
    expect(describeUrl("postgres://app:s3cret@db.internal:6432/imgfleet")).toBe(
      "postgres://app:***@db.internal:6432/imgfleet",
    );
    expect(describeUrl("postgres://app@db.internal/imgfleet")).toBe(
      "postgres://app@db.internal:5432/imgfleet",
    );
    expect(describeUrl("not a url :s3cret")).not.toContain("s3cret");
  });
});

(hasPostgres ? describe : describe.skip)("PostgresDatabase when the server is not there", () => {
  it("fails to open within a bounded time, naming the address but not the password", async () => {
    const port = await freePort();
    const started = Date.now();
    const opening = PostgresDatabase.open({
      url: `postgres://imgfleet:s3cret@127.0.0.1:${port}/imgfleet`,
      poolMax: 2,
      connectTimeoutMs: 500,
      statementTimeoutMs: 1_000,
    });
    const error = await opening.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${port}/imgfleet`);
    expect(message).toMatch(/attempt/);
    expect(message).not.toContain("s3cret");
  });

  describe("after the server stops", () => {
    let server: PostgresServer;
    let db: PostgresDatabase;
    beforeEach(async () => {
      server = await startPostgres();
      db = await PostgresDatabase.open({ ...postgresOptions(server.url), connectTimeoutMs: 1_000 });
      expect(await db.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
      await server.stop();
    });
    afterEach(async () => {
      await db.close();
      await server.stop();
    });

    it("rejects queries with DatabaseUnavailableError, keeping the cause", async () => {
      const error = await db.query("SELECT 1").then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(DatabaseUnavailableError);
      expect((error as Error).message).toContain(`127.0.0.1:${server.port}/postgres`);
      expect((error as Error).cause).toBeInstanceOf(Error);
    });

    it("rejects transactions with DatabaseUnavailableError", async () => {
      await expect(db.transaction((tx) => tx.query("SELECT 1"))).rejects.toBeInstanceOf(
        DatabaseUnavailableError,
      );
    });
  });
});

(hasPostgres ? describe : describe.skip)("PostgresDatabase statement timeout", () => {
  let server: PostgresServer;
  beforeEach(async () => {
    server = await startPostgres();
  });
  afterEach(() => server.stop());

  it("reports a statement the server cancelled for taking too long as unavailable", async () => {
    const db = await PostgresDatabase.open({ ...postgresOptions(server.url), statementTimeoutMs: 200 });
    try {
      await expect(db.query("SELECT pg_sleep(5)")).rejects.toBeInstanceOf(DatabaseUnavailableError);
      // The pool is still good for the next statement.
      expect(await db.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });
});
