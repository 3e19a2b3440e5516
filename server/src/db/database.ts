/**
 * Opens the database: `pg` when DATABASE_URL is set, embedded PGlite otherwise, and migrates it.
 *
 * @example
 *   const { db, kind, close } = await openDatabase(config);
 */
import { promises as fs } from 'node:fs';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Database } from './types.ts';
import { migrations } from './migrations/index.ts';
import { PGliteDialect, type PreparedStatement, type StatementParam } from './pglite-dialect.ts';

export type { PreparedStatement, StatementParam };

export type DbKind = 'pglite' | 'postgres';

export interface OpenDatabase {
  db: Kysely<Database>;
  kind: DbKind;
  /**
   * On PGlite, runs a prepared statement once per row of values in one transaction, straight
   * through its wire protocol (see PGliteDialect.executeEach); null on PostgreSQL, where the
   * network round trip dwarfs what it saves.
   */
  executeEach: ((statement: PreparedStatement, rows: readonly (readonly StatementParam[])[]) => Promise<void>) | null;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl: string | null;
  dataDir: string;
}

export async function openDatabase(options: DatabaseOptions): Promise<OpenDatabase> {
  let db: Kysely<Database>;
  let kind: DbKind;
  let executeEach: OpenDatabase['executeEach'] = null;
  if (options.databaseUrl) {
    // A connection attempt to a host that does not answer fails after 10 s instead of hanging on
    // the OS's retries. TCP keep-alive, probing after 10 s idle, lets an idle pooled connection
    // whose peer vanished be noticed; a query in flight on a route that drops packets still
    // waits for TCP to give up, and the sync rooms say saving is delayed meanwhile.
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle client's error (the server restarting, say) must not crash the process.
    pool.on('error', () => {});
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    kind = 'postgres';
  } else {
    if (!options.dataDir.startsWith('memory://')) await fs.mkdir(options.dataDir, { recursive: true });
    const pglite = await PGlite.create(options.dataDir);
    const dialect = new PGliteDialect(pglite);
    db = new Kysely<Database>({ dialect });
    executeEach = (statement, rows) => dialect.executeEach(statement, rows);
    kind = 'pglite';
  }
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, kind, executeEach, close: () => db.destroy() };
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
