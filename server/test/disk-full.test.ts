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
