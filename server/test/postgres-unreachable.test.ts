/**
 * PostgreSQL behind a network that drops packets: nothing fails, nothing answers. The server
 * reaches the database through a proxy that, while frozen, holds every byte in both directions
 * (no reset, no error), as a black-holed route would. The room must still tell its peers that
 * saving is delayed, let a client whose socket dropped back in on its recent grant, and store
 * and send on everything once the route is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { defaultSyncLimits } from '../src/config.ts';
import { api, connectLayer, createTestDatabase, login, metric, rawSocket, startTestServer, storedDoc, waitFor, type TestDatabase, type TestServer } from './harness.ts';
import { TcpProxy } from './tcp-proxy.ts';

const ALICE = 2;

/** A server on a fresh PostgreSQL database of its own, reaching it through a TcpProxy. */
async function behindProxy(config: NonNullable<Parameters<typeof startTestServer>[0]>['config']) {
  const database = await createTestDatabase('postgres');
  const direct = new URL(database.config.databaseUrl!);
  const proxy = new TcpProxy([{ host: direct.hostname, port: Number(direct.port || 5432) }]);
  const viaProxy = new URL(direct);
  viaProxy.port = String(await proxy.listen());
  const server = await startTestServer({ database: { config: { ...database.config, databaseUrl: viaProxy.toString() }, drop: async () => {} }, config });
  return { database, proxy, server };
}

describe.runIf(process.env.TEST_DATABASE_URL)('PostgreSQL unreachable (packets dropped, no error)', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: TestServer;

  beforeAll(async () => {
    // The periodic access re-check would wait on the database too; keep it out of the way.
    ({ database, proxy, server } = await behindProxy({ sync: { ...defaultSyncLimits, storeDelayNoticeMs: 300, accessTimeoutMs: 300, accessRecheckMs: 60_000 } }));
  });

  afterAll(async () => {
    proxy?.thaw();
    await server?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('says saving is delayed while the store hangs, lets a dropped client back in, then stores and sends on everything', async () => {
    const room = layerRoom(1, ALICE);
    const danaCookie = await login(server.url, 'dana');
    const adminCookie = await login(server.url, 'admin');
    const alice = connectLayer(server.url, room, await login(server.url, 'alice'));
    let dana = connectLayer(server.url, room, danaCookie);
    try {
      await Promise.all([alice.synced, dana.synced]);
      for (let i = 0; i < 5; i++) addSpan(alice.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
      await waitFor(() => listSpans(dana.doc).length === 5, 'the first 5 spans at dana');

      proxy.freeze();
      for (let i = 5; i < 10; i++) addSpan(alice.doc, { label: 'ORG', start: i, end: i + 1, quote: 'x', author: ALICE });
      const delayed = () =>
        [...dana.provider.awareness.getStates().values()].some((s) => (s as { server?: { saving?: string } }).server?.saving === 'delayed');
      await waitFor(delayed, 'the saving-delayed notice', 5_000);
      expect(listSpans(dana.doc)).toHaveLength(5); // not stored, so not sent on

      // Dana's socket drops: her session may open this room, as the database said a moment ago.
      dana.destroy();
      dana = connectLayer(server.url, room, danaCookie);
      await dana.synced;
      expect(listSpans(dana.doc)).toHaveLength(5);
      // The owner never opened it: without an answer from the database, there is nothing to go on.
      await expect(rawSocket(server.url, room, adminCookie)).rejects.toThrow(/503/);

      proxy.thaw();
      await waitFor(() => listSpans(dana.doc).length === 10, 'all 10 spans at dana once the route is back', 10_000);
      await waitFor(() => !delayed(), 'the notice withdrawn');
      expect(listSpans(await storedDoc(server.database.db, room))).toHaveLength(10);
    } finally {
      alice.destroy();
      dana.destroy();
    }
  });
});

describe.runIf(process.env.TEST_DATABASE_URL)('PostgreSQL gone without a word while a write is in flight (a failover)', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: TestServer;

  beforeAll(async () => {
    ({ database, proxy, server } = await behindProxy({
      queryDeadlineMs: 1_000,
      sync: { ...defaultSyncLimits, storeDelayNoticeMs: 300, storeWriteDeadlineMs: 500, accessTimeoutMs: 300, accessRecheckMs: 60_000 },
    }));
  });

  afterAll(async () => {
    await server?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('answers an API request once its query’s connection went silent: 503 at the deadline, then from a new connection', async () => {
    const cookie = await login(server.url, 'carol');
    await Promise.all([login(server.url, 'dana'), login(server.url, 'admin')]); // (connections left idle)
    proxy.cut();
    const me = () => api(server.url, cookie, '/api/me', { signal: AbortSignal.timeout(5_000) });
    const first = await me(); // (a query on a connection gone silent would wait for TCP to give up)
    expect([200, 503]).toContain(first.status);
    if (first.status === 503) expect((first.body as { error: { code: string } }).error.code).toBe('database_unavailable');
    await waitFor(async () => (await me()).status === 200, 'answered from a new connection', 5_000);
  });

  const storeFailures = () => metric(server.url, 'spanwise_sync_errors_total{kind="store_failed"}');

  it('abandons the write and the connections cut off with it, and stores the queue on a new one, not once TCP gives up', async () => {
    const room = layerRoom(2, ALICE);
    const cookie = await login(server.url, 'alice');
    const alice = connectLayer(server.url, room, cookie);
    const bob = connectLayer(server.url, room, cookie);
    try {
      await Promise.all([alice.synced, bob.synced]);
      // Several connections in the pool, idle: a sync's reads, and two logins at once.
      await Promise.all([login(server.url, 'dana'), login(server.url, 'admin'), login(server.url, 'carol')]);
      addSpan(alice.doc, { label: 'GPE', start: 0, end: 1, quote: 'x', author: ALICE });
      await waitFor(() => listSpans(bob.doc).length === 1, 'the first span stored and sent on');
      const accepted = proxy.accepted;
      const failedBefore = await storeFailures();

      // Every connection open now to the database's old address is cut off for good (no reset,
      // no end); new ones reach it (the new primary).
      proxy.cut();
      for (let i = 1; i < 4; i++) addSpan(alice.doc, { label: 'ORG', start: i, end: i + 1, quote: 'x', author: ALICE });
      await waitFor(() => listSpans(bob.doc).length === 4, 'the spans stored on a new connection and sent on', 10_000);
      expect(proxy.accepted).toBeGreaterThan(accepted);
      expect(listSpans(await storedDoc(server.database.db, room))).toHaveLength(4);
      // One write abandoned: the idle connections cut off with it were let go of at once, not
      // each tried in turn for as long again.
      expect((await storeFailures()) - failedBefore).toBe(1);
    } finally {
      alice.destroy();
      bob.destroy();
    }
  });
});

describe.runIf(process.env.TEST_DATABASE_URL)('PostgreSQL alive, but a write stalled past its deadline (a lock held)', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    server = await startTestServer({
      database,
      config: { queryDeadlineMs: 1_000, sync: { ...defaultSyncLimits, storeDelayNoticeMs: 300, storeWriteDeadlineMs: 500, accessRecheckMs: 60_000 } },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('answers an API request whose query waits past its deadline 503 database_busy (cancelled), and the next one as usual', async () => {
    const cookie = await login(server.url, 'carol');
    const locker = new pg.Client({ connectionString: database.config.databaseUrl! });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table sessions in access exclusive mode');
      const res = await api(server.url, cookie, '/api/me', { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(503);
      expect((res.body as { error: { code: string } }).error.code).toBe('database_busy');
      await locker.query('commit');
      expect((await api(server.url, cookie, '/api/me')).status).toBe(200);
    } finally {
      await locker.end();
    }
  });

  it('cancels each abandoned write on the server: none is left waiting to commit a second copy once the lock goes', async () => {
    const room = layerRoom(3, ALICE);
    const alice = connectLayer(server.url, room, await login(server.url, 'alice'));
    const locker = new pg.Client({ connectionString: database.config.databaseUrl! });
    await locker.connect();
    const rows = async () => Number((await sql<{ n: string }>`select count(*) as n from sync_updates where room = ${room}`.execute(server.database.db)).rows[0]!.n);
    const waitingOnLocks = async () =>
      Number(
        (await locker.query(`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`)).rows[0].n,
      );
    try {
      await alice.synced;
      addSpan(alice.doc, { label: 'GPE', start: 0, end: 1, quote: 'x', author: ALICE });
      await waitFor(async () => (await rows()) === 1, 'the first edit stored');
      // Writes to the log wait on this lock (reads go on).
      await locker.query('begin');
      await locker.query('lock table sync_updates in share mode');
      addSpan(alice.doc, { label: 'ORG', start: 1, end: 2, quote: 'x', author: ALICE });
      await new Promise((r) => setTimeout(r, 1_800)); // past the deadline, and the next attempt's
      expect(await waitingOnLocks()).toBeLessThanOrEqual(1); // (the attempt under way, at most)
      await locker.query('commit');
      await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).length === 2, 'the second edit stored once the lock is gone');
      await new Promise((r) => setTimeout(r, 300)); // (time for a write left behind to commit)
      expect(await rows()).toBe(2);
    } finally {
      await locker.end();
      alice.destroy();
    }
  });
});
