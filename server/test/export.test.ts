import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unzipSync, strFromU8 } from 'fflate';
import { addRelation, addSpan, DEFAULT_SCHEMA, goldRoom, layerRoom, setAttribute, type DocumentSummary } from '@spanwise/shared';
import { sql } from 'kysely';
import { connect } from 'node:net';
import * as Y from 'yjs';
import { EXPORTS_AT_ONCE, EXPORTS_PER_USER, readable } from '../src/features/export/export.routes.ts';
import { INLINE_MAX_CHARS } from '../src/features/export/convert.ts';
import { exportService } from '../src/features/export/export.service.ts';
import { ROOMS_PER_QUERY } from '../src/features/documents/documents.repository.ts';
import { READ_RUN_ROWS } from '../src/sync/adapters/kysely-store.ts';
import { hashPassword } from '../src/features/auth/password.ts';
import { usersRepository } from '../src/features/auth/users.repository.ts';
import { projectsRepository } from '../src/features/projects/projects.repository.ts';
import { createLogger } from '../src/log.ts';
import { api, connectLayer, databaseKinds, holdConnection, login, startTestServer, storedDoc, waitFor, type TestServer } from './harness.ts';

const silentLog = createLogger('error', () => {});

// "😀" is one code point and two UTF-16 units: offsets after it tell the two apart.
const TEXT = 'Iran 😀 supplied Fateh-110 missiles.\nKirby said so.';
const cp = (utf16: number) => [...TEXT.slice(0, utf16)].length;
const at = (quote: string) => TEXT.indexOf(quote);

describe.each(databaseKinds())('export (%s)', (kind) => {
  let server: TestServer;
  let admin: string;
  let alice: string;
  let aliceId: number;
  let docId: number;
  let documentCount: number;

  /** Writes through a real sync client and waits until the database holds it. */
  async function annotate(room: string, cookie: string, write: (doc: import('yjs').Doc) => void, spans: number) {
    const client = connectLayer(server.url, room, cookie);
    try {
      await client.synced;
      write(client.doc);
      await waitFor(async () => (await storedDoc(server.database.db, room)).getMap('annotations').size === spans, `${room} stored`);
    } finally {
      client.destroy();
    }
  }

  beforeAll(async () => {
    server = await startTestServer({ kind });
    admin = await login(server.url, 'admin');
    alice = await login(server.url, 'alice');
    aliceId = (await api<{ id: number }>(server.url, alice, '/api/me')).body.id;
    docId = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Emoji', text: TEXT }) })).body.id;
    documentCount = (await api<DocumentSummary[]>(server.url, admin, '/api/projects/1/documents')).body.length;
    await annotate(goldRoom(docId), admin, (d) => {
      const claim = addSpan(d, { label: 'CLAIM', start: at('supplied'), end: at('supplied') + 27, quote: 'supplied Fateh-110 missiles', author: 1 });
      setAttribute(d, claim, 'stance', 'asserts');
      const kirby = addSpan(d, { label: 'PERSON', start: at('Kirby'), end: at('Kirby') + 5, quote: 'Kirby', author: 1 });
      addRelation(d, { label: 'source', from: claim, to: kirby, author: 1 });
    }, 3);
    await annotate(layerRoom(docId, aliceId), alice, (d) => {
      addSpan(d, { label: 'GPE', start: 0, end: 4, quote: 'Iran', author: aliceId });
    }, 1);
  });
  afterAll(() => server.close());

  const get = (cookie: string | null, query: string) => fetch(`${server.url}/api/projects/1/export?${query}`, { headers: cookie ? { cookie } : {} });
  /** The JSON-lines records of every layer of one document, as the admin exports them. */
  const everyLayerOf = async (documentId: number) =>
    (await (await get(admin, 'format=jsonl&layer=all')).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.document_id === documentId);

  it('streams the gold layer as JSON lines, one per document, offsets in code points', async () => {
    const res = await get(admin, 'format=jsonl&layer=gold');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-disposition')).toContain('spanwise-project-1-gold.jsonl');
    const records = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(records).toHaveLength(documentCount);
    expect(records.every((r) => r.layer === 'gold')).toBe(true);
    const ours = records.find((r) => r.document_id === docId);
    expect(ours.text).toBe(TEXT);
    const claim = ours.spans.find((s: { label: string }) => s.label === 'CLAIM');
    expect(claim).toMatchObject({ start: cp(at('supplied')), end: cp(at('supplied')) + 27, text: 'supplied Fateh-110 missiles', attributes: { stance: 'asserts' } });
    expect(claim.start).toBe(at('supplied') - 1);
    expect(ours.relations).toHaveLength(1);
  });

  it('exports every layer with layer=all, naming each annotator', async () => {
    const records = await everyLayerOf(docId);
    expect(records.map((r) => r.layer)).toEqual(['gold', `user:${aliceId}`]);
    expect(records[1]).toMatchObject({ annotator: 'alice', spans: [{ label: 'GPE', start: 0, end: 4, text: 'Iran' }] });
  });

  it('streams CoNLL with BIO tags', async () => {
    const text = await (await get(admin, 'format=conll')).text();
    const block = text.split('-DOCSTART- ').find((b) => b.startsWith(`-X- document=${docId};layer=gold O\n`))!;
    expect(block).toContain('supplied -X- _ B-CLAIM');
    expect(block).toContain('Fateh-110 -X- _ I-CLAIM');
    expect(block).toContain('Kirby -X- _ B-PERSON');
    expect(block).toContain('Iran -X- _ O');
  });

  it('exports only the span labels asked for, and the relations between those spans', async () => {
    const text = await (await get(admin, 'format=conll&labels=PERSON,GPE')).text();
    const block = text.split('-DOCSTART- ').find((b) => b.startsWith(`-X- document=${docId};layer=gold O\n`))!;
    expect(block).toContain('Kirby -X- _ B-PERSON');
    expect(block).toContain('supplied -X- _ O'); // (the claim left out)
    const records = (await (await get(admin, 'format=jsonl&layer=all&labels=CLAIM')).text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    const ours = records.filter((r) => r.document_id === docId);
    expect(ours.map((r) => [r.layer, r.spans.map((sp: { label: string }) => sp.label), r.relations.length])).toEqual([
      ['gold', ['CLAIM'], 0], // (its relation's other end, PERSON, left out)
      [`user:${aliceId}`, [], 0], // (kept: alice marked no claim, which is not the same as never opening it)
    ]);
    const collection = (await (await get(admin, 'format=w3c&labels=PERSON')).json()) as { id: string; first: { items: Array<{ body?: Array<{ value: string }> }> } };
    expect(collection.id).toMatch(/\?format=w3c&layer=gold&labels=PERSON$/); // (not the whole collection's id)
    expect(new Set(collection.first.items.flatMap((a) => (a.body?.[0] ? [a.body[0].value] : [])))).toEqual(new Set(['PERSON']));
    const bad = await get(admin, 'format=jsonl&labels=PERSON,,GPE');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_query', field: 'labels' });
  });

  it('zips brat standoff files with the project’s annotation.conf', async () => {
    const res = await get(admin, 'format=brat&layer=all');
    expect(res.headers.get('content-type')).toBe('application/zip');
    const files = unzipSync(new Uint8Array(await res.arrayBuffer()));
    expect(strFromU8(files['annotation.conf']!)).toContain('stance\tArg:CLAIM, Value:asserts|denies|uncertain');
    expect(strFromU8(files[`gold/${docId}.txt`]!)).toBe(TEXT);
    const ann = strFromU8(files[`gold/${docId}.ann`]!);
    const s = cp(at('supplied'));
    expect(ann).toContain(`T1\tCLAIM ${s} ${s + 27}\tsupplied Fateh-110 missiles`);
    expect(ann).toMatch(/R1\tsource Arg1:T1 Arg2:T2/);
    expect(strFromU8(files[`user-${aliceId}/${docId}.ann`]!)).toBe('T1\tGPE 0 4\tIran\n');
  });

  it('streams one W3C AnnotationCollection', async () => {
    const res = await get(admin, 'format=w3c');
    expect(res.headers.get('content-type')).toMatch(/^application\/ld\+json/);
    const collection = (await res.json()) as { id: string; first: { id: string; items: unknown[] } };
    expect(collection).toMatchObject({ '@context': 'http://www.w3.org/ns/anno.jsonld', type: 'AnnotationCollection', first: { type: 'AnnotationPage' } });
    expect(collection.first.id).toBe(`${collection.id}#page1`); // (a page has an IRI, embedded too)
    const items = collection.first.items as Array<Record<string, any>>;
    expect(collection).toMatchObject({ total: items.length, first: { startIndex: 0 } });
    expect(items.length).toBeGreaterThan(1);
    const person = items.find((a) => a.body?.[0]?.value === 'PERSON')!;
    expect(person.target.source).toBe(`${server.url}/projects/1/documents/${docId}`);
    expect(person.target.selector[0]).toEqual({ type: 'TextPositionSelector', start: cp(at('Kirby')), end: cp(at('Kirby')) + 5 });
    expect(items.filter((a) => a.motivation === 'linking')).toHaveLength(1);
  });

  it('answers bad queries with 400 naming the parameter, and keeps layers from those who may not read them', async () => {
    const bad = await get(admin, 'format=csv');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_query', field: 'format' });
    expect((await get(admin, 'format=jsonl&layer=mine')).status).toBe(400);
    // The demo project is blind: an annotator reads neither the gold layer nor anyone else's.
    expect((await get(alice, 'format=jsonl&layer=all')).status).toBe(403);
    expect((await get(alice, 'format=jsonl&layer=gold')).status).toBe(403);
    expect((await get(await login(server.url, 'dana'), 'format=jsonl&layer=all')).status).toBe(200);
    expect((await get(null, 'format=jsonl')).status).toBe(401);
    // A viewer reads every layer; in an open project an annotator exports the shared gold layer only.
    const users = usersRepository(server.database.db);
    const projects = projectsRepository(server.database.db);
    await users.insert('vic', await hashPassword('pw'));
    await api(server.url, admin, '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username: 'vic', role: 'viewer' }) });
    expect((await get(await login(server.url, 'vic', 'pw'), 'format=jsonl&layer=all')).status).toBe(200);
    const open = await projects.insert({ name: 'Open', mode: 'open', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(open, 1, 'owner');
    await projects.addMember(open, aliceId, 'annotator');
    const openExport = (query: string) => fetch(`${server.url}/api/projects/${open}/export?${query}`, { headers: { cookie: alice } });
    expect((await openExport('format=jsonl&layer=gold')).status).toBe(200);
    expect((await openExport('format=jsonl&layer=all')).status).toBe(403);
  });

  it('refuses, up front, a brat zip larger than a zip without Zip64 can hold', async () => {
    const projects = projectsRepository(server.database.db);
    const big = await projects.insert({ name: 'Big', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(big, 1, 'owner');
    await sql`insert into documents (project_id, title, text, text_length, content_hash)
              select ${big}, 'd' || g, 'x', 1, 'sha256:x' from generate_series(1, 32768) g`.execute(server.database.db);
    const res = await fetch(`${server.url}/api/projects/${big}/export?format=brat`, { headers: { cookie: admin } });
    expect(res.status).toBe(413);
    // A HEAD is told the same.
    expect((await fetch(`${server.url}/api/projects/${big}/export?format=brat`, { method: 'HEAD', headers: { cookie: admin } })).status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('export_too_large');
    // 32,768 documents make 65,537 files with annotation.conf: past the 65,535 a plain zip counts.
    expect((await fetch(`${server.url}/api/projects/999/export?format=jsonl`, { headers: { cookie: admin } })).status).toBe(404);
  });

  it('counts, for that limit, only the member layers that hold anything', async () => {
    const projects = projectsRepository(server.database.db);
    const wide = await projects.insert({ name: 'Wide', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(wide, 1, 'owner');
    // 16 members and 2,000 documents: 68,001 files if every layer counted, 4,003 as they are.
    const names = Array.from({ length: 15 }, (_, i) => `wide${i}`);
    const members = [{ id: 1, username: 'admin' }];
    for (const name of names) {
      const userId = await usersRepository(server.database.db).insert(name, 'x');
      await projects.addMember(wide, userId, 'annotator');
      members.push({ id: userId, username: name });
    }
    await sql`insert into documents (project_id, title, text, text_length, content_hash)
              select ${wide}, 'd' || g, 'x', 1, 'sha256:x' from generate_series(1, 2000) g`.execute(server.database.db);
    const res = await fetch(`${server.url}/api/projects/${wide}/export?format=brat&layer=all`, { headers: { cookie: admin } });
    expect(res.status).toBe(200);
    await res.body?.cancel(); // the status is the point; the zip is made as it is read
    // Counted in parts of ROOMS_PER_QUERY rooms (32,000 here): one member's layer of every
    // document, spread over all the parts, and their gold layers, which are not members' layers.
    const third = members[3]!;
    await sql`insert into sync_updates (room, data)
              select 'doc:' || id || ':user:' || ${third.id}, decode('00', 'hex') from documents where project_id = ${wide}
              union all select 'doc:' || id || ':gold', decode('00', 'hex') from documents where project_id = ${wide}`.execute(server.database.db);
    expect(members.length * 2000).toBeGreaterThan(3 * ROOMS_PER_QUERY);
    expect(await exportService(server.database.db, silentLog).layersWithRows(wide, members)).toBe(2000);
  });

  it(`lets one user run at most ${EXPORTS_PER_USER} exports at once (each holds memory while its client reads), and gives a slot back when one is cancelled`, async () => {
    const projects = projectsRepository(server.database.db);
    const big = await projects.insert({ name: 'Long texts', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(big, 1, 'owner');
    // 16 MB of text: more than the sockets hold, so a download not read stays under way.
    await sql`insert into documents (project_id, title, text, text_length, content_hash)
              select ${big}, 'd' || g, repeat('x', 1000000), 1000000, 'sha256:x' from generate_series(1, 16) g`.execute(server.database.db);
    const exporting = () => fetch(`${server.url}/api/projects/${big}/export?format=jsonl`, { headers: { cookie: admin } });
    const running = [];
    for (let i = 0; i < EXPORTS_PER_USER; i++) running.push(await exporting());
    expect(running.map((r) => r.status)).toEqual(running.map(() => 200));
    const refused = await exporting();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('too_many_exports');
    await running.pop()!.body!.cancel(); // the client goes away
    await waitFor(async () => {
      const next = await exporting();
      if (next.status === 200) running.push(next);
      else await next.body?.cancel();
      return next.status === 200;
    }, 'a slot given back');
    for (const r of running) await r.body!.cancel();
    // Read to the end, an export gives its slot back too.
    await waitFor(async () => {
      const next = await exporting();
      if (next.status !== 200) await next.body?.cancel();
      else expect((await next.text()).split('\n').filter(Boolean)).toHaveLength(16);
      return next.status === 200;
    }, 'the slots given back');
    // A HEAD holds no slot (its body is never read).
    for (let i = 0; i <= EXPORTS_PER_USER; i++) {
      expect((await fetch(`${server.url}/api/projects/${big}/export?format=jsonl`, { method: 'HEAD', headers: { cookie: admin } })).status).toBe(200);
    }
    // Nor does a client whose connection drops once its download has begun.
    const { hostname, port } = new URL(server.url);
    for (let i = 0; i <= EXPORTS_PER_USER; i++) {
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(Number(port), hostname, () => {
          socket.write(`GET /api/projects/${big}/export?format=jsonl HTTP/1.1\r\nHost: ${hostname}\r\nCookie: ${admin}\r\n\r\n`);
        });
        socket.once('data', (d) => {
          socket.destroy();
          resolve(d.toString('latin1', 0, 12));
        });
        socket.on('error', () => {});
      });
      expect(answer).toBe('HTTP/1.1 200');
    }
    await waitFor(async () => {
      const tries = await Promise.all(Array.from({ length: EXPORTS_PER_USER }, () => exporting()));
      for (const r of tries) await r.body?.cancel();
      return tries.every((r) => r.status === 200);
    }, 'the slots of dropped downloads given back');
  });

  it(`runs at most ${EXPORTS_AT_ONCE} exports at once in all, whoever asks`, async () => {
    const projects = projectsRepository(server.database.db);
    const project = await projects.insert({ name: 'Busy exports', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(project, 1, 'owner');
    await sql`insert into documents (project_id, title, text, text_length, content_hash)
              select ${project}, 'd' || g, repeat('x', 1000000), 1000000, 'sha256:x' from generate_series(1, 16) g`.execute(server.database.db);
    const hash = await hashPassword('pw');
    const cookies: string[] = [];
    for (let i = 0; i <= EXPORTS_AT_ONCE / EXPORTS_PER_USER; i++) {
      await projects.addMember(project, await usersRepository(server.database.db).insert(`busy-${kind}-${i}`, hash), 'viewer');
      cookies.push(await login(server.url, `busy-${kind}-${i}`, 'pw'));
    }
    const exporting = (cookie: string) => fetch(`${server.url}/api/projects/${project}/export?format=jsonl`, { headers: { cookie } });
    const running: Response[] = [];
    for (const cookie of cookies.slice(0, -1)) for (let i = 0; i < EXPORTS_PER_USER; i++) running.push(await exporting(cookie));
    try {
      expect(running.map((r) => r.status)).toEqual(running.map(() => 200));
      expect(running).toHaveLength(EXPORTS_AT_ONCE);
      const refused = await exporting(cookies.at(-1)!); // a user with none of their own under way
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('exports_busy');
    } finally {
      for (const r of running) await r.body?.cancel();
    }
    // Given back as their downloads went (before the next test wants one).
    await waitFor(async () => {
      const next = await exporting(cookies.at(-1)!);
      await next.body?.cancel();
      return next.status === 200;
    }, 'the slots given back');
  });

  it('breaks off the download of a member removed while it runs', async () => {
    const projects = projectsRepository(server.database.db);
    const project = await projects.insert({ name: 'Withdrawn', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(project, 1, 'owner');
    const viewer = await usersRepository(server.database.db).insert('withdrawn-viewer', await hashPassword('pw'));
    await projects.addMember(project, viewer, 'viewer');
    // 32 MB: far more than the sockets and streams between hold while the client waits.
    await sql`insert into documents (project_id, title, text, text_length, content_hash)
              select ${project}, 'd' || g, repeat('x', 1000000), 1000000, 'sha256:x' from generate_series(1, 32) g`.execute(server.database.db);
    const cookie = await login(server.url, 'withdrawn-viewer', 'pw');
    const res = await fetch(`${server.url}/api/projects/${project}/export?format=jsonl`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false); // under way
    expect((await api(server.url, admin, `/api/projects/${project}/members/${viewer}`, { method: 'DELETE' })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 1_100)); // (access is asked again at most once a second)
    let bytes = 0;
    const rest = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return bytes;
        bytes += value.byteLength;
      }
    })();
    await expect(rest).rejects.toThrow();
    expect(bytes).toBeLessThan(31_000_000); // not the whole of it
  });

  it('exports a layer whose log is longer than one read of it, whole', async () => {
    const id = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Long log', text: TEXT }) })).body.id;
    const doc = new Y.Doc();
    const rows: Array<{ room: string; data: Uint8Array }> = [];
    doc.on('update', (data: Uint8Array) => rows.push({ room: layerRoom(id, aliceId), data }));
    const total = 2 * READ_RUN_ROWS + 500;
    for (let i = 0; i < total; i++) addSpan(doc, { label: 'GPE', start: 0, end: 4, quote: 'Iran', author: aliceId });
    await server.database.db.insertInto('sync_updates').values(rows).execute();
    const records = await everyLayerOf(id);
    expect(records.map((r) => r.layer)).toEqual(['gold', `user:${aliceId}`]);
    expect(records[1].spans).toHaveLength(total);
  });

  it('exports a document too long to convert on the event loop (its worker does) as it does a short one', async () => {
    const sentence = 'Reuters reported that Vienna and Prague signed the accord, Novak said. ';
    const text = `😀 ${sentence.repeat(Math.ceil((INLINE_MAX_CHARS + 1_000) / sentence.length))}`;
    const id = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Long text', text }) })).body.id;
    const last = text.lastIndexOf('Vienna');
    await annotate(goldRoom(id), admin, (d) => void addSpan(d, { label: 'GPE', start: last, end: last + 6, quote: 'Vienna', author: 1 }), 1);
    const conll = await (await get(admin, 'format=conll')).text();
    const block = conll.split('-DOCSTART- ').find((b) => b.startsWith(`-X- document=${id};layer=gold O\n`))!;
    expect(block.split('\n').filter((line) => line.endsWith(' B-GPE'))).toEqual(['Vienna -X- _ B-GPE']);
    expect(block.split('\n').filter((line) => line.startsWith('Vienna '))).toHaveLength(text.split('Vienna').length - 1);
    const items = ((await (await get(admin, 'format=w3c')).json()) as { first: { items: Array<Record<string, any>> } }).first.items;
    const ours = items.filter((a) => a.target.source === `${server.url}/projects/1/documents/${id}`);
    expect(ours).toHaveLength(1);
    expect(ours[0]!.target.selector[0]).toEqual({ type: 'TextPositionSelector', start: last - 1, end: last + 5 }); // (😀: two units, one point)
    const [record] = (await (await get(admin, 'format=jsonl')).text()).trimEnd().split('\n').map((l) => JSON.parse(l)).filter((r) => r.document_id === id);
    expect(record).toMatchObject({ text, label: [[last - 1, last + 5, 'GPE']] });
    // brat: its long .txt deflated on a worker, in its place in the zip.
    const files = unzipSync(new Uint8Array(await (await get(admin, 'format=brat')).arrayBuffer()));
    expect(strFromU8(files[`gold/${id}.txt`]!)).toBe(text);
    expect(strFromU8(files[`gold/${id}.ann`]!)).toBe(`T1\tGPE ${last - 1} ${last + 5}\tVienna\n`);
    expect(Object.keys(files).at(-1)).toBe('annotation.conf');
    expect(strFromU8(files[`gold/${docId}.txt`]!)).toBe(TEXT);
  });
});

describe('an export stream', () => {
  it('errors, rather than ends early, when reading fails part-way', async () => {
    const errors: unknown[] = [];
    async function* failing() {
      yield 'first line\n';
      throw new Error('database went away');
    }
    const reader = readable(failing(), (err) => errors.push(err)).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('first line\n');
    await expect(reader.read()).rejects.toThrow('database went away');
    expect(errors).toHaveLength(1);
  });

  it('reports no failure when the client goes away while a read is under way', async () => {
    const errors: unknown[] = [];
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    async function* chunks() {
      yield 'first line\n';
      await slow;
      yield 'second line\n';
    }
    const stream = readable(chunks(), (err) => errors.push(err));
    const reader = stream.getReader();
    await reader.read();
    const pending = reader.read(); // the stream pulls the next chunk, which waits
    await new Promise((r) => setTimeout(r, 10));
    const cancelled = reader.cancel();
    release();
    await cancelled;
    await pending;
    await new Promise((r) => setTimeout(r, 10));
    expect(errors).toEqual([]);
  });
});

describe('an export whose client stops reading', () => {
  const STALL_MS = 1_000;
  let server: TestServer;
  let admin: string;
  let big: number;

  beforeAll(async () => {
    server = await startTestServer({ config: { exportStallMs: STALL_MS } });
    admin = await login(server.url, 'admin');
    const projects = projectsRepository(server.database.db);
    big = await projects.insert({ name: 'Long texts', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(big, 1, 'owner');
    // 16 MB of text: more than the sockets hold, so a download not read stays under way.
    await sql`insert into documents (project_id, title, text, text_length, content_hash)
              select ${big}, 'd' || g, repeat('x', 1000000), 1000000, 'sha256:x' from generate_series(1, 16) g`.execute(server.database.db);
  });
  afterAll(() => server.close());

  const exporting = () => fetch(`${server.url}/api/projects/${big}/export?format=jsonl`, { headers: { cookie: admin } });
  /** A download under way, once a slot is free (a slot comes back as its connection closes). */
  const aDownload = async (what: string, timeoutMs?: number): Promise<Response> =>
    (await waitFor(async () => {
      const res = await exporting();
      if (res.status === 200) return res;
      await res.body?.cancel();
      return null;
    }, what, timeoutMs))!;

  it('is cut off once it has moved nothing for EXPORT_STALL_MS, and gives its slot back', async () => {
    const { hostname, port } = new URL(server.url);
    const stalled = [];
    for (let i = 0; i < EXPORTS_PER_USER; i++) {
      // A client that reads the first bytes of its answer and then nothing more, connection kept open.
      stalled.push(
        await new Promise<import('node:net').Socket>((resolve) => {
          const socket = connect(Number(port), hostname, () => {
            socket.write(`GET /api/projects/${big}/export?format=jsonl HTTP/1.1\r\nHost: ${hostname}\r\nCookie: ${admin}\r\n\r\n`);
          });
          socket.once('data', (d) => {
            expect(d.toString('latin1', 0, 12)).toBe('HTTP/1.1 200');
            socket.pause();
            resolve(socket);
          });
          socket.on('error', () => {});
        }),
      );
    }
    try {
      const refused = await exporting();
      expect(refused.status).toBe(429);
      await refused.body?.cancel();
      const startedAt = Date.now();
      const next = await aDownload('a stalled download’s slot given back', 10 * STALL_MS);
      expect(Date.now() - startedAt).toBeLessThan(8 * STALL_MS);
      await next.body!.cancel();
    } finally {
      for (const socket of stalled) socket.destroy();
    }
  });

  it('is not cut off while the server itself is what it waits for (its database busy for longer than that)', async () => {
    const reader = (await aDownload('a slot')).body!.getReader();
    let bytes = (await reader.read()).value!.byteLength;
    // The database's one connection held (a long upkeep run, say) for three times the limit.
    const holder = holdConnection(server.database.db);
    await holder.held;
    setTimeout(() => holder.release(), 3 * STALL_MS);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
    }
    await holder.done;
    expect(bytes).toBeGreaterThan(16_000_000);
  });

  it('is not cut off while its client reads, however slowly, with pauses shorter than that', async () => {
    const reader = (await aDownload('a slot')).body!.getReader();
    let bytes = 0;
    let sincePause = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      sincePause += value.byteLength;
      // A pause every MB, each half the stall limit: the sockets fill and wait in each.
      if (sincePause > 1_000_000) {
        sincePause = 0;
        await new Promise((r) => setTimeout(r, STALL_MS / 2));
      }
    }
    expect(bytes).toBeGreaterThan(16_000_000);
    // (Some 8 s in all: many times the limit, so no deadline on the whole download passes this.)
  });
});
