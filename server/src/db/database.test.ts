import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Socket } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { Hono } from 'hono';
import { sql } from 'kysely';
import pg from 'pg';
import { databaseKinds, holdConnection, useTestDatabase } from '../../test/harness.ts';
import { DatabaseUnreachableError, ensureCluster, migrate, openDatabase, watchedPool, type OpenDatabase } from './database.ts';
import { DatabaseBusyError, StorageFullError, withoutQueueLimits, withQueueLimits, type QueueLimits } from './pglite-dialect.ts';
import { KyselyStore } from '../sync/adapters/kysely-store.ts';
import { createLogger, logLeftOutCounts } from '../log.ts';
import { errorHandler } from '../http/errors.ts';
import { TcpProxy } from '../../test/tcp-proxy.ts';
import { migrations } from './migrations/index.ts';

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
    expect(rows.rows.map((r) => r.name)).toEqual(Object.keys(migrations));
    expect(Object.keys(migrations)).toContain('2026-12-02T00-00-sign-in-attempts');
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

  it('keeps a transaction’s isolation level and access mode: a read-only one refuses writes', async () => {
    const level = await db.current.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => (await sql<{ transaction_isolation: string }>`show transaction_isolation`.execute(trx)).rows[0]!.transaction_isolation);
    expect(level).toBe('repeatable read');
    await expect(
      db.current.db
        .transaction()
        .setAccessMode('read only')
        .execute((trx) => trx.insertInto('users').values({ username: 'read-only', password_hash: 'x' }).execute()),
    ).rejects.toThrow(/read-only transaction/);
    expect(await db.current.db.selectFrom('users').select('id').where('username', '=', 'read-only').executeTakeFirst()).toBeUndefined();
  });

  it('round-trips bytes exactly: every value, none, and a view into a larger buffer', async () => {
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    const backing = Uint8Array.from([9, 9, 0, 1, 2, 254, 255, 0, 9]);
    const values = [every, new Uint8Array(0), backing.subarray(2, 8), Buffer.from([0, 92, 120])];
    for (const [i, data] of values.entries()) await db.current.db.insertInto('sync_updates').values({ room: `bytes-${i}`, data }).execute();
    for (const [i, data] of values.entries()) {
      const row = await db.current.db.selectFrom('sync_updates').select('data').where('room', '=', `bytes-${i}`).executeTakeFirstOrThrow();
      expect(Array.from(row.data), `value ${i}`).toEqual(Array.from(data));
    }
  });
});

describe('database (pglite): executeEach, the prepared path', () => {
  const db = useTestDatabase('pglite');
  const rooms = async (prefix: string) =>
    (await db.current.db.selectFrom('sync_updates').select('room').where('room', 'like', `${prefix}-%`).orderBy('id').execute()).map((r) => r.room);
  const insert = { name: 'test_insert', text: 'insert into sync_updates (room, data, kind) values ($1, $2, $3)', types: [25, 17, 25] };
  const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i + seed) % 256);

  it('creates WAL segments without writing them full of zeros inside a commit', async () => {
    const { rows } = await sql<{ wal_init_zero: string }>`show wal_init_zero`.execute(db.current.db);
    expect(rows[0]!.wal_init_zero).toBe('off');
  });

  it('runs a statement per row in one transaction; an error takes the rows back and the next call works', async () => {
    const executeEach = db.current.executeEach!;
    await executeEach(insert, [['x-1', bytes(256), 'update'], ['x-2', new Uint8Array(), 'update']]);
    // 'bad' breaks the kind check: the row before it goes back with it.
    await expect(executeEach(insert, [['x-3', bytes(3), 'update'], ['x-4', bytes(3), 'bad']])).rejects.toThrow(/check constraint/);
    // Prepared again after the error (closed first, as its Parse had gone through).
    await executeEach(insert, [['x-5', bytes(2), 'update']]);
    await expect(executeEach({ ...insert, name: 'broken', text: 'insert into no_such_table values ($1)', types: [25] }, [['a']])).rejects.toThrow(
      /no_such_table.*does not exist/,
    );
    await executeEach(insert, [['x-6', bytes(1), 'update']]);
    expect(await rooms('x')).toEqual(['x-1', 'x-2', 'x-5', 'x-6']);
    const first = await db.current.db.selectFrom('sync_updates').select('data').where('room', '=', 'x-1').executeTakeFirstOrThrow();
    expect(Array.from(first.data)).toEqual(Array.from(bytes(256)));
  });

  it('sends text of any script whole, and bytes exactly, as the values of its own Bind messages', async () => {
    const executeEach = db.current.executeEach!;
    const room = 'v-ü€𝄞 “quoted” \\ back';
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
    await executeEach(insert, [[room, data, 'update'], ['v-2', new Uint8Array([0, 0, 0]), 'snapshot']]);
    const rows = await db.current.db.selectFrom('sync_updates').select(['room', 'data', 'kind']).where('room', 'like', 'v-%').orderBy('id').execute();
    expect(rows.map((r) => [r.room, Array.from(r.data), r.kind])).toEqual([
      [room, Array.from(data), 'update'],
      ['v-2', [0, 0, 0], 'snapshot'],
    ]);
  });

  it('sends a batch past one message in several, still one transaction', async () => {
    const executeEach = db.current.executeEach!;
    const big = (room: string, kind = 'update') => [room, bytes(1536 * 1024, room.length), kind];
    await executeEach(insert, [big('z-1'), big('z-2'), big('z-3'), big('z-4')]);
    await expect(executeEach(insert, [big('w-1'), big('w-2'), big('w-3'), big('w-4', 'bad')])).rejects.toThrow(/check constraint/);
    expect(await rooms('z')).toEqual(['z-1', 'z-2', 'z-3', 'z-4']);
    expect(await rooms('w')).toEqual([]);
    // The session is out of the failed transaction.
    await executeEach(insert, [['w-5', bytes(1), 'update']]);
    expect(await rooms('w')).toEqual(['w-5']);
  });

  it('waits for a Kysely transaction in progress instead of running inside it', async () => {
    const executeEach = db.current.executeEach!;
    let inside!: () => void;
    const started = new Promise<void>((r) => (inside = r));
    const trx = db.current.db.transaction().execute(async (t) => {
      await t.insertInto('sync_updates').values({ room: 'y-a', data: new Uint8Array() }).execute();
      inside();
      await new Promise((r) => setTimeout(r, 30));
      await t.insertInto('sync_updates').values({ room: 'y-b', data: new Uint8Array() }).execute();
      throw new Error('roll back');
    });
    await started;
    // Run inside the open transaction, this row would go back with it.
    const quick = executeEach(insert, [['y-c', new Uint8Array(), 'update']]);
    await expect(trx).rejects.toThrow('roll back');
    await quick;
    expect(await rooms('y')).toEqual(['y-c']);
  });
});

describe('database (pglite): a request’s query waits its turn for a limited time', () => {
  const roomsOf = async (database: OpenDatabase) => (await database.db.selectFrom('sync_updates').select('room').orderBy('id').execute()).map((r) => r.room);
  const insertAnyway = (database: OpenDatabase, room: string) => database.db.insertInto('sync_updates').values({ room, data: new Uint8Array([1]) }).execute();
  /** As an API request makes it. */
  const insert = (database: OpenDatabase, room: string) => withQueueLimits(() => insertAnyway(database, room));
  /** Its error, or null once it ran. */
  const outcome = (query: Promise<unknown>) =>
    query.then(
      () => null,
      (err: unknown) => err,
    );
  /** Runs `body` on an in-memory database with these limits, its connection held from the start. */
  const whileHeld = async (queue: QueueLimits, body: (database: OpenDatabase, holder: ReturnType<typeof holdConnection>) => Promise<void>) => {
    const database = await openDatabase({ dataDir: 'memory://', databaseUrl: null, queue });
    try {
      const holder = holdConnection(database.db);
      await holder.held;
      await body(database, holder);
    } finally {
      await database.close();
    }
  };
  const limits = { waitMs: 150, maxWaiting: 3 };

  it('refuses a query that waited its limit, never runs it later, and serves the next one in line', () =>
    whileHeld(limits, async (database, holder) => {
      const caught = outcome(insert(database, 'gave-up'));
      await new Promise((r) => setTimeout(r, 80));
      // Outside a request (the upkeep, compaction, room loads) a query waits however long.
      const upkeep = insertAnyway(database, 'upkeep');
      const cutShort = withQueueLimits(() => withoutQueueLimits(() => insertAnyway(database, 'export')));
      const later = outcome(insert(database, 'served'));
      // The sync store's path waits as long as it takes.
      const store = database.executeEach!({ name: 'q_insert', text: 'insert into sync_updates (room, data) values ($1, $2)', types: [25, 17] }, [['stored', new Uint8Array([2])]]);
      const err = await caught;
      expect(err).toBeInstanceOf(DatabaseBusyError);
      expect((err as DatabaseBusyError).code).toBe('database_busy');
      expect((err as Error).message).toMatch(/waited 150 ms/);
      await new Promise((r) => setTimeout(r, 200)); // `later` is past its limit too now, and `store` still waits
      holder.release();
      await holder.done;
      expect(await later).toBeInstanceOf(DatabaseBusyError);
      await Promise.all([upkeep, cutShort, store]);
      await insert(database, 'after');
      expect(await roomsOf(database)).toEqual(['holder', 'upkeep', 'export', 'stored', 'after']);
    }));

  it('lets a scope wait without a time limit, still refused once the line is full', () =>
    whileHeld(limits, async (database, holder) => {
      const patient = (room: string) => withQueueLimits(() => insertAnyway(database, room), { waitMs: Number.POSITIVE_INFINITY });
      const inLine = ['p-1', 'p-2', 'p-3'].map(patient);
      await expect(patient('p-4')).rejects.toThrow(/busy: 3 queries are waiting/);
      await new Promise((r) => setTimeout(r, 300)); // twice the time limit
      holder.release();
      await holder.done;
      await Promise.all(inLine);
      expect(await roomsOf(database)).toEqual(['holder', 'p-1', 'p-2', 'p-3']);
    }));

  it('clears out thousands that gave up while one holder keeps the connection, and serves those still waiting in order', () =>
    whileHeld({ waitMs: 50, maxWaiting: 100_000 }, async (database, holder) => {
      // Among them, queries with no time limit: the clearing out must keep them, in their places.
      const first = insertAnyway(database, 'first');
      const gaveUp = Array.from({ length: 1_500 }, (_, i) => outcome(insert(database, `g-${i}`)));
      const middle = insertAnyway(database, 'middle');
      gaveUp.push(...Array.from({ length: 1_500 }, (_, i) => outcome(insert(database, `h-${i}`))));
      expect((await Promise.all(gaveUp)).every((e) => e instanceof DatabaseBusyError)).toBe(true);
      const last = insert(database, 'last');
      holder.release();
      await holder.done;
      await Promise.all([first, middle, last]);
      expect(await roomsOf(database)).toEqual(['holder', 'first', 'middle', 'last']);
    }));

  it('refuses a query at once when the line is full, and runs those in it in order', () =>
    whileHeld(limits, async (database, holder) => {
      const inLine = ['a', 'b', 'c'].map((room) => insert(database, room));
      const started = performance.now();
      await expect(insert(database, 'd')).rejects.toThrow(/busy: 3 queries are waiting/);
      expect(performance.now() - started).toBeLessThan(100);
      holder.release();
      await holder.done;
      await Promise.all(inLine);
      expect(await roomsOf(database)).toEqual(['holder', 'a', 'b', 'c']);
      // Those that gave up no longer count against the line.
      const again = holdConnection(database.db);
      await again.held;
      const waited = await Promise.all([insert(database, 'e'), insert(database, 'f'), insert(database, 'g')].map(outcome));
      expect(waited.every((e) => e instanceof DatabaseBusyError)).toBe(true);
      const next = insert(database, 'h');
      again.release();
      await again.done;
      await next;
      expect((await roomsOf(database)).slice(4)).toEqual(['holder', 'h']);
    }));
});

describe.each(databaseKinds().filter((k) => k !== 'pglite'))('database (%s): no quick path', (kind) => {
  const db = useTestDatabase(kind);
  it('offers no executeEach (the network round trip dwarfs what it would save)', () => {
    expect(db.current.executeEach).toBeNull();
  });

  it('runs no upkeep of its own (PostgreSQL has its checkpointer and autovacuum)', () => {
    expect(db.current.maintenance).toBeNull();
  });

  it('survives PostgreSQL ending a connection it has handed out, between two statements (a restart does)', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const ended = db.current.db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        // From another of the pool's connections, while this one sits between two statements.
        await sql`select pg_terminate_backend(${rows[0]!.pid})`.execute(db.current.db);
        await new Promise((r) => setTimeout(r, 300)); // the FATAL message reaches the idle client
        await sql`select 1`.execute(trx);
      });
      await expect(ended).rejects.toThrow();
      expect(uncaught).toEqual([]);
      // The pool lets the dead connection go and answers on a new one.
      expect((await sql<{ n: number }>`select 1 as n`.execute(db.current.db)).rows[0]!.n).toBe(1);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});

/** What a request that takes a connection from `pool` is answered: its status, and its error's code. */
async function answerWithout(pool: ReturnType<typeof watchedPool>): Promise<[number, string]> {
  const app = new Hono();
  app.onError(errorHandler(createLogger('error', () => {})));
  app.get('/things', async (c) => {
    (await pool.connect()).release();
    return c.text('connected');
  });
  const res = await app.request('/things');
  return [res.status, res.ok ? await res.text() : ((await res.json()) as { error: { code: string } }).error.code];
}

describe('database (postgres): a request that waited its limit for a connection', () => {
  it('is told the database cannot be reached when no connection could be made (a host that answers nothing), not that it is busy', async () => {
    // Takes connections and never says a word, as a PostgreSQL behind a route that drops
    // packets looks once the handshake is made.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const pool = new pg.Pool({ connectionString: `postgres://nobody@127.0.0.1:${port}/none`, max: 1, connectionTimeoutMillis: 300 });
    pool.on('error', () => {});
    try {
      const connections = watchedPool(pool);
      const connecting = connections.connect(); // takes the one slot, and never connects
      const waiting = answerWithout(connections); // waits for that slot
      await expect(connecting).rejects.toThrow(/connection timeout/);
      // pg's pool says "timeout exceeded when trying to connect" to the one that waited: every
      // connection taken, it could mean. None is open: the database is not there.
      expect(await waiting).toEqual([503, 'database_unavailable']);
      const [first, second] = await Promise.allSettled([connections.connect(), connections.connect()]);
      expect([first.status, second.status]).toEqual(['rejected', 'rejected']);
      expect((second as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnreachableError);
    } finally {
      await pool.end();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('is told it cannot be reached once the host went silent, though a connection to it was open before', async () => {
    const direct = new URL(process.env.TEST_DATABASE_URL!);
    const proxy = new TcpProxy([{ host: direct.hostname, port: Number(direct.port || 5432) }]);
    const viaProxy = new URL(direct);
    viaProxy.port = String(await proxy.listen());
    const pool = new pg.Pool({ connectionString: viaProxy.toString(), max: 1, connectionTimeoutMillis: 300, idleTimeoutMillis: 100 });
    pool.on('error', () => {});
    const connections = watchedPool(pool);
    try {
      (await connections.connect()).release(); // one open, then idle
      proxy.freeze(); // nothing passes from now on, on any connection, old or new
      // The pool ends the idle one: half-closed, as its host never answers the end.
      await new Promise((r) => setTimeout(r, 300));
      // One request takes the slot, connecting for ever; the next waits for it, and is told.
      const answers = await Promise.all([answerWithout(connections), answerWithout(connections)]);
      expect(answers).toEqual([
        [503, 'database_unavailable'],
        [503, 'database_unavailable'],
      ]);
    } finally {
      proxy.thaw();
      await pool.end();
      await proxy.close();
    }
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('never hands out again a connection a cancel was sent for (a late cancel would end the next query on it)', async () => {
    const pool = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL, max: 1, connectionTimeoutMillis: 5_000 });
    const connections = watchedPool(pool, 300);
    const pid = async () => {
      const client = await connections.connect();
      try {
        return (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      } finally {
        client.release();
      }
    };
    try {
      const before = await pid();
      expect(await pid()).toBe(before); // (reused, as a pool does)
      const client = await connections.connect();
      await expect(client.query('select pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
      client.release();
      expect(await pid()).not.toBe(before);
    } finally {
      await pool.end();
    }
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('is told the database is busy when every connection is open and taken', async () => {
    const pool = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL, max: 1, connectionTimeoutMillis: 300 });
    const connections = watchedPool(pool);
    try {
      const held = await connections.connect();
      try {
        expect(await answerWithout(connections)).toEqual([503, 'database_busy']);
        await expect(connections.connect()).rejects.toBeInstanceOf(DatabaseBusyError);
      } finally {
        held.release();
      }
      expect(await answerWithout(connections)).toEqual([200, 'connected']);
    } finally {
      await pool.end();
    }
  });
});

describe('database (pglite): the upkeep of the background processes it lacks', () => {
  const kb = 1024;
  const tableBytes = async (open: OpenDatabase) =>
    Number((await sql<{ n: string }>`select pg_relation_size('sync_updates')::text as n`.execute(open.db)).rows[0]!.n);
  const redo = async (open: OpenDatabase) => (await sql<{ lsn: string }>`select redo_lsn::text as lsn from pg_control_checkpoint()`.execute(open.db)).rows[0]!.lsn;
  /**
   * 2,000 rows of 200 bytes (~1 MB of WAL), and the 2,000 before them deleted, as compaction
   * does: the rows that stay keep the table from being truncated, so only reuse keeps it small.
   */
  const writeAndDelete = async (open: OpenDatabase, cycle = 0) => {
    const room = `doc:${cycle % 2}:user:1`;
    await sql`delete from sync_updates where room = ${room}`.execute(open.db);
    await sql`insert into sync_updates (room, data, kind)
      select ${room}, decode(repeat('ab', 200), 'hex'), 'update' from generate_series(1, 2000)`.execute(open.db);
  };

  it('once enough WAL is written, makes deleted rows’ space reusable and moves the checkpoint on; without it the table only grows', async () => {
    const kept = await openDatabase({ databaseUrl: null, dataDir: 'memory://', pgliteMaintenance: { walBytes: 256 * kb, checkEveryMs: 0 } });
    const bare = await openDatabase({ databaseUrl: null, dataDir: 'memory://', pgliteMaintenance: { walBytes: 1024 * 1024 * kb, checkEveryMs: 0 } });
    try {
      await kept.maintenance!.runIfDue(); // (migrating may have written enough)
      expect(await kept.maintenance!.runIfDue()).toBe(false); // not due again yet
      const keptSizes: number[] = [];
      const bareSizes: number[] = [];
      const checkpoints = new Set([await redo(kept)]);
      for (let cycle = 0; cycle < 6; cycle++) {
        await writeAndDelete(kept, cycle);
        expect(await kept.maintenance!.runIfDue()).toBe(true);
        checkpoints.add(await redo(kept));
        keptSizes.push(await tableBytes(kept));
        await writeAndDelete(bare, cycle);
        expect(await bare.maintenance!.runIfDue()).toBe(false);
        bareSizes.push(await tableBytes(bare));
      }
      expect(checkpoints.size).toBe(7); // one more after every cycle
      // Two rooms take turns: each cycle deletes the rows one room wrote two cycles before and
      // writes as many again, so 2,000–4,000 rows are alive at once. Postgres on its own
      // (single-user mode) never reuses the space: the table grows by a batch every cycle. With
      // the upkeep it stops growing once the third batch is written.
      expect(bareSizes[5]).toBeGreaterThanOrEqual(bareSizes[2]! * 1.8);
      expect(keptSizes[2]).toBeGreaterThan(0);
      expect(Math.max(...keptSizes.slice(2))).toBeLessThanOrEqual(keptSizes[2]!);
    } finally {
      await kept.close();
      await bare.close();
    }
  });

  it('checks by itself, logs what it did, and stops on close', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const open = await openDatabase({ databaseUrl: null, dataDir: 'memory://', pgliteMaintenance: { walBytes: 1024 * kb, checkEveryMs: 20 }, log });
    try {
      const before = await redo(open);
      await new Promise((resolve) => setTimeout(resolve, 100)); // (migrating wrote less than that)
      expect(lines.map((l) => l.event)).not.toContain('db_maintenance');
      await writeAndDelete(open, 0);
      await writeAndDelete(open, 1);
      await vi.waitFor(() => expect(lines.map((l) => l.event)).toContain('db_maintenance'), { timeout: 5_000 });
      expect(await redo(open)).not.toBe(before);
      const done = lines.find((l) => l.event === 'db_maintenance')!;
      expect(done.walBytes).toBeGreaterThanOrEqual(1024 * kb);
      expect(done).toHaveProperty('vacuumMs');
      expect(done).toHaveProperty('checkpointMs');
    } finally {
      await open.close();
    }
    expect(await open.maintenance!.runIfDue()).toBe(false); // stopped
  });

  it('warns once some database of the cluster nears running out of transaction ids', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const open = await openDatabase({ databaseUrl: null, dataDir: 'memory://', pgliteMaintenance: { walBytes: 1, checkEveryMs: 0, warnXidAge: 1 }, log });
    try {
      expect(await open.maintenance!.runIfDue()).toBe(true);
      const warning = lines.find((l) => l.event === 'db_transaction_ids_running_out');
      expect(warning?.level).toBe('warn');
      expect(warning?.age).toBeGreaterThan(1); // the templates: frozen when the cluster was made
    } finally {
      await open.close();
    }
  });

  it('a start freezes the template databases once they are old, which nothing else reaches', async () => {
    await inTempDir('spanwise-freeze-', async (dir) => {
      const templateAges = async (open: OpenDatabase) =>
        (await sql<{ datname: string; age: number }>`select datname, age(datfrozenxid) as age from pg_database where datistemplate order by datname`.execute(open.db)).rows;
      const first = await openDatabase({ databaseUrl: null, dataDir: dir, pgliteMaintenance: { walBytes: 1, checkEveryMs: 0 } });
      for (let i = 0; i < 200; i++) await sql`insert into sync_updates (room, data, kind) values ('doc:1:user:1', ${new Uint8Array([i])}, 'update')`.execute(first.db);
      await first.maintenance!.runIfDue(); // the open database: frozen or not, its own VACUUM reaches it
      const before = await templateAges(first);
      await first.close();
      expect(before.map((t) => t.datname)).toEqual(['template0', 'template1']);
      for (const t of before) expect(t.age).toBeGreaterThan(200);

      const lines: Record<string, unknown>[] = [];
      const log = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
      const again = await openDatabase({ databaseUrl: null, dataDir: dir, freezeTemplatesAfterAge: 100, log });
      try {
        expect(lines.find((l) => l.event === 'db_templates_freezing')?.age).toBeGreaterThan(200);
        for (const t of await templateAges(again)) expect(t.age).toBeLessThan(50);
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from sync_updates`.execute(again.db);
        expect(rows[0]!.n).toBe(200);
        await sql`insert into sync_updates (room, data, kind) values ('doc:1:user:1', ${new Uint8Array([1])}, 'update')`.execute(again.db);
      } finally {
        await again.close();
      }
    });
  });
});

describe('database (pglite): Postgres notices', () => {
  it('logs its warnings, from Kysely and from the append path, at most once a minute for each kind', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const open = await openDatabase({ databaseUrl: null, dataDir: 'memory://', log });
    try {
      const notices = () => lines.filter((l) => l.event === 'db_notice');
      await sql.raw(`do $$ begin raise warning 'spanwise test warning'; end $$`).execute(open.db);
      expect(notices()).toEqual([expect.objectContaining({ level: 'warn', severity: 'WARNING', code: '01000', message: 'spanwise test warning' })]);
      await sql.raw(`do $$ begin raise warning 'spanwise test warning'; end $$`).execute(open.db);
      expect(notices()).toHaveLength(1); // the same kind within the minute: left out
      // One that differs only in its numbers is the same kind; another message is not.
      await sql.raw(`do $$ begin raise warning 'must be vacuumed within 1000 transactions'; end $$`).execute(open.db);
      await sql.raw(`do $$ begin raise warning 'must be vacuumed within 999 transactions'; end $$`).execute(open.db);
      expect(notices().map((n) => n.message)).toEqual(['spanwise test warning', 'must be vacuumed within 1000 transactions']);

      await sql.raw(`create function spanwise_warn(text) returns int language plpgsql as $$ begin raise warning using message = $1, errcode = '01P99'; return 1; end $$`).execute(open.db);
      await open.executeEach!({ name: 'spanwise_warn', text: 'select spanwise_warn($1)', types: [25] }, [['from the append path']]);
      expect(notices()).toHaveLength(3);
      expect(notices()[2]).toMatchObject({ level: 'warn', code: '01P99', message: 'from the append path' });
      // A NOTICE is not logged at info.
      await sql.raw(`do $$ begin raise notice 'chatter'; end $$`).execute(open.db);
      expect(notices()).toHaveLength(3);
      // The counts of those left out, once their minute ends (or the process exits), naming
      // their kind's message (its numbers as #).
      logLeftOutCounts();
      expect(notices().slice(3)).toEqual([
        expect.objectContaining({ level: 'warn', severity: 'WARNING', code: '01000', message: 'spanwise test warning', leftOut: 1 }),
        expect.objectContaining({ level: 'warn', severity: 'WARNING', code: '01000', message: 'must be vacuumed within # transactions', leftOut: 1 }),
      ]);
    } finally {
      await open.close();
    }
  });
});

describe('database (pglite): a disk nearly full', () => {
  const mib = 1024 * 1024;
  const insert = (open: OpenDatabase, room: string) =>
    sql`insert into sync_updates (room, data, kind) values (${room}, ${new Uint8Array([1, 2, 3])}, 'update')`.execute(open.db);

  it('refuses writes with a clear error while the disk is below the reserve, goes on reading, and writes again once space is freed', async () => {
    await inTempDir('spanwise-disk-', async (dir) => {
      let free = 10_000 * mib;
      const lines: Record<string, unknown>[] = [];
      const log = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
      const open = await openDatabase({
        databaseUrl: null,
        dataDir: dir,
        diskGuard: { reserveBytes: 64 * mib, checkEveryMs: 10, freeBytes: () => free },
        pgliteMaintenance: { walBytes: 1, checkEveryMs: 0 },
        log,
      });
      try {
        await insert(open, 'doc:1:user:1');
        free = 20 * mib;
        await vi.waitFor(() => expect(lines.map((l) => l.event)).toContain('db_disk_low'), { timeout: 2_000 });
        const refused = await insert(open, 'doc:1:user:1').catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(StorageFullError);
        expect(refused).toMatchObject({ code: '53100', message: expect.stringMatching(/has 20 MiB free, less than the 64 MiB kept in reserve/) });
        const statement = { name: 'disk_insert', text: 'insert into sync_updates (room, data, kind) values ($1, $2, $3)', types: [25, 17, 25] };
        await expect(open.executeEach!(statement, [['doc:2:user:1', new Uint8Array([1]), 'update']])).rejects.toBeInstanceOf(StorageFullError);
        const inTransaction = open.db.transaction().execute((trx) => sql`delete from sync_updates`.execute(trx));
        await expect(inTransaction).rejects.toBeInstanceOf(StorageFullError);
        // Statements that read but write too are refused; so are two statements in one.
        for (const text of ['select * from sync_updates for update', "select nextval('sync_updates_id_seq')", 'select 1; delete from sync_updates']) {
          await expect(sql.raw(text).execute(open.db)).rejects.toBeInstanceOf(StorageFullError);
        }
        await open.db.transaction().execute((trx) => sql`select count(*) from sync_updates`.execute(trx));
        // Reads go on; the upkeep, due at every run here, waits too (it writes).
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from sync_updates`.execute(open.db);
        expect(rows[0]!.n).toBe(1);
        expect(await open.maintenance!.runIfDue()).toBe(false);

        free = 1_000 * mib;
        await vi.waitFor(() => expect(lines.map((l) => l.event)).toContain('db_disk_ok'), { timeout: 2_000 });
        await insert(open, 'doc:1:user:1');
        await open.executeEach!(statement, [['doc:2:user:1', new Uint8Array([1]), 'update']]);
        expect(await open.maintenance!.runIfDue()).toBe(true);
        expect((await sql<{ n: number }>`select count(*)::int as n from sync_updates`.execute(open.db)).rows[0]!.n).toBe(3);
      } finally {
        await open.close();
      }
    });
  });

  it('measures each write against the space left just before it: a large one is refused while small ones go on, and the store writes room by room', async () => {
    await inTempDir('spanwise-disk-', async (dir) => {
      let free = 200 * mib; // (enough to create the cluster)
      const open = await openDatabase({ databaseUrl: null, dataDir: dir, diskGuard: { reserveBytes: 64 * mib, checkEveryMs: 60_000, freeBytes: () => free } });
      try {
        free = 74 * mib; // 10 MiB above the reserve: the once-a-second check would see nothing wrong
        await insert(open, 'doc:1:user:1');
        const large = new Uint8Array(4 * mib); // up to ~12 MiB on disk with its WAL
        const refused = await sql`insert into sync_updates (room, data, kind) values ('doc:1:user:1', ${large}, 'update')`.execute(open.db).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(StorageFullError);
        expect((refused as Error).message).toMatch(/has 74 MiB free, too little for a write of 4 MiB with 64 MiB kept in reserve/);
        const statement = { name: 'disk_insert', text: 'insert into sync_updates (room, data, kind) values ($1, $2, $3)', types: [25, 17, 25] };
        await expect(open.executeEach!(statement, [['doc:2:user:1', large, 'update']])).rejects.toBeInstanceOf(StorageFullError);

        // Appends of several rooms share a transaction; refused, each room is written on its own,
        // and the one that fits goes in.
        const store = new KyselyStore(open.db, { compactAfterRows: 1000, log: { info() {}, warn() {}, error() {} }, executeEach: open.executeEach! });
        const [big, small] = await Promise.allSettled([store.append('doc:3:user:1', [large]), store.append('doc:4:user:1', [new Uint8Array([7])])]);
        expect(big.status).toBe('rejected');
        expect((big as PromiseRejectedResult).reason).toBeInstanceOf(StorageFullError);
        expect(small.status).toBe('fulfilled');
        free = 200 * mib;
        await store.append('doc:3:user:1', [large]);
        const rooms = await sql<{ room: string }>`select room from sync_updates order by id`.execute(open.db);
        expect(rooms.rows.map((r) => r.room)).toEqual(['doc:1:user:1', 'doc:4:user:1', 'doc:3:user:1']);
      } finally {
        await open.close();
      }
    });
  });

  it('a start on a disk below the reserve fails with a clear error before anything is made', async () => {
    await inTempDir('spanwise-disk-', async (parent) => {
      const dir = path.join(parent, 'data');
      const opening = openDatabase({ databaseUrl: null, dataDir: dir, diskGuard: { reserveBytes: 64 * mib, freeBytes: () => 3 * mib } });
      await expect(opening).rejects.toThrow(/has 3 MiB free; the embedded database needs at least 112 MiB \(PGLITE_MIN_FREE_MB, plus 48 MiB to create it\)/);
      expect(await readdir(parent)).toEqual([]);
    });
  });
});

/** Runs `work` in a fresh temporary folder, removed afterwards whatever happens. */
async function inTempDir(prefix: string, work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  try {
    await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a module script (with tsx, from the repository root) in a process of its own, with
 * `arg` as process.argv[1]; `asNobody` runs it as that user (root only). Resolves its stdout.
 */
function runScript(script: string, arg: string, { asNobody = false } = {}): Promise<string> {
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script, arg];
  const [command, ...args] = asNobody ? ['runuser', '-u', 'nobody', '--', ...node] : node;
  return new Promise((resolve, reject) => {
    execFile(command!, args, { cwd: path.resolve(import.meta.dirname, '../../..'), timeout: 90_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}
const databaseModule = JSON.stringify(new URL('./database.ts', import.meta.url).href);

describe('database (pglite): a first start in a fresh folder', () => {
  it('keeps its data and leaves the process near 500 MB, not the ~850 MB creating a cluster costs', async () => {
    await inTempDir('spanwise-fresh-', async (dir) => {
      // A process of its own: its resident memory is this test's measure.
      const script = `
        import { openDatabase } from ${databaseModule};
        import { sql } from 'kysely';
        const first = await openDatabase({ databaseUrl: null, dataDir: process.argv[1] });
        await sql\`insert into users (username, password_hash) values ('fresh', 'x')\`.execute(first.db);
        const rss = process.memoryUsage().rss;
        await first.close();
        const again = await openDatabase({ databaseUrl: null, dataDir: process.argv[1] });
        const { rows } = await sql\`select username from users\`.execute(again.db);
        await again.close();
        console.log(JSON.stringify({ rss, names: rows.map((r) => r.username) }));`;
      const out = await runScript(script, dir);
      const { rss, names } = JSON.parse(out.trim().split('\n').pop()!) as { rss: number; names: string[] };
      expect(names).toEqual(['fresh']);
      expect(rss / 2 ** 20).toBeLessThan(650);
    });
  }, 120_000);
});

describe('database (pglite): creating the folder', () => {
  it('refuses a folder that holds something else, and clears what a killed first start left', async () => {
    await inTempDir('spanwise-folder-', async (parent) => {
      const taken = path.join(parent, 'taken');
      await mkdir(taken);
      await writeFile(path.join(taken, 'notes.txt'), 'mine');
      await expect(ensureCluster(taken)).rejects.toThrow(/not empty but holds no database/);
      // A staging folder of a process that no longer runs (pid 2^22 + 1 is above Linux's maximum).
      await mkdir(path.join(parent, `fresh.creating-${2 ** 22 + 1}-deadbeef`));
      await mkdir(path.join(parent, `fresh.creating-${process.ppid}-a11be000`)); // a live one stays
      // One of this pid's that is not this process's own (a container's first start killed: pid 1 each time).
      await mkdir(path.join(parent, `fresh.creating-${process.pid}-0ddba11e`));
      await ensureCluster(path.join(parent, 'fresh'));
      expect((await readdir(parent)).sort()).toEqual(['fresh', `fresh.creating-${process.ppid}-a11be000`, 'taken']);
    });
  }, 60_000);

  it('creates the cluster where a link points, and in a volume’s root beside its lost+found', async () => {
    await inTempDir('spanwise-link-', async (parent) => {
      const target = path.join(parent, 'elsewhere');
      await mkdir(target);
      await symlink(target, path.join(parent, 'data'));
      await ensureCluster(path.join(parent, 'data'));
      expect((await lstat(path.join(parent, 'data'))).isSymbolicLink()).toBe(true);
      expect((await readdir(target)).includes('PG_VERSION')).toBe(true);
      // A link to a folder not made yet: made, and the cluster goes there.
      await symlink(path.join(parent, 'later'), path.join(parent, 'data2'));
      await ensureCluster(path.join(parent, 'data2'));
      expect((await readdir(path.join(parent, 'later'))).includes('PG_VERSION')).toBe(true);
      // What a start cut short while creating in place left, under its marker: cleared and made again.
      const cut = path.join(parent, 'cut');
      await mkdir(path.join(cut, 'base'), { recursive: true });
      await writeFile(path.join(cut, '.spanwise-creating'), '1\n');
      await writeFile(path.join(cut, 'postgresql.conf'), 'half');
      await ensureCluster(cut);
      expect((await readdir(cut)).includes('PG_VERSION')).toBe(true);
      expect((await readdir(cut)).includes('.spanwise-creating')).toBe(false);
      const volume = path.join(parent, 'volume');
      await mkdir(path.join(volume, 'lost+found'), { recursive: true });
      await ensureCluster(volume);
      expect((await readdir(volume)).includes('PG_VERSION')).toBe(true);
    });
  }, 60_000);

  it('of two first starts at once, one cluster wins whole and both go on with it', async () => {
    await inTempDir('spanwise-race-', async (parent) => {
      const dir = path.join(parent, 'data');
      await Promise.all([ensureCluster(dir), ensureCluster(dir)]);
      expect(await readdir(parent)).toEqual(['data']);
      const db = await openDatabase({ databaseUrl: null, dataDir: dir });
      await db.close();
    });
  }, 90_000);

  // As in the Docker image: the app's folder is root's, the data folder the server user's. Only
  // root can run a process as another user here.
  it.runIf(process.getuid?.() === 0)('creates the cluster in place when it may not write beside the data folder', async () => {
    await inTempDir('spanwise-perm-', async (parent) => {
      await chmod(parent, 0o755);
      const data = path.join(parent, 'data');
      await mkdir(data);
      await chown(data, 65534, 65534);
      const script = `
        import { ensureCluster } from ${databaseModule};
        await ensureCluster(process.argv[1]);`;
      await runScript(script, data, { asNobody: true });
      expect((await readdir(data)).includes('PG_VERSION')).toBe(true);
      expect(await readdir(parent)).toEqual(['data']);
    });
  }, 120_000);
});

describe('database (pglite): one process on a folder', () => {
  /** A script that opens the folder (waiting `waitMs`), writes `name`, and says what happened. */
  const opener = (name: string, waitMs: number) => `
    import { openDatabase } from ${databaseModule};
    import { sql } from 'kysely';
    try {
      const open = await openDatabase({ databaseUrl: null, dataDir: process.argv[1], lockWaitMs: ${waitMs} });
      await sql\`insert into users (username, password_hash) values ('${name}', 'x')\`.execute(open.db);
      await open.close();
      console.log('opened');
    } catch (err) {
      console.log(err.message);
    }`;

  it('refuses a second server on a folder in use, here or in another process, and lets the next in once it is closed', async () => {
    await inTempDir('spanwise-lock-', async (parent) => {
      const dir = path.join(parent, 'data');
      const first = await openDatabase({ databaseUrl: null, dataDir: dir });
      try {
        await expect(openDatabase({ databaseUrl: null, dataDir: dir })).rejects.toThrow(/is in use by process \d+ on this host/);
        expect((await runScript(opener('second', 1_000), dir)).trim()).toMatch(new RegExp(`in use by process ${process.pid} on this host`));
        // One that waits long enough gets in once the first has closed.
        const waiting = runScript(opener('third', 20_000), dir);
        await new Promise((r) => setTimeout(r, 1_500));
        await sql`insert into users (username, password_hash) values ('first', 'x')`.execute(first.db);
        await first.close();
        expect((await waiting).trim()).toBe('opened');
      } finally {
        await first.close().catch(() => {});
      }
      const again = await openDatabase({ databaseUrl: null, dataDir: dir });
      try {
        const { rows } = await sql<{ username: string }>`select username from users order by id`.execute(again.db);
        expect(rows.map((r) => r.username)).toEqual(['first', 'third']); // nothing of the refused one, nothing lost
      } finally {
        await again.close();
      }
    });
  }, 120_000);

  it('keeps other users of the host out of the folder (PGlite makes its files writable by anyone)', async () => {
    await inTempDir('spanwise-mode-', async (parent) => {
      const dir = path.join(parent, 'data');
      await (await openDatabase({ databaseUrl: null, dataDir: dir })).close();
      expect((await stat(dir)).mode & 0o077).toBe(0);
    });
  }, 60_000);

  it('takes over a lock its holder left: at once for a pid gone on this host, once stale for another host', async () => {
    await inTempDir('spanwise-lock-', async (parent) => {
      const dir = path.join(parent, 'data');
      await (await openDatabase({ databaseUrl: null, dataDir: dir })).close();
      const lockDir = path.join(dir, 'spanwise.lock');
      const leave = async (owner: object, ageMs: number) => {
        await mkdir(lockDir);
        await writeFile(path.join(lockDir, 'owner'), JSON.stringify(owner));
        const then = new Date(Date.now() - ageMs);
        await utimes(lockDir, then, then);
      };
      // A process of this host killed (-9) while it held the folder: its pid no longer runs.
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      const ns = await readlink('/proc/self/ns/pid');
      await leave({ host: hostname(), ns, pid: dead, token: 'gone' }, 0);
      const started = Date.now();
      await (await openDatabase({ databaseUrl: null, dataDir: dir, lockWaitMs: 30_000 })).close();
      expect(Date.now() - started).toBeLessThan(10_000);
      // Another host's (a container's), renewed a minute ago: gone. Renewed just now: in use.
      await leave({ host: 'elsewhere', pid: 1, token: 'old' }, 60_000);
      await (await openDatabase({ databaseUrl: null, dataDir: dir, lockWaitMs: 1_000 })).close();
      await leave({ host: 'elsewhere', pid: 1, token: 'live' }, 0);
      await expect(openDatabase({ databaseUrl: null, dataDir: dir, lockWaitMs: 1_000 })).rejects.toThrow(/in use by process 1 on host elsewhere/);
      await rm(lockDir, { recursive: true });
      // This host's name, another pid namespace (a container on the host's network): its pids
      // are not this process's to look up, so only staleness counts.
      await leave({ host: hostname(), ns: 'pid:[1]', pid: dead, token: 'other-namespace' }, 0);
      await expect(openDatabase({ databaseUrl: null, dataDir: dir, lockWaitMs: 1_000 })).rejects.toThrow(/in use by process \d+ on host/);
      await rm(lockDir, { recursive: true });
      // A live process of this machine holds it, not renewed for a minute (its event loop held
      // up): still in use.
      await leave({ host: hostname(), ns, pid: process.ppid, token: 'stalled' }, 60_000);
      await expect(openDatabase({ databaseUrl: null, dataDir: dir, lockWaitMs: 1_000 })).rejects.toThrow(new RegExp(`in use by process ${process.ppid} on this host`));
    });
  }, 120_000);
});
