/**
 * kill -9 of a server while several clients write: every update that any peer had received is
 * there after a restart. A peer only ever receives an update the database already holds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { connectLayer, createTestDatabase, databaseKinds, login, waitFor, type LayerClient } from './harness.ts';
import { spawnServer } from './processes.ts';
import { TcpProxy } from './tcp-proxy.ts';

const ALICE = 2;
const WRITERS = ['alice', 'dana', 'admin'];

describe.each(databaseKinds())('kill -9 during writes (%s)', (kind) => {
  it('loses nothing any peer had received', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'spanwise-crash-'));
    const db = kind === 'postgres' ? await createTestDatabase('postgres') : null;
    const env: Record<string, string> = db ? { DATABASE_URL: db.config.databaseUrl! } : { DATA_DIR: dir };
    const clients: LayerClient[] = [];
    try {
      let server = await spawnServer(env);
      const room = layerRoom(1, ALICE);
      for (const who of WRITERS) clients.push(connectLayer(server.url, room, await login(server.url, who)));
      await Promise.all(clients.map((c) => c.synced));
      // Which span ids each client saw arrive from someone else.
      const receivedByPeer = new Set<string>();
      clients.forEach((c, i) =>
        c.doc.getMap('annotations').observe((event, tr) => {
          if (tr.local) return;
          for (const key of event.keysChanged) {
            if (c.doc.getMap('annotations').has(key) && !key.startsWith(`w${i}-`)) receivedByPeer.add(key);
          }
        }),
      );
      let written = 0;
      const writing = setInterval(() => {
        clients.forEach((c, i) => {
          addSpan(c.doc, { label: 'GPE', start: written % 2000, end: (written % 2000) + 1, quote: 'x', author: i }, `w${i}-${written}`);
        });
        written++;
      }, 5);
      await waitFor(() => receivedByPeer.size >= 150, 'a good number of edits to cross the server', 20_000);
      await server.kill('SIGKILL');
      clearInterval(writing);
      for (const c of clients.splice(0)) c.destroy();
      const seen = [...receivedByPeer];

      server = await spawnServer(env);
      const check = connectLayer(server.url, room, await login(server.url, 'alice'));
      clients.push(check);
      await check.synced;
      const present = new Set(listSpans(check.doc).map((s) => s.id));
      const lost = seen.filter((id) => !present.has(id));
      // Every writer's edits crossed the server before the kill, so "nothing lost" covers all three.
      expect(new Set(seen.map((id) => id.split('-')[0]))).toEqual(new Set(WRITERS.map((_, i) => `w${i}`)));
      expect(lost).toEqual([]);
      await server.kill('SIGTERM');
    } finally {
      for (const c of clients) c.destroy();
      await rm(dir, { recursive: true, force: true });
      await db?.drop();
    }
  });
});

describe.runIf(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL)('two server processes, one killed', () => {
  it('clients converge across instances; the killed one’s clients move to the other and nothing is lost', async () => {
    const db = await createTestDatabase('postgres');
    const env = {
      DATABASE_URL: db.config.databaseUrl!,
      REDIS_URL: process.env.TEST_REDIS_URL!,
      REDIS_KEY_PREFIX: `spanwise-test:${process.pid}:${Date.now()}:`,
    };
    const clients: LayerClient[] = [];
    const [a, b] = await Promise.all([spawnServer(env), spawnServer({ ...env, DEMO: '0' })]);
    // In front of them, as a load balancer would be: A while it answers, else B.
    const portOf = (url: string) => Number(new URL(url).port);
    const proxy = new TcpProxy([
      { host: '127.0.0.1', port: portOf(a.url) },
      { host: '127.0.0.1', port: portOf(b.url) },
    ]);
    const viaProxy = `http://127.0.0.1:${await proxy.listen()}`;
    try {
      const room = layerRoom(1, ALICE);
      const onA = [connectLayer(viaProxy, room, await login(viaProxy, 'alice')), connectLayer(viaProxy, room, await login(viaProxy, 'admin'))];
      const onB = connectLayer(b.url, room, await login(b.url, 'dana'));
      clients.push(...onA, onB);
      await Promise.all(clients.map((c) => c.synced));
      const ids: string[] = [];
      const write = (c: LayerClient, tag: string, n: number) => {
        for (let i = 0; i < n; i++) ids.push(addSpan(c.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: 1 }, `${tag}-${i}`));
      };
      write(onA[0]!, 'a0', 30);
      write(onA[1]!, 'a1', 30);
      write(onB, 'b', 30);
      const all = () => clients.every((c) => listSpans(c.doc).length === ids.length);
      await waitFor(all, 'all three clients at 90 spans', 10_000);

      const dropped = onA.map((c) => new Promise<void>((r) => c.provider.once('connection-close', () => r())));
      await a.kill('SIGKILL');
      await Promise.all(dropped);
      // A's clients' providers reconnect on their own, with the same sessions, and the proxy
      // takes them to B; they keep writing, one of them before it is back.
      write(onA[1]!, 'a1-offline', 5);
      await waitFor(() => onA.every((c) => c.provider.wsconnected && c.provider.synced), 'A’s clients reconnected through the proxy', 15_000);
      const moved = onA;
      write(moved[0]!, 'a0-after', 10);
      write(onB, 'b-after', 10);
      await waitFor(all, 'every client at 115 spans after the failover', 10_000);

      const fresh = connectLayer(b.url, room, await login(b.url, 'dana'));
      clients.push(fresh);
      await fresh.synced;
      const present = new Set(listSpans(fresh.doc).map((s) => s.id));
      expect(ids.filter((id) => !present.has(id))).toEqual([]);
      expect(present.size).toBe(115);
    } finally {
      for (const c of clients) c.destroy();
      await proxy.close();
      await Promise.all([a.kill('SIGKILL'), b.kill('SIGTERM')]);
      await db.drop();
    }
  });
});
