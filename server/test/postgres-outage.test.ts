/**
 * PostgreSQL stopped and started again during a session: the server stays up, tells clients
 * saving is delayed, and stores everything once the database is back. The test runs its own
 * throwaway cluster (Debian's initdb/pg_ctl), never the machine's shared one.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { connectLayer, login, startTestServer, storedDoc, waitFor, type TestServer } from './harness.ts';

const BIN = '/usr/lib/postgresql/15/bin';
const ALICE = 2;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the `postgres` user when we are root (it refuses to run as root). */
function pg(bin: string, args: string[]): string {
  const asRoot = userInfo().uid === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, bin), ...args]] : [path.join(BIN, bin), args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

describe.runIf(existsSync(path.join(BIN, 'initdb')))('PostgreSQL outage during a session', () => {
  let dir: string;
  let port: number;
  let server: TestServer;
  const start = () => pg('pg_ctl', ['-D', dir + '/data', '-l', dir + '/log', '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start']);
  const stop = () => pg('pg_ctl', ['-D', dir + '/data', '-m', 'fast', '-w', 'stop']);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'spanwise-pg-'));
    if (userInfo().uid === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
    port = await freePort();
    pg('initdb', ['-D', dir + '/data', '-A', 'trust', '-U', 'postgres', '--no-sync']);
    start();
    server = await startTestServer({
      database: { config: { databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, dataDir: 'memory://' }, drop: async () => {} },
    });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    try {
      stop();
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the session alive, says saving is delayed, and stores everything once back', async () => {
    const room = layerRoom(1, ALICE);
    const alice = connectLayer(server.url, room, await login(server.url, 'alice'));
    const dana = connectLayer(server.url, room, await login(server.url, 'dana'));
    try {
      await Promise.all([alice.synced, dana.synced]);
      for (let i = 0; i < 20; i++) addSpan(alice.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
      await waitFor(() => listSpans(dana.doc).length === 20, 'the first 20 spans at dana');

      stop();
      for (let i = 20; i < 40; i++) addSpan(alice.doc, { label: 'ORG', start: i, end: i + 1, quote: 'x', author: ALICE });
      const delayed = () =>
        [...dana.provider.awareness.getStates().values()].some((s) => (s as { server?: { saving?: string } }).server?.saving === 'delayed');
      await waitFor(delayed, 'the saving-delayed notice', 10_000);
      // Not stored, so not broadcast.
      expect(listSpans(dana.doc)).toHaveLength(20);
      const health = await fetch(`${server.url}/api/health`);
      expect(health.status).toBe(503);
      expect(alice.provider.wsconnected && dana.provider.wsconnected).toBe(true);

      start();
      await waitFor(() => listSpans(dana.doc).length === 40, 'all 40 spans at dana after the restart', 20_000);
      await waitFor(() => !delayed(), 'the notice withdrawn');
      const stored = await storedDoc(server.database.db, room);
      expect(listSpans(stored)).toHaveLength(40);
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    } finally {
      alice.destroy();
      dana.destroy();
    }
  });
});
