import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { connectLayer, login, startTestServer, storedRows, waitFor, type TestServer } from './harness.ts';

const redisUrl = process.env.TEST_REDIS_URL;
const ALICE = 2;

// Two instances need one shared PostgreSQL and Redis.
describe.runIf(redisUrl && process.env.TEST_DATABASE_URL)('two instances with Redis and PostgreSQL', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    a = await startTestServer({ kind: 'postgres', config: { redisUrl: redisUrl! } });
    b = await startTestServer({ database: a.testDatabase, config: { redisUrl: redisUrl!, redisKeyPrefix: a.config.redisKeyPrefix } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  it('clients on different instances converge', async () => {
    const onA = connectLayer(a.url, layerRoom(1, ALICE), await login(a.url, 'alice'));
    const onB = connectLayer(b.url, layerRoom(1, ALICE), await login(b.url, 'dana'));
    try {
      await Promise.all([onA.synced, onB.synced]);
      for (let i = 0; i < 20; i++) {
        addSpan(onA.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
        addSpan(onB.doc, { label: 'ORG', start: i, end: i + 2, quote: 'xy', author: 5 });
      }
      await waitFor(() => listSpans(onA.doc).length === 40 && listSpans(onB.doc).length === 40, 'both sides at 40 spans');
      onA.provider.awareness.setLocalStateField('user', { id: ALICE, name: 'alice' });
      await waitFor(
        () => [...onB.provider.awareness.getStates().values()].some((s) => s.user?.name === 'alice'),
        'alice’s presence across instances',
      );
    } finally {
      onA.destroy();
      onB.destroy();
    }
  });

  it('a client that joins on the other instance later gets everything', async () => {
    const onA = connectLayer(a.url, layerRoom(2, ALICE), await login(a.url, 'alice'));
    await onA.synced;
    for (let i = 0; i < 10; i++) addSpan(onA.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
    await waitFor(async () => (await storedRows(a.database.db, layerRoom(2, ALICE))) > 0, 'stored');
    const onB = connectLayer(b.url, layerRoom(2, ALICE), await login(b.url, 'dana'));
    try {
      await onB.synced;
      await waitFor(() => listSpans(onB.doc).length === 10, 'all 10 at the late client');
      expect(listSpans(onB.doc).map((s) => s.id).sort()).toEqual(listSpans(onA.doc).map((s) => s.id).sort());
    } finally {
      onA.destroy();
      onB.destroy();
    }
  });
});
