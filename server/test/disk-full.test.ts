/**
 * Embedded PGlite's disk nearly full. PGlite out of disk in the middle of its WAL spins for good
 * and takes the server with it, so writes that would dip into the reserve are refused before
 * they reach it (see src/db/disk-guard.ts). The room must keep its edits, tell its peers saving
 * is delayed, let reads and the API's reads go on, and store and send on everything once space
 * is freed. The free space the server reads is stood in for: a test cannot fill the disk.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { defaultSyncLimits } from '../src/config.ts';
import { connectLayer, createTestDatabase, login, startTestServer, storedDoc, waitFor, type TestServer } from './harness.ts';

const ALICE = 2;
const MIB = 1024 * 1024;

describe('embedded database, disk nearly full', () => {
  let server: TestServer;
  let free = 10_000 * MIB;

  beforeAll(async () => {
    server = await startTestServer({
      database: await createTestDatabase('pglite', { persistent: true }),
      config: { pgliteMinFreeBytes: 64 * MIB, sync: { ...defaultSyncLimits, storeDelayNoticeMs: 300 } },
      diskFreeBytes: () => free,
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('keeps the edits and says saving is delayed while writes are refused, answers 503 to API writes, and stores and sends on everything once space is freed', async () => {
    const room = layerRoom(1, ALICE);
    const aliceCookie = await login(server.url, 'alice');
    const alice = connectLayer(server.url, room, aliceCookie);
    const dana = connectLayer(server.url, room, await login(server.url, 'dana'));
    try {
      await Promise.all([alice.synced, dana.synced]);
      for (let i = 0; i < 5; i++) addSpan(alice.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
      await waitFor(() => listSpans(dana.doc).length === 5, 'the first 5 spans at dana');

      free = 20 * MIB;
      // Far above the reserve, writes go on a reading up to 100 ms old (a disk does not lose
      // 10 GB faster than that); the next write measures again.
      await new Promise((r) => setTimeout(r, 150));
      for (let i = 5; i < 10; i++) addSpan(alice.doc, { label: 'ORG', start: i, end: i + 1, quote: 'x', author: ALICE });
      const delayed = () =>
        [...dana.provider.awareness.getStates().values()].some((s) => (s as { server?: { saving?: string } }).server?.saving === 'delayed');
      await waitFor(delayed, 'the saving-delayed notice', 5_000);
      expect(listSpans(dana.doc)).toHaveLength(5); // not stored, so not sent on

      // The API reads; what it would write (a sign-in) is refused with a clear status.
      const me = await fetch(`${server.url}/api/me`, { headers: { cookie: aliceCookie } });
      expect(me.status).toBe(200);
      const signIn = await fetch(`${server.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'dana', password: 'demo' }),
      });
      expect(signIn.status).toBe(503);
      expect(((await signIn.json()) as { error: { code: string } }).error.code).toBe('storage_full');

      free = 10_000 * MIB;
      await waitFor(() => listSpans(dana.doc).length === 10, 'all 10 spans at dana once space is freed', 15_000);
      await waitFor(() => !delayed(), 'the notice withdrawn');
      expect(listSpans(await storedDoc(server.database.db, room))).toHaveLength(10);
    } finally {
      alice.destroy();
      dana.destroy();
    }
  });
});

describe('embedded database, room for edits but not for a compaction', () => {
  it('puts a compaction off when deleting the merged rows may write more WAL than the space above the reserve, and stores every edit', async () => {
    let free = 10_000 * MIB; // (to start: creating the database takes more)
    const server = await startTestServer({
      database: await createTestDatabase('pglite', { persistent: true }),
      config: { pgliteMinFreeBytes: 64 * MIB, sync: { ...defaultSyncLimits, compactAfterRows: 20 } },
      diskFreeBytes: () => free,
    });
    try {
      const cookie = await login(server.url, 'alice');
      const kinds = async (room: string) =>
        (await server.database.db.selectFrom('sync_updates').select('kind').where('room', '=', room).execute()).map((r) => r.kind);
      /** 30 edits, one stored row each, then the room is let go (and compacts on unloading, past 20 rows). */
      const edit = async (room: string) => {
        const alice = connectLayer(server.url, room, cookie);
        try {
          await alice.synced;
          for (let i = 0; i < 30; i++) {
            addSpan(alice.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
            await waitFor(async () => (await kinds(room)).length === i + 1, `edit ${i + 1} stored`);
          }
        } finally {
          alice.destroy();
        }
        await waitFor(() => !server.sync.rooms.has(room), 'the room unloaded');
      };
      free = 64 * MIB + 100 * 1024; // a row's worth of values fits; 30 pages' full images do not
      await new Promise((r) => setTimeout(r, 150)); // (the last reading, far from the reserve, is used for up to 100 ms)
      const low = layerRoom(1, ALICE);
      await edit(low);
      await new Promise((r) => setTimeout(r, 500)); // (a compaction on unloading would be over by now)
      expect(await kinds(low)).toEqual(Array(30).fill('update'));
      expect(listSpans(await storedDoc(server.database.db, low))).toHaveLength(30);

      // The same with room to spare compacts: the first was put off, not never tried.
      free = 10_000 * MIB;
      const roomy = layerRoom(2, ALICE);
      await edit(roomy);
      await waitFor(async () => (await kinds(roomy)).join() === 'snapshot', 'the second room compacted');
      expect(listSpans(await storedDoc(server.database.db, roomy))).toHaveLength(30);
    } finally {
      await server.close();
    }
  });
});
