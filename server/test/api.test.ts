import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { goldRoom, layerRoom, type DocumentDetail, type DocumentSummary, type ProjectDetail, type ProjectSummary } from '@spanwise/shared';
import { CHECKS_WAITING, HASHES_AT_ONCE, hashPassword } from '../src/features/auth/password.ts';
import { usersRepository } from '../src/features/auth/users.repository.ts';
import { projectsRepository } from '../src/features/projects/projects.repository.ts';
import { LARGE_BODIES_AT_ONCE, largeBodiesTaken } from '../src/http/body-limits.ts';

import { api, connectLayer, databaseKinds, holdConnection, login, startTestServer, waitFor, type TestServer } from './harness.ts';

/** How long a new document's body may stop arriving here (UPLOAD_STALL_MS; 30 s by default). */
const UPLOAD_STALL_MS = 1_000;

type ErrorBody = { error: { code: string; message: string; field?: string } };

describe.each(databaseKinds())('HTTP API (%s)', (kind) => {
  let server: TestServer;
  let alice: string;
  let admin: string;

  beforeAll(async () => {
    server = await startTestServer({ kind });
    alice = await login(server.url, 'alice');
    admin = await login(server.url, 'admin');
  });
  afterAll(() => server.close());

  it('reports health and which database it runs on', async () => {
    const res = await api(server.url, null, '/api/health');
    expect(res).toMatchObject({ status: 200, body: { ok: true, db: kind } });
  });

  it('serves the client: its assets, and index.html for any page path', async () => {
    const page = await fetch(`${server.url}/projects/1/documents/1`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    expect(html).toContain('<title>Spanwise</title>');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const js = await fetch(`${server.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    for (const odd of ['/%E0%A4%A', '/../package.json', '/assets/../../package.json']) {
      const res = await fetch(`${server.url}${odd}`);
      expect(res.status, odd).toBe(200);
      expect(await res.text(), odd).toContain('<title>Spanwise</title>');
    }
    // An asset of another build is missing, not a page.
    const gone = await fetch(`${server.url}/assets/index-0ldBu1ld.js`);
    expect(gone.status).toBe(404);
    expect(await gone.text()).not.toContain('<title>');
    // The service worker is revalidated at every check, so a new one is found at once.
    const worker = await fetch(`${server.url}/sw.js`);
    expect(worker.status).toBe(200);
    expect(worker.headers.get('content-type')).toMatch(/javascript/);
    expect(worker.headers.get('cache-control')).toBe('no-cache');
  });

  describe('sign-in', () => {
    it('sets an HttpOnly, SameSite session cookie and answers /api/me', async () => {
      const res = await fetch(`${server.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'bob', password: 'demo' }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: 3, username: 'bob' });
      const cookie = res.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Lax/i);
      const me = await api(server.url, cookie.split(';')[0]!, '/api/me');
      expect(me).toMatchObject({ status: 200, body: { id: 3, username: 'bob' } });
    });

    it('answers 401 to a wrong password and to an unknown user, alike', async () => {
      const wrong = await api<ErrorBody>(server.url, null, '/api/auth/login', { method: 'POST', body: JSON.stringify({ username: 'alice', password: 'nope' }) });
      const unknown = await api<ErrorBody>(server.url, null, '/api/auth/login', { method: 'POST', body: JSON.stringify({ username: 'zed', password: 'nope' }) });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(wrong.body.error.message).toBe(unknown.body.error.message);
      expect(wrong.headers.get('set-cookie')).toBeNull();
    });

    it('makes a username wait after ten failed sign-ins from one place, right password or not', async () => {
      await usersRepository(server.database.db).insert('trudy', await hashPassword('right'));
      const attempt = (password: string, username = 'trudy') =>
        fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
      for (let i = 0; i < 10; i++) expect((await attempt(`guess${i}`)).status).toBe(401);
      const refused = await attempt('right');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('set-cookie')).toBeNull();
      expect((await attempt('demo', 'bob')).status).toBe(200); // others are not held up
      // Sent all at once, guesses are counted as they start: no more than ten get an answer.
      await usersRepository(server.database.db).insert('trent', await hashPassword('right'));
      const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(`burst${i}`, 'trent')));
      expect(burst.filter((r) => r.status === 401).length).toBeLessThanOrEqual(10);
      expect(burst.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(20);
    });

    it('signs out only on a JSON request (a form from another page cannot)', async () => {
      const cookie = await login(server.url, 'bob');
      const form = await fetch(`${server.url}/api/auth/logout`, { method: 'POST', headers: { cookie, 'content-type': 'text/plain' }, body: '' });
      expect(form.status).toBe(415);
      expect((await api(server.url, cookie, '/api/me')).status).toBe(200);
    });

    it('answers 401 to /api/me without a session or with a made-up one', async () => {
      expect((await api(server.url, null, '/api/me')).status).toBe(401);
      expect((await api(server.url, 'spanwise_session=forged', '/api/me')).status).toBe(401);
    });

    it('says when the session ends, and answers 401 without one', async () => {
      const before = Date.now();
      const cookie = await login(server.url, 'bob');
      const session = await api<{ expiresAt: string }>(server.url, cookie, '/api/session');
      expect(session.status).toBe(200);
      const ttlMs = server.config.sessionTtlHours * 3600_000;
      expect(Date.parse(session.body.expiresAt)).toBeGreaterThanOrEqual(before + ttlMs - 1_000);
      expect(Date.parse(session.body.expiresAt)).toBeLessThanOrEqual(Date.now() + ttlMs);
      expect((await api(server.url, null, '/api/session')).status).toBe(401);
      expect((await api(server.url, 'spanwise_session=forged', '/api/session')).status).toBe(401);
      await api(server.url, cookie, '/api/auth/logout', { method: 'POST', body: '{}' });
      expect((await api(server.url, cookie, '/api/session')).status).toBe(401);
    });

    it('ends the session on logout', async () => {
      const cookie = await login(server.url, 'carol');
      expect((await api(server.url, cookie, '/api/auth/logout', { method: 'POST', body: '{}' })).status).toBe(204);
      expect((await api(server.url, cookie, '/api/me')).status).toBe(401);
    });

    it('refuses an expired session, and clears expired ones at the next sign-in', async () => {
      const db = server.database.db;
      const cookie = await login(server.url, 'bob');
      await db.updateTable('sessions').set({ expires_at: new Date(Date.now() - 1000) }).execute();
      expect((await api(server.url, cookie, '/api/me')).status).toBe(401);
      const fresh = await login(server.url, 'bob');
      expect((await api(server.url, fresh, '/api/me')).status).toBe(200);
      const left = await db.selectFrom('sessions').select('expires_at').execute();
      expect(left).toHaveLength(1);
      expect(left[0]!.expires_at.getTime()).toBeGreaterThan(Date.now());
      // The suite's own sessions went too: sign in again for the tests that follow.
      alice = await login(server.url, 'alice');
      admin = await login(server.url, 'admin');
    });

    it('stores passwords hashed with scrypt, never in the clear', async () => {
      const row = await usersRepository(server.database.db).findByUsername('alice');
      expect(row?.password_hash).toMatch(/^scrypt\$/);
      expect(row?.password_hash).not.toContain('demo');
    });
  });

  describe('bad input', () => {
    it('answers malformed JSON with 400 invalid_json', async () => {
      const res = await api<ErrorBody>(server.url, null, '/api/auth/login', { method: 'POST', body: '{"username":' });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_json');
    });

    it('names the missing field', async () => {
      const res = await api<ErrorBody>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'x' }) });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('text');
      const login = await api<ErrorBody>(server.url, null, '/api/auth/login', { method: 'POST', body: JSON.stringify({ username: 'alice' }) });
      expect(login.body.error.field).toBe('password');
    });

    it('refuses an oversized body with 413 and stays up', async () => {
      const huge = JSON.stringify({ title: 'big', text: 'x'.repeat(17 * 1024 * 1024) });
      const res = await api<ErrorBody>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: huge });
      expect(res.status).toBe(413);
      expect((await api(server.url, null, '/api/health')).status).toBe(200);
    });

    it('takes bodies only as JSON: a form posted from another page gets 415 and no session', async () => {
      // What a <form enctype="text/plain"> can send: a body that happens to parse as JSON.
      const res = await fetch(`${server.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: '{"username":"bob","password":"demo","x":"="}',
      });
      expect(res.status).toBe(415);
      expect(((await res.json()) as ErrorBody).error.code).toBe('unsupported_media_type');
      expect(res.headers.get('set-cookie')).toBeNull();
      const form = await api<ErrorBody>(server.url, admin, '/api/projects/1/documents', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'title=x&text=y',
      });
      expect(form.status).toBe(415);
    });

    it('limits bodies to 64 KiB except the owner adding a document, whose body is read only once that is known', async () => {
      // Each on a connection of its own, the status read as soon as it comes: the server answers
      // 413 before reading a body over its limit, and need not read the rest.
      const statusOf = (pathname: string, method: string, cookie: string | null, body: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(`${server.url}${pathname}`, {
            method,
            agent: false,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(cookie ? { cookie } : {}) },
          }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on('error', reject);
          req.end(body);
        });
      expect(await statusOf('/api/auth/login', 'POST', null, JSON.stringify({ username: 'bob', password: 'x'.repeat(70 * 1024) }))).toBe(413);
      const big = JSON.stringify({ title: 'big', text: 'y'.repeat(1024 * 1024) });
      expect(await statusOf('/api/projects/1/documents', 'POST', null, big)).toBe(401);
      expect(await statusOf('/api/projects/1/documents', 'POST', alice, big)).toBe(403); // an annotator
      expect(await statusOf('/api/projects/1/documents', 'POST', admin, big)).toBe(201);
      expect(await statusOf('/api/projects/1/members', 'PUT', admin, JSON.stringify({ username: 'x'.repeat(70 * 1024), role: 'viewer' }))).toBe(413);
      expect((await api(server.url, null, '/api/health')).status).toBe(200);
    });

    it(`reads at most ${LARGE_BODIES_AT_ONCE} new documents at once: the next is told to try again (503), and a place freed is taken`, async () => {
      /** A new document whose body comes in two halves: the second when `finish` is called. */
      const upload = (title: string) => {
        const body = JSON.stringify({ title, text: 'z'.repeat(100_000) });
        const req = request(`${server.url}/api/projects/1/documents`, {
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), cookie: admin },
        });
        const status = new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
          req.on('response', (res) => {
            res.resume();
            resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined });
          });
          req.on('error', reject);
        });
        req.write(body.slice(0, 50_000));
        return { status, finish: () => req.end(body.slice(50_000)) };
      };
      const slow = Array.from({ length: LARGE_BODIES_AT_ONCE }, (_, i) => upload(`slow ${i}`));
      await waitFor(() => largeBodiesTaken() === LARGE_BODIES_AT_ONCE, 'each past its owner check, reading its body');
      const refused = upload('one more');
      expect(await refused.status).toEqual({ status: 503, retryAfter: '5' });
      refused.finish();
      slow[0]!.finish();
      expect((await slow[0]!.status).status).toBe(201);
      const next = upload('in its place');
      next.finish();
      expect((await next.status).status).toBe(201);
      for (const s of slow.slice(1)) s.finish();
      expect((await Promise.all(slow.slice(1).map((s) => s.status))).map((s) => s.status)).toEqual(slow.slice(1).map(() => 201));
    });

    it('gives up a new document whose body stops arriving, answering 408, and its place with it', async () => {
      // (A server of its own: the other tests' uploads may pause longer than this.)
      const server = await startTestServer({ kind, config: { uploadStallMs: UPLOAD_STALL_MS } });
      const admin = await login(server.url, 'admin');
      try {
        await stallsGiveUp(server, admin);
      } finally {
        await server.close();
      }
    });

    async function stallsGiveUp(server: TestServer, admin: string) {
      const body = JSON.stringify({ title: 'stalled', text: 's'.repeat(100_000) });
      const stalled = async () => {
        const req = request(`${server.url}/api/projects/1/documents`, {
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), cookie: admin },
        });
        const ended = new Promise<{ status: number | null; code?: string; afterMs: number }>((resolve) => {
          const started = performance.now();
          req.on('response', (res) => {
            const afterMs = performance.now() - started;
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, code: (JSON.parse(text) as ErrorBody).error.code, afterMs }));
            res.on('error', () => resolve({ status: res.statusCode!, afterMs }));
          });
          req.on('error', () => resolve({ status: null, afterMs: performance.now() - started }));
        });
        // Half, then a byte now and then for a while (each puts the clock back), then nothing.
        req.write(body.slice(0, 50_000));
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, UPLOAD_STALL_MS / 2));
          req.write(body[50_000 + i]);
        }
        return ended;
      };
      const all = await Promise.all(Array.from({ length: LARGE_BODIES_AT_ONCE }, stalled));
      for (const { status, code, afterMs } of all) {
        // Answered, though the body never came, and in the API's shape.
        expect(status).toBe(408);
        expect(code).toBe('upload_stalled');
        expect(afterMs).toBeGreaterThanOrEqual(1.5 * UPLOAD_STALL_MS + UPLOAD_STALL_MS - 100);
        expect(afterMs).toBeLessThan(1.5 * UPLOAD_STALL_MS + 3 * UPLOAD_STALL_MS);
      }
      // Every place given back: a new document is read at once.
      const res = await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'after the stalls', text: 'fine' }) });
      expect(res.status).toBe(201);
      expect((await api(server.url, null, '/api/health')).status).toBe(200);
    }

    it('refuses the NUL character and addresses other than http(s) with 400, not 500', async () => {
      const login = await api<ErrorBody>(server.url, null, '/api/auth/login', { method: 'POST', body: JSON.stringify({ username: 'bob\u0000', password: 'demo' }) });
      expect(login.status).toBe(400);
      expect(login.body.error.field).toBe('username');
      const add = (extra: object) => api<ErrorBody>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 't', text: 'x', ...extra }) });
      expect((await add({ text: 'a\u0000b' })).body.error.field).toBe('text');
      expect((await add({ url: 'javascript:alert(1)//' })).body.error.field).toBe('url');
      expect((await add({ url: 'http://example.org/\u0000' })).body.error.field).toBe('url');
      expect((await add({ url: 'https://example.org/a' })).status).toBe(201);
      // A lone surrogate (half a UTF-16 pair) would be stored as U+FFFD: refused, where it is.
      for (const [field, extra] of [['text', { text: 'a\ud800b' }], ['title', { title: 'T\udc00' }], ['source', { source: '\udbff' }]] as const) {
        const res = await add(extra);
        expect(res.status, field).toBe(400);
        expect(res.body.error.field).toBe(field);
        expect(res.body.error.message).toMatch(/lone surrogate/);
      }
      expect((await add({ title: 'a whole pair 😀', text: '\ud83d\ude00 fine' })).status).toBe(201);
    });

    it('answers unknown ids and routes with 404', async () => {
      expect((await api(server.url, alice, '/api/documents/9999')).status).toBe(404);
      expect((await api(server.url, alice, '/api/documents/abc')).status).toBe(404);
      expect((await api(server.url, alice, '/api/projects/77/documents')).status).toBe(404);
      expect((await api(server.url, alice, '/api/nothing-here')).status).toBe(404);
    });
  });

  describe('projects and documents', () => {
    it('lists the demo project with the user’s role', async () => {
      const res = await api<ProjectSummary[]>(server.url, alice, '/api/projects');
      expect(res.body).toEqual([{ id: 1, name: expect.any(String), role: 'annotator', mode: 'blind' }]);
      const asAdmin = await api<ProjectSummary[]>(server.url, admin, '/api/projects');
      expect(asAdmin.body[0]?.role).toBe('owner');
    });

    it('describes a project with its schema and members; in a blind one, an annotator sees no other annotator', async () => {
      const res = await api<ProjectDetail>(server.url, await login(server.url, 'dana'), '/api/projects/1');
      expect(res.body.schema.spans.map((s) => s.name)).toEqual(['PERSON', 'ORG', 'GPE', 'WEAPON', 'EVENT', 'CLAIM']);
      expect(res.body.members.map((m) => `${m.username}:${m.role}`)).toEqual([
        'admin:owner',
        'alice:annotator',
        'bob:annotator',
        'carol:annotator',
        'dana:curator',
      ]);
      const blind = await api<ProjectDetail>(server.url, alice, '/api/projects/1');
      expect(blind.body.mode).toBe('blind');
      expect(blind.body.members.map((m) => `${m.username}:${m.role}`)).toEqual(['admin:owner', 'alice:annotator', 'dana:curator']);
    });

    it('lists documents with their UTF-16 length and the user’s status', async () => {
      const list = await api<DocumentSummary[]>(server.url, alice, '/api/projects/1/documents');
      expect(list.body.length).toBeGreaterThanOrEqual(5);
      const first = list.body[0]!;
      const doc = await api<DocumentDetail>(server.url, alice, `/api/documents/${first.id}`);
      expect(first.length).toBe(doc.body.text.length);
      expect(first.status).toBe('not_started');
      await api(server.url, alice, `/api/documents/${first.id}/status`, { method: 'PUT', body: JSON.stringify({ status: 'done' }) });
      const again = await api<DocumentSummary[]>(server.url, alice, '/api/projects/1/documents');
      expect(again.body[0]?.status).toBe('done');
      const bob = await login(server.url, 'bob');
      const forBob = await api<DocumentSummary[]>(server.url, bob, '/api/projects/1/documents');
      expect(forBob.body[0]?.status).toBe('not_started');
      // Once something is stored in bob's layer of the second document, it is in progress for him only.
      const second = list.body[1]!;
      const bobId = (await api<{ id: number }>(server.url, bob, '/api/me')).body.id;
      await server.database.db.insertInto('sync_updates').values({ room: layerRoom(second.id, bobId), data: new Uint8Array([0, 0]) }).execute();
      const bobsNow = await api<DocumentSummary[]>(server.url, bob, '/api/projects/1/documents');
      expect(bobsNow.body.map((d) => d.status)).toEqual(forBob.body.map((d) => (d.id === second.id ? 'in_progress' : d.status)));
      expect((await api<DocumentSummary[]>(server.url, alice, '/api/projects/1/documents')).body[1]?.status).toBe('not_started');
    });

    it('counts the gold layer as worked on for curators and owners, and for everyone in an open project', async () => {
      const third = (await api<DocumentSummary[]>(server.url, alice, '/api/projects/1/documents')).body[2]!;
      await server.database.db.insertInto('sync_updates').values({ room: goldRoom(third.id), data: new Uint8Array([0, 0]) }).execute();
      const statusFor = async (cookie: string) => (await api<DocumentSummary[]>(server.url, cookie, '/api/projects/1/documents')).body.find((d) => d.id === third.id)?.status;
      expect(await statusFor(admin)).toBe('in_progress'); // owner
      expect(await statusFor(await login(server.url, 'dana'))).toBe('in_progress'); // curator
      expect(await statusFor(alice)).toBe('not_started'); // an annotator in a blind project
      await sql`update projects set mode = 'open' where id = 1`.execute(server.database.db);
      try {
        expect(await statusFor(alice)).toBe('in_progress');
      } finally {
        await sql`update projects set mode = 'blind' where id = 1`.execute(server.database.db);
      }
    });

    it('lets a viewer read a document but not mark its progress', async () => {
      const vicId = await usersRepository(server.database.db).insert('vic-status', await hashPassword('secret'));
      await projectsRepository(server.database.db).addMember(1, vicId, 'viewer');
      const vic = await login(server.url, 'vic-status', 'secret');
      expect((await api(server.url, vic, '/api/documents/1')).status).toBe(200);
      const res = await api<ErrorBody>(server.url, vic, '/api/documents/1/status', { method: 'PUT', body: JSON.stringify({ status: 'done' }) });
      expect(res).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
      const stored = await sql<{ n: number }>`select count(*)::int as n from document_status where user_id = ${vicId}`.execute(server.database.db);
      expect(stored.rows[0]!.n).toBe(0);
    });

    it('rejects an unknown status value', async () => {
      const res = await api<ErrorBody>(server.url, alice, '/api/documents/1/status', { method: 'PUT', body: JSON.stringify({ status: 'finished' }) });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('status');
    });

    it('lets the owner add a document, stored exactly as sent', async () => {
      const text = '  Iran 🚀 and Russia\r\n\tcafe\u0301  ';
      const res = await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Mine', text }) });
      expect(res.status).toBe(201);
      const doc = await api<DocumentDetail>(server.url, admin, `/api/documents/${res.body.id}`);
      expect(doc.body).toMatchObject({ id: res.body.id, title: 'Mine', text, length: text.length });
      expect(doc.body.contentHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    });

    it('forbids annotators to add documents', async () => {
      const res = await api(server.url, alice, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 't', text: 'x' }) });
      expect(res.status).toBe(403);
    });

    it('keeps non-members out of a project’s documents', async () => {
      await usersRepository(server.database.db).insert('eve', await hashPassword('secret'));
      const eve = await login(server.url, 'eve', 'secret');
      expect((await api<ProjectSummary[]>(server.url, eve, '/api/projects')).body).toEqual([]);
      expect((await api(server.url, eve, '/api/projects/1/documents')).status).toBe(403);
      expect((await api(server.url, eve, '/api/projects/1')).status).toBe(403);
      expect((await api(server.url, eve, '/api/documents/1')).status).toBe(403);
    });

    it('answers 401 to every project route without a session', async () => {
      for (const p of ['/api/projects', '/api/projects/1', '/api/projects/1/documents', '/api/documents/1']) {
        expect((await api(server.url, null, p)).status, p).toBe(401);
      }
    });
  });
});

describe('sign-in attempts from one address', () => {
  it('are limited whatever the usernames, successes not counted', async () => {
    const server = await startTestServer({ config: { signInAttemptsPerAddress: 12 } });
    try {
      const attempt = (username: string, password: string) =>
        fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
      for (let i = 0; i < 3; i++) expect((await attempt('dana', 'demo')).status).toBe(200);
      // A name tried once each: no one name's count comes near its 10.
      for (let i = 0; i < 12; i++) expect((await attempt(`ghost${i}`, 'guess')).status).toBe(401);
      const refused = await attempt('dana', 'demo');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      // Refused by its address, an attempt counts against no username; and once the address is
      // known refused, fresh usernames from it do not reach the database at all.
      const counted = async () =>
        (await server.database.db.selectFrom('sign_in_attempts').select(['key', 'count']).execute()).filter((r) => r.key.includes('\n'));
      const before = await counted();
      expect(before.find((r) => r.key.startsWith('dana\n'))?.count ?? 0).toBe(0);
      for (let i = 0; i < 5; i++) expect((await attempt(`fresh${i}`, 'guess')).status).toBe(429);
      expect(await counted()).toEqual(before);
    } finally {
      await server.close();
    }
  });
});

describe('Secure cookies (SECURE_COOKIES, behind HTTPS)', () => {
  it('name the session cookie __Host-, which only this host can set, and read no other', async () => {
    const server = await startTestServer({ config: { secureCookies: true } });
    try {
      const res = await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'demo' }) });
      expect(res.status).toBe(200);
      const setCookie = res.headers.get('set-cookie')!;
      expect(setCookie).toMatch(/^__Host-spanwise_session=[^;]+;/);
      expect(setCookie).toMatch(/; Secure/);
      expect(setCookie).toMatch(/; Path=\//);
      expect(setCookie).not.toMatch(/Domain=/i);
      const cookie = setCookie.split(';')[0]!;
      expect((await api(server.url, cookie, '/api/me')).status).toBe(200);
      // The same token under the plain name (as a sibling subdomain could set it) is no session.
      const token = cookie.slice(cookie.indexOf('=') + 1);
      expect((await api(server.url, `spanwise_session=${token}`, '/api/me')).status).toBe(401);
      // The sync socket takes the same cookie.
      const layer = connectLayer(server.url, layerRoom(1, 3), cookie);
      try {
        await layer.synced;
      } finally {
        layer.destroy();
      }
      const out = await fetch(`${server.url}/api/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: '{}' });
      expect(out.status).toBe(204);
      expect(out.headers.get('set-cookie')).toMatch(/^__Host-spanwise_session=; Max-Age=0; .*Secure/);
      expect((await api(server.url, cookie, '/api/me')).status).toBe(401);
    } finally {
      await server.close();
    }
  });
});

describe('a burst of sign-ins', () => {
  it(`checks at most ${HASHES_AT_ONCE} passwords at once and lets ${CHECKS_WAITING} wait; past that, 503 sign_in_busy, not counted as a guess`, async () => {
    const server = await startTestServer({ config: { signInAttemptsPerAddress: 1_000 } });
    try {
      const attempt = (username: string, password: string) =>
        fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
      const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => attempt(`crowd${i}`, 'guess')));
      const statuses = burst.map((r) => r.status);
      expect(statuses.filter((s) => s !== 401 && s !== 503)).toEqual([]);
      const wrong = statuses.filter((s) => s === 401).length;
      expect(wrong).toBeGreaterThanOrEqual(HASHES_AT_ONCE + CHECKS_WAITING);
      const busy = burst.filter((r) => r.status === 503);
      expect(busy.length).toBeGreaterThan(0);
      for (const r of busy) {
        expect(r.headers.get('retry-after')).toBe('1');
        expect(((await r.json()) as ErrorBody).error.code).toBe('sign_in_busy');
      }
      // Only the guesses whose password was checked count against the address.
      const place = await server.database.db.selectFrom('sign_in_attempts').select('count').where('key', 'like', '\n%').executeTakeFirst();
      expect(place?.count).toBe(wrong);
      expect((await attempt('dana', 'demo')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('behind a proxy (TRUST_PROXY=1)', () => {
  it('counts sign-in attempts by the address the proxy added, not its own or one the client made up', async () => {
    const server = await startTestServer({ config: { trustProxy: true } });
    try {
      // The client may send its own X-Forwarded-For; the proxy appends the address it saw.
      const attempt = (seen: string, password = 'wrong') =>
        fetch(`${server.url}/api/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': `6.6.6.6, ${seen}` },
          body: JSON.stringify({ username: 'dana', password }),
        });
      for (let i = 0; i < 10; i++) expect((await attempt('10.0.0.1')).status).toBe(401);
      expect((await attempt('10.0.0.1', 'demo')).status).toBe(429);
      expect((await attempt('10.0.0.2', 'demo')).status).toBe(200); // dana herself, elsewhere
      // Fresh IPv6 addresses from one /64 count as one place.
      for (let i = 1; i <= 10; i++) expect((await attempt(`2001:db8:7:7::${i.toString(16)}`)).status).toBe(401);
      expect((await attempt('2001:db8:7:7:ffff::1', 'demo')).status).toBe(429);
      expect((await attempt('2001:db8:7:8::1', 'demo')).status).toBe(200);
      // What is not an address there (a client that reached the server past the proxy) counts
      // as the socket's address: neither a fresh key each time nor one too long to store.
      for (let i = 0; i < 10; i++) expect((await attempt(`made-up-${i}-${'x'.repeat(8_000)}`)).status).toBe(401);
      expect((await attempt('not-an-address', 'demo')).status).toBe(429);
      // A proxy that ends TLS says so: the W3C export's ids are https addresses.
      const admin = await login(server.url, 'admin');
      const w3c = await fetch(`${server.url}/api/projects/1/export?format=w3c`, { headers: { cookie: admin, 'x-forwarded-proto': 'https' } });
      const body = (await w3c.json()) as { id: string };
      expect(body.id).toMatch(/^https:\/\//);
    } finally {
      await server.close();
    }
  });
});

describe('an overloaded embedded database (pglite)', () => {
  it('answers 503 database_busy once a request has waited its limit for the connection, lets a sign-out wait, and answers again once it is free', async () => {
    const server = await startTestServer({ kind: 'pglite', databaseQueue: { waitMs: 300 } });
    try {
      const alice = await login(server.url, 'alice');
      expect((await api(server.url, alice, '/api/projects')).status).toBe(200);
      // Something holds PGlite's one connection (a long upkeep run, say).
      const holder = holdConnection(server.database.db);
      await holder.held;
      const started = performance.now();
      const busy = await api<ErrorBody>(server.url, alice, '/api/projects');
      expect(busy.status).toBe(503);
      expect(busy.body.error.code).toBe('database_busy');
      expect(busy.headers.get('retry-after')).toBe('1');
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      // A sign-out is not refused as busy: it waits for its turn, and the session ends.
      const signingOut = api(server.url, alice, '/api/auth/logout', { method: 'POST', body: '{}' });
      await new Promise((r) => setTimeout(r, 400));
      holder.release();
      await holder.done;
      expect((await signingOut).status).toBe(204);
      expect((await api(server.url, alice, '/api/me')).status).toBe(401);
      const dana = await login(server.url, 'dana');
      expect((await api(server.url, dana, '/api/projects')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
