import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { addSpan, CloseCode, layerRoom, listSpans, type Member } from '@spanwise/shared';
import { defaultSyncLimits } from '../src/config.ts';
import { hashPassword } from '../src/features/auth/password.ts';
import { usersRepository } from '../src/features/auth/users.repository.ts';
import { api, connectLayer, databaseKinds, login, metric, rawSocket, startTestServer, storedRows, waitFor, type LayerClient, type TestServer } from './harness.ts';

const ALICE = 2;
const BOB = 3;

describe('access while sockets live', () => {
  let server: TestServer;
  let admin: string;
  const clients: LayerClient[] = [];

  beforeAll(async () => {
    server = await startTestServer({ config: { sync: { ...defaultSyncLimits, accessRecheckMs: 200, maxSocketsPerUser: 3 } } });
    admin = await login(server.url, 'admin');
    const users = usersRepository(server.database.db);
    const hash = await hashPassword('pw');
    for (const name of ['vera', 'rita', 'mike']) await users.insert(name, hash);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });
  afterAll(() => server.close());

  it('lets the owner add and remove members, keeping one owner', async () => {
    const added = await api<Member>(server.url, admin, '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username: 'mike', role: 'annotator' }) });
    expect(added).toMatchObject({ status: 200, body: { username: 'mike', role: 'annotator' } });
    const alice = await login(server.url, 'alice');
    expect((await api(server.url, alice, '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username: 'mike', role: 'owner' }) })).status).toBe(403);
    expect((await api(server.url, admin, '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username: 'nobody', role: 'viewer' }) })).status).toBe(404);
    expect((await api(server.url, admin, '/api/projects/1/members/1', { method: 'DELETE' })).status).toBe(400);
    expect((await api(server.url, admin, `/api/projects/1/members/${added.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(server.url, await login(server.url, 'mike', 'pw'), '/api/projects/1/documents')).status).toBe(403);
  });

  it('closes a removed member’s open sockets at once when removed through the API', async () => {
    // A server of its own whose periodic re-check is a minute away: only the API's own
    // notification can close the socket in time.
    const own = await startTestServer({ config: { sync: { ...defaultSyncLimits, accessRecheckMs: 60_000 } } });
    try {
      await usersRepository(own.database.db).insert('rita', await hashPassword('pw'));
      const ownAdmin = await login(own.url, 'admin');
      const rita = (await api<Member>(own.url, ownAdmin, '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username: 'rita', role: 'annotator' }) })).body;
      const c = connectLayer(own.url, layerRoom(1, rita.id), await login(own.url, 'rita', 'pw'));
      clients.push(c);
      await c.synced;
      const removedAt = Date.now();
      await api(own.url, ownAdmin, `/api/projects/1/members/${rita.id}`, { method: 'DELETE' });
      expect(await c.closed).toBe(CloseCode.forbidden);
      expect(Date.now() - removedAt).toBeLessThan(2_000);
    } finally {
      for (const c of clients.splice(0)) c.destroy();
      await own.close();
    }
  });

  it('closes a removed member’s sockets within seconds however the membership went', async () => {
    const cookie = await login(server.url, 'bob');
    const c = connectLayer(server.url, layerRoom(2, BOB), cookie);
    clients.push(c);
    await c.synced;
    // Straight in the database, as another instance or an admin script would.
    await server.database.db.deleteFrom('project_members').where('user_id', '=', BOB).execute();
    expect(await c.closed).toBe(CloseCode.forbidden);
    await server.database.db.insertInto('project_members').values({ project_id: 1, user_id: BOB, role: 'annotator' }).execute();
  });

  it('drops a viewer’s updates and tells the client, while the viewer still reads', async () => {
    await api(server.url, admin, '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username: 'vera', role: 'viewer' }) });
    const alice = connectLayer(server.url, layerRoom(3, ALICE), await login(server.url, 'alice'));
    const vera = connectLayer(server.url, layerRoom(3, ALICE), await login(server.url, 'vera', 'pw'));
    clients.push(alice, vera);
    await Promise.all([alice.synced, vera.synced]);
    addSpan(alice.doc, { label: 'GPE', start: 0, end: 3, quote: 'The', author: ALICE });
    await waitFor(() => listSpans(vera.doc).length === 1, 'alice’s span at the viewer');
    const countRows = () => storedRows(server.database.db, layerRoom(3, ALICE));
    const rowsBefore = await countRows();
    // y-websocket reports the server's permission-denied message with console.warn.
    const warn = console.warn;
    const warnings: unknown[] = [];
    console.warn = (...args: unknown[]) => warnings.push(args);
    try {
      addSpan(vera.doc, { label: 'ORG', start: 4, end: 8, quote: 'U.S.', author: 9 });
      await waitFor(() => warnings.length > 0, 'the permission-denied message');
    } finally {
      console.warn = warn;
    }
    expect(String(warnings[0])).toMatch(/read-only/);
    await new Promise((r) => setTimeout(r, 200));
    expect(listSpans(alice.doc)).toHaveLength(1);
    expect(await countRows()).toBe(rowsBefore); // nothing of the viewer's was stored
    const fresh = connectLayer(server.url, layerRoom(3, ALICE), await login(server.url, 'dana'));
    clients.push(fresh);
    await fresh.synced;
    expect(listSpans(fresh.doc).map((s) => s.label)).toEqual(['GPE']);
  });

  it('caps the sockets one user may hold open', async () => {
    const cookie = await login(server.url, 'alice');
    const open = [1, 2, 3].map((d) => connectLayer(server.url, layerRoom(d, ALICE), cookie));
    clients.push(...open);
    await Promise.all(open.map((c) => c.synced));
    const fourth = await rawSocket(server.url, layerRoom(4, ALICE), cookie);
    expect(await fourth.closed).toBe(CloseCode.rateLimited);
  });

  it('closes sockets of a session that was signed out', async () => {
    const cookie = await login(server.url, 'carol');
    const c = connectLayer(server.url, layerRoom(1, 4), cookie);
    clients.push(c);
    await c.synced;
    await api(server.url, cookie, '/api/auth/logout', { method: 'POST', body: '{}' });
    expect(await c.closed).toBe(CloseCode.unauthenticated);
  });
});

describe.each(databaseKinds())('the per-user socket cap (%s)', (kind) => {
  it('holds the cap when many sockets open at once', async () => {
    const server = await startTestServer({ kind, config: { sync: { ...defaultSyncLimits, maxSocketsPerUser: 3 } } });
    onTestFinished(() => server.close());
    const cookie = await login(server.url, 'bob');
    // Six at once: however their decisions interleave, three open and three are refused.
    const sockets = await Promise.all([1, 2, 3, 4, 5, 1].map((d) => rawSocket(server.url, layerRoom(d, BOB), cookie)));
    const codes = await Promise.all(sockets.map((s) => Promise.race([s.closed, new Promise<null>((r) => setTimeout(() => r(null), 500))])));
    expect(codes.filter((c) => c === CloseCode.rateLimited)).toHaveLength(3);
    expect(codes.filter((c) => c === null)).toHaveLength(3);
    expect(await metric(server.url, 'spanwise_sync_errors_total{kind="too_many_sockets"}')).toBe(3);
    for (const s of sockets) s.ws.close();
    await Promise.all(sockets.map((s) => s.closed));
    // Closed sockets are counted out: the user can open three again.
    const again = await Promise.all([1, 2, 3].map((d) => rawSocket(server.url, layerRoom(d, BOB), cookie)));
    const still = await Promise.all(again.map((s) => Promise.race([s.closed, new Promise<null>((r) => setTimeout(() => r(null), 300))])));
    expect(still).toEqual([null, null, null]);
    for (const s of again) s.ws.close();
    await Promise.all(again.map((s) => s.closed));
  });

});

describe('metrics', () => {
  it('serves Prometheus text with sync figures', async () => {
    const server = await startTestServer();
    try {
      const c = connectLayer(server.url, layerRoom(1, ALICE), await login(server.url, 'alice'));
      await c.synced;
      addSpan(c.doc, { label: 'GPE', start: 0, end: 3, quote: 'The', author: ALICE });
      await waitFor(async () => (await fetch(`${server.url}/metrics`).then((r) => r.text())).includes('spanwise_sync_updates_stored_total 1'), 'a stored update counted');
      const res = await fetch(`${server.url}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/spanwise_sync_rooms_open 1/);
      expect(text).toMatch(/spanwise_sync_sockets_open 1/);
      expect(text).toMatch(/spanwise_sync_store_seconds_count 1/);
      expect(text).toMatch(/spanwise_sync_fanout_seconds_bucket/);
      expect(text).toMatch(/spanwise_sync_queue_length 0/);
      // Messages and bytes by kind: the client's edit came in as an update, the greeting went out.
      const value = (metric: string) => Number(new RegExp(`^${metric.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      expect(value('spanwise_sync_messages_in_total{kind="update"}')).toBe(1);
      expect(value('spanwise_sync_bytes_in_total{kind="update"}')).toBeGreaterThan(10);
      expect(value('spanwise_sync_messages_in_total{kind="sync_step1"}')).toBe(1);
      expect(value('spanwise_sync_messages_out_total{kind="sync_step1"}')).toBe(1);
      expect(value('spanwise_sync_messages_out_total{kind="sync_step2"}')).toBe(1);
      expect(value('spanwise_sync_bytes_out_total{kind="sync_step2"}')).toBeGreaterThan(0);
      // API answers by status class: the sign-in (2xx), and none failed; then a 404 and a 401.
      expect(value('spanwise_http_responses_total{class="2xx"}')).toBeGreaterThanOrEqual(1);
      expect(value('spanwise_http_responses_total{class="5xx"}')).toBe(0);
      const fours = value('spanwise_http_responses_total{class="4xx"}');
      expect((await fetch(`${server.url}/api/no-such-thing`)).status).toBeGreaterThanOrEqual(400);
      expect((await fetch(`${server.url}/api/me`)).status).toBe(401);
      const after = await fetch(`${server.url}/metrics`).then((r) => r.text());
      expect(Number(/^spanwise_http_responses_total\{class="4xx"\} (\S+)$/m.exec(after)?.[1])).toBe(fours + 2);
      c.destroy();
    } finally {
      await server.close();
    }
  });

  it('asks for the bearer token when METRICS_TOKEN is set', async () => {
    const token = 'scrape-me-0123456789';
    const server = await startTestServer({ config: { metricsToken: token } });
    try {
      const refused = await fetch(`${server.url}/metrics`);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
      const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/spanwise_sync_rooms_open 0/);
      // The API is not behind the metrics token.
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
