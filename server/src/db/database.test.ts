import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { databaseKinds, useTestDatabase } from '../../test/harness.ts';
import { migrate } from './database.ts';

describe.each(databaseKinds())('database (%s)', (kind) => {
  const db = useTestDatabase(kind);

  it('reports its kind and has every table after migrating', async () => {
    expect(db.current.kind).toBe(kind);
    const tables = (await db.current.db.introspection.getTables()).map((t) => t.name).sort();
    expect(tables).toEqual(
      expect.arrayContaining(['documents', 'document_status', 'project_members', 'projects', 'sessions', 'sync_quarantine', 'sync_updates', 'users']),
    );
  });

  it('migrating again changes nothing', async () => {
    await migrate(db.current.db);
    const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(db.current.db);
    expect(rows.rows.map((r) => r.name)).toEqual(['2026-11-21T00-00-initial', '2026-11-21T01-00-viewer-role']);
  });

  it('never interleaves concurrent transactions', async () => {
    await sql`create table if not exists t_counter (n integer not null)`.execute(db.current.db);
    await sql`insert into t_counter values (0)`.execute(db.current.db);
    // Each transaction reads, yields, then writes read+1: interleaving would lose increments.
    await Promise.all(
      Array.from({ length: 10 }, () =>
        db.current.db.transaction().setIsolationLevel('serializable').execute(async (trx) => {
          await sql`lock table t_counter in exclusive mode`.execute(trx);
          const { rows } = await sql<{ n: number }>`select n from t_counter`.execute(trx);
          await new Promise((r) => setTimeout(r, 5));
          await sql`update t_counter set n = ${rows[0]!.n + 1}`.execute(trx);
        }),
      ),
    );
    const { rows } = await sql<{ n: number }>`select n from t_counter`.execute(db.current.db);
    expect(rows[0]!.n).toBe(10);
  });

  it('rolls back a failed transaction and stays usable', async () => {
    await expect(
      db.current.db.transaction().execute(async (trx) => {
        await trx.insertInto('users').values({ username: 'ghost', password_hash: 'x' }).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const ghost = await db.current.db.selectFrom('users').select('id').where('username', '=', 'ghost').executeTakeFirst();
    expect(ghost).toBeUndefined();
  });

  it('round-trips bytes exactly', async () => {
    const data = new Uint8Array([0, 1, 2, 254, 255, 0]);
    await db.current.db.insertInto('sync_updates').values({ room: 'bytes', data }).execute();
    const row = await db.current.db.selectFrom('sync_updates').select('data').where('room', '=', 'bytes').executeTakeFirstOrThrow();
    expect(Array.from(row.data)).toEqual(Array.from(data));
  });
});
