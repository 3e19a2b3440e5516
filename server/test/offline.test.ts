/**
 * Offline edits on two clients on both sides of a restart converge: the server goes away,
 * both clients keep editing, the server comes back (behind the same address), the stock
 * providers reconnect, and every edit ends up on both clients and in the database.
 */
import { describe, expect, it } from 'vitest';
import { addSpan, deleteAnnotation, layerRoom, listSpans, relabel } from '@spanwise/shared';
import { connectLayer, databaseKinds, login, startTestServer, storedDoc, waitFor } from './harness.ts';
import { TcpProxy } from './tcp-proxy.ts';

const ALICE = 2;

describe.each(databaseKinds())('offline edits across a restart (%s)', (kind) => {
  it('converge on both clients and in the database', async () => {
    let server = await startTestServer({ kind, persistent: true });
    const database = server.testDatabase;
    // The clients' address, held by the test: the server comes back on a port of its own
    // choosing behind it (its old port may have been taken meanwhile).
    const proxy = new TcpProxy([{ host: '127.0.0.1', port: server.port }]);
    const address = `http://127.0.0.1:${await proxy.listen()}`;
    const room = layerRoom(1, ALICE);
    const alice = connectLayer(address, room, await login(address, 'alice'));
    const dana = connectLayer(address, room, await login(address, 'dana'));
    try {
      await Promise.all([alice.synced, dana.synced]);
      const shared = addSpan(alice.doc, { label: 'GPE', start: 13, end: 17, quote: 'Iran', author: ALICE });
      await waitFor(() => listSpans(dana.doc).length === 1, 'the first span at dana');

      await server.stop();
      await waitFor(() => !alice.provider.wsconnected && !dana.provider.wsconnected, 'both clients offline');
      // Concurrent offline edits, including a conflict on the same span.
      addSpan(alice.doc, { label: 'GPE', start: 46, end: 52, quote: 'Russia', author: ALICE }, 'alice-offline');
      addSpan(dana.doc, { label: 'PERSON', start: 0, end: 3, quote: 'The', author: 5 }, 'dana-offline');
      relabel(alice.doc, shared, 'ORG');
      relabel(dana.doc, shared, 'PERSON');

      server = await startTestServer({ kind, database });
      proxy.retarget([{ host: '127.0.0.1', port: server.port }]);
      await waitFor(() => alice.provider.wsconnected && dana.provider.wsconnected, 'both clients back', 15_000);
      await waitFor(() => listSpans(alice.doc).length === 3 && listSpans(dana.doc).length === 3, 'three spans on both', 10_000);
      // Same result on both sides, conflict included.
      expect(listSpans(alice.doc)).toEqual(listSpans(dana.doc));
      expect(['ORG', 'PERSON']).toContain(listSpans(alice.doc).find((s) => s.id === shared)?.label);

      // And after more edits on both sides, the database holds exactly what the clients hold.
      deleteAnnotation(dana.doc, 'alice-offline');
      await waitFor(() => listSpans(alice.doc).length === 2, 'the delete at alice');
      await waitFor(async () => {
        const stored = await storedDoc(server.database.db, room);
        return JSON.stringify(listSpans(stored)) === JSON.stringify(listSpans(alice.doc));
      }, 'the database to match the clients');
    } finally {
      alice.destroy();
      dana.destroy();
      await proxy.close();
      await server.close();
    }
  });
});
