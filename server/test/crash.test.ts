/**
 * kill -9 of a server while several clients write: every update that any peer had received is
 * there after a restart. A peer only ever receives an update the database already holds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { openDatabase } from '../src/db/database.ts';
import { connectLayer, createTestDatabase, databaseKinds, login, storedDoc, waitFor, type LayerClient } from './harness.ts';
import { spawnServer, type ServerProcess } from './processes.ts';
import { TcpProxy } from './tcp-proxy.ts';

const ALICE = 2;
const WRITERS = ['alice', 'dana', 'admin'];

/** Kills, each at a moment of its own: one kill catches only what was in flight at that instant. */
const KILLS = 3;

describe.each(databaseKinds())('kill -9 during writes (%s)', (kind) => {
  it(`loses nothing any peer had received, over ${KILLS} kills`, { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'spanwise-crash-'));
    const db = kind === 'postgres' ? await createTestDatabase('postgres') : null;
    const env: Record<string, string> = db ? { DATABASE_URL: db.config.databaseUrl! } : { DATA_DIR: dir };
    const clients: LayerClient[] = [];
    let server: ServerProcess | null = null;
    let writing: NodeJS.Timeout | undefined;
    const room = layerRoom(1, ALICE);
    // Which span ids any client saw arrive from someone else, over every round.
    const receivedByPeer = new Set<string>();
    try {
      server = await spawnServer(env);
      for (let round = 0; round < KILLS; round++) {
        for (const who of WRITERS) clients.push(connectLayer(server.url, room, await login(server.url, who)));
        await Promise.all(clients.map((c) => c.synced));
        const before = receivedByPeer.size;
        clients.forEach((c, i) =>
          c.doc.getMap('annotations').observe((event, tr) => {
            if (tr.local) return;
            for (const key of event.keysChanged) {
              if (c.doc.getMap('annotations').has(key) && !key.startsWith(`r${round}w${i}-`)) receivedByPeer.add(key);
            }
          }),
        );
        let written = 0;
        writing = setInterval(() => {
          clients.forEach((c, i) => {
            addSpan(c.doc, { label: 'GPE', start: written % 2000, end: (written % 2000) + 1, quote: 'x', author: i }, `r${round}w${i}-${written}`);
          });
          written++;
        }, 5);
        // A different moment each round: after 150 edits crossed the server, then 200, 250.
        await waitFor(() => receivedByPeer.size >= before + 150 + 50 * round, 'a good number of edits to cross the server', 20_000);
        await server.kill('SIGKILL');
        clearInterval(writing);
        for (const c of clients.splice(0)) c.destroy();

        server = await spawnServer(env);
        const check = connectLayer(server.url, room, await login(server.url, 'alice'));
        clients.push(check);
        await check.synced;
        const present = new Set(listSpans(check.doc).map((s) => s.id));
        const seen = [...receivedByPeer];
        // Every writer's edits crossed the server before this kill, so "nothing lost" covers all three.
        const writersSeen = new Set(seen.filter((id) => id.startsWith(`r${round}w`)).map((id) => id.split('-')[0]));
        expect(writersSeen).toEqual(new Set(WRITERS.map((_, i) => `r${round}w${i}`)));
        expect(seen.filter((id) => !present.has(id))).toEqual([]);
        for (const c of clients.splice(0)) c.destroy();
      }
      await server.kill('SIGTERM');
    } finally {
      clearInterval(writing);
      for (const c of clients) c.destroy();
      await server?.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      await db?.drop();
    }
  });
});

describe.runIf(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL)('two server processes, one killed', () => {
  it('clients converge across instances; the one killed mid-write loses nothing a peer had, and its clients move to the other', { timeout: 180_000 }, async () => {
    const db = await createTestDatabase('postgres');
    const env = {
      DATABASE_URL: db.config.databaseUrl!,
      REDIS_URL: process.env.TEST_REDIS_URL!,
      REDIS_KEY_PREFIX: `spanwise-test:${process.pid}:${Date.now()}:`,
    };
    const clients: LayerClient[] = [];
    const servers: ServerProcess[] = [];
    let proxy: TcpProxy | null = null;
    let writing: NodeJS.Timeout | undefined;
    try {
      // Both started at once; whichever starts is killed at the end even if the other fails.
      const started = await Promise.allSettled([spawnServer(env), spawnServer({ ...env, DEMO: '0' })]);
      for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
      const [a, b] = started.map((s) => {
        if (s.status === 'rejected') throw s.reason;
        return s.value;
      }) as [ServerProcess, ServerProcess];
      // In front of them, as a load balancer would be: A while it answers, else B.
      const portOf = (url: string) => Number(new URL(url).port);
      proxy = new TcpProxy([
        { host: '127.0.0.1', port: portOf(a.url) },
        { host: '127.0.0.1', port: portOf(b.url) },
      ]);
      const viaProxy = `http://127.0.0.1:${await proxy.listen()}`;
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
      await waitFor(() => clients.every((c) => listSpans(c.doc).length === ids.length), 'all three clients at 90 spans', 15_000);

      // Every span id a client received from another client: the server had stored it.
      const receivedByPeer = new Set<string>();
      clients.forEach((c) =>
        c.doc.getMap('annotations').observe((event, tr) => {
          if (tr.local) return;
          for (const key of event.keysChanged) if (c.doc.getMap('annotations').has(key)) receivedByPeer.add(key);
        }),
      );
      // All three write until A is killed; one of A's clients goes with it (what it had not
      // had stored goes too, but nothing any peer received may).
      let n = 0;
      writing = setInterval(() => {
        clients.forEach((c, i) => c.provider.shouldConnect && addSpan(c.doc, { label: 'ORG', start: n % 500, end: (n % 500) + 1, quote: 'y', author: i }, `live${i}-${n}`));
        n++;
      }, 10);
      await waitFor(() => receivedByPeer.size >= 60, 'writes crossing both instances', 20_000);
      // The proxy holds everything from here: once alice reconnects (to B) her provider sends B
      // all she holds, admin's edits that reached her through A included, which would cover for
      // A having sent on what it never stored. So what the peers had is looked for first.
      proxy.freeze();
      const gone = onA[1]!;
      const dropped = new Promise<void>((r) => onA[0]!.provider.once('connection-close', () => r()));
      gone.destroy();
      await a.kill('SIGKILL');
      clearInterval(writing);
      const had = new Set(receivedByPeer);
      const check = await openDatabase({ databaseUrl: db.config.databaseUrl, dataDir: 'memory://' });
      try {
        // Each was stored before any peer received it: no wait.
        const present = new Set(listSpans(await storedDoc(check.db, room)).map((s) => s.id));
        expect([...had].filter((id) => !present.has(id))).toEqual([]);
        expect(had.size).toBeGreaterThanOrEqual(60);
        expect([...had].some((id) => id.startsWith('live1-'))).toBe(true); // the gone client's, via A
      } finally {
        await check.close();
      }
      proxy.thaw();
      await dropped;

      // alice's provider reconnects on its own, with the same session; the proxy takes it to B.
      write(onA[0]!, 'a0-offline', 5);
      await waitFor(() => onA[0]!.provider.wsconnected && onA[0]!.provider.synced, 'alice reconnected through the proxy', 20_000);
      write(onA[0]!, 'a0-after', 10);
      write(onB, 'b-after', 10);
      const spanIds = (c: LayerClient) => new Set(listSpans(c.doc).map((s) => s.id));
      const same = () => {
        const x = spanIds(onA[0]!);
        const y = spanIds(onB);
        return x.size === y.size && [...x].every((id) => y.has(id));
      };
      await waitFor(same, 'alice and dana converged on B', 15_000);

      // In PostgreSQL itself: what alice and dana hold now.
      const after = await openDatabase({ databaseUrl: db.config.databaseUrl, dataDir: 'memory://' });
      try {
        await waitFor(async () => {
          const present = new Set(listSpans(await storedDoc(after.db, room)).map((s) => s.id));
          return [...spanIds(onB)].every((id) => present.has(id));
        }, 'what alice and dana hold, stored', 10_000);
      } finally {
        await after.close();
      }
    } finally {
      clearInterval(writing);
      for (const c of clients) c.destroy();
      await proxy?.close();
      await Promise.allSettled(servers.map((p) => p.kill('SIGKILL')));
      await db.drop();
    }
  });
});
