import type { Database } from "./database.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

/** Any constant: every node migrating at once takes turns on this advisory lock. */
const MIGRATION_LOCK = 7_316_502;

export interface MigrationReport {
  applied: number[];
  version: number;
}

/**
 * Brings the schema up to date, one transaction per migration. Safe to run
 * from many nodes at once (an advisory lock serialises them) and refuses a
 * database whose schema is newer than this build knows.
 */
export async function migrate(
  db: Database,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationReport> {
  // Under the lock too: nodes starting together on an empty database would race on creating the ledger.
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
  });
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      const [row] = await tx.query<{ version: number | null }>(
        "SELECT max(version) AS version FROM schema_migrations",
      );
      const current = row?.version ?? 0;
      if (current > known) {
        throw new Error(
          `the database schema is at version ${current} but this imgfleet knows only up to ${known}; upgrade imgfleet before starting it against this database`,
        );
      }
      if (current >= migration.version) return false;
      for (const statement of migration.statements) await tx.query(statement);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return { applied, version: known };
}
