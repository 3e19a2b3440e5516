import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { sql } from 'kysely';
import { addSpan, deleteAnnotation, listSpans } from '@spanwise/shared';
import { databaseKinds, useTestDatabase } from '../../../test/harness.ts';
import { cleanupPoison, findPoison, waitingPoisonLog } from '../../../test/updates.ts';
import { SyncServer } from '../sync-server.ts';
import { DELETED_ROW_WAL_BYTES, KyselyStore, READ_RUN_ROWS, WARM_UP_ROOM, type KyselyStoreOptions } from './kysely-store.ts';
import { logMerger } from './log-merger.ts';
import type { PreparedStatement } from '../../db/database.ts';

const silent = { info() {}, warn() {}, error() {} };

function spanUpdate(doc: Y.Doc, label: string, start: number): Uint8Array {
  let update: Uint8Array | null = null;
  const capture = (u: Uint8Array) => (update = u);
  doc.on('update', capture);
  addSpan(doc, { label, start, end: start + 1, quote: 'x', author: 1 });
  doc.off('update', capture);
  return update!;
}

describe.each(databaseKinds())('KyselyStore (%s)', (kind) => {
  const db = useTestDatabase(kind);
  /** A store as the server builds one: on PGlite, appends take its prepared path. */
  const storeWith = (options: Omit<KyselyStoreOptions, 'executeEach'>) =>
    new KyselyStore(db.current.db, { executeEach: db.current.executeEach, ...options });

  it('loads what it stored, in order', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    await store.append('r1', [spanUpdate(doc, 'A', 0), spanUpdate(doc, 'B', 1)]);
    await store.append('r1', [spanUpdate(doc, 'C', 2)]);
    const rows = await store.load('r1');
    expect(rows).toHaveLength(3);
    const loaded = new Y.Doc();
    for (const r of rows) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded).map((s) => s.label)).toEqual(['A', 'B', 'C']);
    expect(await store.load('other')).toEqual([]);
  });

  it('warms PGlite’s commit path up with commits of its own, and leaves none of them behind', async () => {
    const calls: number[] = [];
    const executeEach = db.current.executeEach;
    const store = new KyselyStore(db.current.db, {
      compactAfterRows: 1000,
      log: silent,
      executeEach: executeEach && (async (statement, rows) => (calls.push(rows.length), executeEach(statement, rows))),
    });
    const doc = new Y.Doc();
    await store.append('warm-test', [spanUpdate(doc, 'A', 0)]);
    calls.length = 0;
    await store.warmUp(50);
    // One commit each, as appends are made, on PGlite (on PostgreSQL, where there is no such
    // path, the rows below say that nothing was written).
    expect(calls).toEqual(kind === 'pglite' ? Array(50).fill(1) : []);
    const rooms = await db.current.db.selectFrom('sync_updates').select('room').where('room', 'in', ['warm-test', WARM_UP_ROOM]).execute();
    expect(rooms.map((r) => r.room)).toEqual(['warm-test']);
    expect(await store.load(WARM_UP_ROOM)).toEqual([]);
    if (kind !== 'pglite') return;
    // Rows an earlier start left are deleted, by a start that makes none too; and the rows are
    // deleted when a commit fails midway.
    await store.append(WARM_UP_ROOM, [new Uint8Array(1)]);
    await store.warmUp(0);
    expect(await store.load(WARM_UP_ROOM)).toEqual([]);
    let left = 3;
    const failing = new KyselyStore(db.current.db, {
      compactAfterRows: 1000,
      log: silent,
      executeEach: async (statement, rows) => {
        if (left-- === 0) throw new Error('the disk is full');
        return executeEach!(statement, rows);
      },
    });
    await expect(failing.warmUp(10)).rejects.toThrow('the disk is full');
    expect(await store.load(WARM_UP_ROOM)).toEqual([]);
    expect((await store.load('warm-test')).length).toBe(1);
  });

  it('stores every byte value and any room name exactly (as literals on PostgreSQL, bound on PGlite)', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    const odd = "doc:1:user:1'); drop table sync_updates; --\\ ünï";
    await store.append(odd, [every, new Uint8Array(0), Uint8Array.from([0, 39, 92, 0])]);
    // A view into a larger buffer stores only its own bytes.
    const backing = Uint8Array.from([7, 7, 1, 2, 3, 7]);
    await store.append(odd, [backing.subarray(2, 5)]);
    const rows = await store.load(odd);
    expect(rows.map((r) => Array.from(r.data))).toEqual([Array.from(every), [], [0, 39, 92, 0], [1, 2, 3]]);
    expect(await store.load('doc:1:user:1')).toEqual([]);
  });

  it('writes a whole batch by the prepared path when there is one, and fails as it fails', async () => {
    const calls: Array<{ statement: PreparedStatement; rows: number }> = [];
    // PostgreSQL has no such path: stand one in that inserts through Kysely.
    const real: NonNullable<KyselyStoreOptions['executeEach']> =
      db.current.executeEach ??
      (async (_statement, rows) => {
        await db.current.db.insertInto('sync_updates').values(rows.map(([room, data]) => ({ room: room as string, data: data as Uint8Array }))).execute();
      });
    let broken = false;
    const store = new KyselyStore(db.current.db, {
      executeEach: async (statement, rows) => {
        calls.push({ statement, rows: rows.length });
        if (broken) throw new Error('disk on fire');
        await real(statement, rows);
      },
      compactAfterRows: 1000,
      log: silent,
    });
    await Promise.all([store.append('quick', [Uint8Array.from([1, 2]), Uint8Array.from([3])]), store.append('quick-2', [Uint8Array.from([9])])]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.rows).toBe(3);
    expect(calls[0]!.statement.text).toMatch(/^insert into sync_updates \(room, data\) values \(\$1, \$2\)$/);
    broken = true;
    await expect(store.append('quick', [Uint8Array.from([4])])).rejects.toThrow('disk on fire');
    expect((await store.load('quick')).map((r) => Array.from(r.data))).toEqual([[1, 2], [3]]);
  });

  it('stores large updates and many at once, in order', async () => {
    const store = storeWith({ compactAfterRows: 100_000, log: silent });
    const sized = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) % 256);
    // PostgreSQL: 300 KiB goes as a parameter, 40 × 200 KiB of small ones fill two literal
    // statements. PGlite: 8 MiB takes several messages, in one transaction.
    const updates = [sized(10, 1), sized(300 * 1024, 2), sized(10, 3), ...Array.from({ length: 40 }, (_, i) => sized(200 * 1024, 10 + i))];
    await store.append('big', updates);
    const rows = await store.load('big');
    expect(rows).toHaveLength(updates.length);
    rows.forEach((r, i) => expect(Buffer.compare(Buffer.from(r.data), Buffer.from(updates[i]!)), `row ${i}`).toBe(0));
  });

  it('compacts a long log into one snapshot with the same content', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 30; i++) await store.append('r2', [spanUpdate(doc, `L${i}`, i)]);
    const [first] = await store.load('r2');
    expect(await store.compact('r2')).toBe(30);
    const rows = await db.current.db.selectFrom('sync_updates').select(['id', 'kind', 'data']).where('room', '=', 'r2').execute();
    expect(rows.map((r) => r.kind)).toEqual(['snapshot']);
    // In the first row's place: it loads before anything stored while it was being written.
    expect(String(rows[0]!.id)).toBe(first!.id);
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, rows[0]!.data);
    expect(listSpans(loaded)).toHaveLength(30);
    expect(Y.encodeStateVector(loaded)).toEqual(Y.encodeStateVector(doc));
  });

  it('asks the disk for room for what deleting the merged rows may write, and puts the compaction off when there is none', async () => {
    const asked: number[] = [];
    let room: string | null = 'the disk holding the database has 70 MiB free, too little';
    const store = storeWith({ compactAfterRows: 1000, log: silent, diskRoomFor: (bytes) => (asked.push(bytes), room) });
    const doc = new Y.Doc();
    for (let i = 0; i < 30; i++) await store.append('r-disk', [spanUpdate(doc, `L${i}`, i)]);
    const refused = await store.compact('r-disk').then(() => null, (err: unknown) => err);
    expect(refused).toMatchObject({ code: '53100', message: expect.stringContaining('too little') });
    // A page's full image per row at worst.
    expect(asked).toEqual([30 * DELETED_ROW_WAL_BYTES]);
    const kinds = async () => (await db.current.db.selectFrom('sync_updates').select('kind').where('room', '=', 'r-disk').execute()).map((r) => r.kind);
    expect(await kinds()).toEqual(Array(30).fill('update'));
    room = null;
    expect(await store.compact('r-disk')).toBe(30);
    expect(await kinds()).toEqual(['snapshot']);
  });

  it('sets aside a snapshot that no longer decodes when compacting, and keeps the rest', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    await sql`insert into sync_updates (room, data, kind) values ('r-badsnap', ${new Uint8Array([7, 7, 7])}, 'snapshot')`.execute(db.current.db);
    for (let i = 0; i < 3; i++) await store.append('r-badsnap', [spanUpdate(doc, `L${i}`, i)]);
    expect(await store.compact('r-badsnap')).toBe(3);
    const rows = await store.load('r-badsnap');
    expect(rows).toHaveLength(1);
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, rows[0]!.data);
    expect(listSpans(loaded).map((s) => s.label).sort()).toEqual(['L0', 'L1', 'L2']);
    const kept = await db.current.db.selectFrom('sync_quarantine').select('data').where('room', '=', 'r-badsnap').execute();
    expect(kept.map((k) => Array.from(k.data))).toEqual([[7, 7, 7]]);
  });

  it('sets aside an update that fails to apply when compacting, so the snapshot loads', async () => {
    const errors: string[] = [];
    const store = storeWith({ compactAfterRows: 1000, log: silent, observer: { error: (kind) => errors.push(kind) } });
    const doc = new Y.Doc();
    for (let i = 0; i < 3; i++) await store.append('r7', [spanUpdate(doc, `L${i}`, i)]);
    // Another client's second edit, made bad: it builds on that client's first, so on an empty
    // doc Yjs would hold it back as waiting, not throw, and throw once the first arrives.
    const other = new Y.Doc();
    Y.applyUpdate(other, Y.encodeStateAsUpdate(doc));
    await store.append('r7', [spanUpdate(other, 'X0', 7)]);
    const before = Y.encodeStateAsUpdate(other);
    const poison = findPoison(spanUpdate(other, 'X1', 8), before);
    await store.append('r7', [poison]);
    for (let i = 3; i < 6; i++) await store.append('r7', [spanUpdate(doc, `L${i}`, i)]);
    expect(await store.compact('r7')).toBe(7);
    const rows = await store.load('r7');
    expect(rows).toHaveLength(1);
    // Loaded as the room loads it: every row in order, into one doc.
    const loaded = new Y.Doc();
    for (const r of rows) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded).map((s) => s.label).sort()).toEqual(['L0', 'L1', 'L2', 'L3', 'L4', 'L5', 'X0']);
    const kept = await db.current.db.selectFrom('sync_quarantine').select(['data', 'error']).where('room', '=', 'r7').execute();
    expect(kept.map((k) => Array.from(k.data))).toEqual([Array.from(poison)]);
    expect(errors).toEqual(['set_aside']);
  });

  it('compacts a log whose waiting content fails when a later row lets Yjs retry it: that content is set aside, the later row kept', async () => {
    const errors: string[] = [];
    const store = storeWith({ compactAfterRows: 1000, log: silent, observer: { error: (kind) => errors.push(kind) } });
    const { rows, text } = waitingPoisonLog();
    for (const row of rows) await store.append('r-waits', [row]);
    expect(await store.compact('r-waits')).toBe(3); // (the rows merged: the one set aside is not)
    const stored = await store.load('r-waits');
    expect(stored).toHaveLength(1);
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, stored[0]!.data);
    expect(loaded.getText('t').toString()).toBe(text);
    const kept = await db.current.db.selectFrom('sync_quarantine').select('data').where('room', '=', 'r-waits').execute();
    expect(kept.map((k) => Array.from(k.data))).toEqual([Array.from(rows[1]!)]);
    expect(errors).toEqual(['set_aside']);
  });

  it('writes a snapshot without the content deleted since', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    const ids = Array.from({ length: 30 }, (_, i) => addSpan(doc, { label: `L${i}`, start: i, end: i + 1, quote: 'a longer quote that takes some room', author: 1 }));
    for (const id of ids.slice(1)) deleteAnnotation(doc, id);
    await store.append('r8', updates);
    expect(await store.compact('r8')).toBe(updates.length);
    const [row] = await store.load('r8');
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, row!.data);
    expect(listSpans(loaded).map((s) => s.label)).toEqual(['L0']);
    // Merging the updates as they are would keep every deleted span's content.
    expect(row!.data.byteLength).toBeLessThan(Y.mergeUpdates(updates).byteLength / 3);
  });

  const rowsOf = async (room: string) =>
    (await db.current.db.selectFrom('sync_updates').select('id').where('room', '=', room).execute()).length;
  /** A merger that says when a merge starts and holds it until released, then merges for real. */
  const heldMerger = () => {
    let started!: () => void;
    const merging = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const merger = {
      merge: async (rows: readonly Uint8Array[]) => {
        started();
        await gate;
        return logMerger.merge(rows);
      },
    };
    return { merger, merging, release };
  };
  const until = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('compacts a room on load and on unload once past the threshold, and while open only far past it', async () => {
    const store = storeWith({ compactAfterRows: 10, openRoomFactor: 3, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 12; i++) await store.append('r3', [spanUpdate(doc, `L${i}`, i)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(await rowsOf('r3')).toBe(12); // open, not yet 3 × 10 rows
    store.release('r3');
    await until(async () => (await rowsOf('r3')) === 1);
    expect(await rowsOf('r3')).toBe(1);

    for (let i = 12; i < 24; i++) await store.append('r3', [spanUpdate(doc, `L${i}`, i)]);
    await store.load('r3'); // 13 rows: past the threshold, compacted after loading
    await until(async () => (await rowsOf('r3')) === 1);
    for (let i = 24; i < 53; i++) await store.append('r3', [spanUpdate(doc, `L${i}`, i)]); // 1 + 29 rows: 3 × 10
    await until(async () => (await rowsOf('r3')) === 1);
    expect(await rowsOf('r3')).toBe(1);
    const loaded = new Y.Doc();
    for (const r of await store.load('r3')) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded)).toHaveLength(53);
    // Loaded again while open (the bus lost track of it): an open room, compacted far past only.
    for (let i = 53; i < 65; i++) await store.append('r3', [spanUpdate(doc, `L${i}`, i)]);
    await new Promise((r) => setTimeout(r, 100));
    await store.load('r3', { reloading: true }); // 13 rows: past 10, not 3 × 10
    await new Promise((r) => setTimeout(r, 100));
    expect(await rowsOf('r3')).toBe(13);
  });

  it('counts toward the bytes threshold only the updates since the snapshot: a large document is not written again at each load and unload', async () => {
    const compactions: unknown[] = [];
    const log = { ...silent, info: (event: string, fields?: unknown) => void (event === 'sync_compacted' && compactions.push(fields)) };
    const store = storeWith({ compactAfterRows: 1000, compactAfterBytes: 4096, log });
    const doc = new Y.Doc();
    const large = () => {
      let update: Uint8Array | null = null;
      doc.once('update', (u: Uint8Array) => (update = u));
      addSpan(doc, { label: 'BIG', start: 0, end: 1, quote: 'q'.repeat(5000), author: 1 });
      return update!;
    };
    await store.append('r-large', [large(), spanUpdate(doc, 'A', 1)]);
    store.release('r-large'); // 5 KB of updates: past the threshold
    await until(async () => (await rowsOf('r-large')) === 1);
    expect(compactions).toHaveLength(1);
    // Opened and closed again and again, a small edit each time (~1.2 KB in all): the 5 KB snapshot is not merged again.
    for (let i = 0; i < 5; i++) {
      await store.load('r-large');
      await store.append('r-large', [spanUpdate(doc, `S${i}`, 2 + i)]);
      store.release('r-large');
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(compactions).toHaveLength(1);
    expect(await rowsOf('r-large')).toBe(6);
    // A threshold's worth of updates since the snapshot is merged, as ever.
    await store.load('r-large');
    await store.append('r-large', [large()]);
    store.release('r-large');
    await until(async () => (await rowsOf('r-large')) === 1);
    expect(compactions).toHaveLength(2);
    const loaded = new Y.Doc();
    for (const r of await store.load('r-large')) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded)).toHaveLength(8);
  });

  it('writes many rooms’ appends of one tick together, each room getting its own rows', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const docs = Array.from({ length: 40 }, () => new Y.Doc());
    await Promise.all(docs.map((d, i) => store.append(`many-${i}`, [spanUpdate(d, 'A', 0), spanUpdate(d, 'B', 1)])));
    for (let i = 0; i < docs.length; i++) {
      const loaded = new Y.Doc();
      for (const r of await store.load(`many-${i}`)) Y.applyUpdate(loaded, r.data);
      expect(listSpans(loaded).map((s) => s.label)).toEqual(['A', 'B']);
    }
  });

  it('fails only the room the database refuses when a batch spans several rooms', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    await sql`create or replace function fail_room() returns trigger language plpgsql as $$
      begin
        if new.room = 'doomed' then raise exception 'disk full'; end if;
        return new;
      end $$`.execute(db.current.db);
    await sql`create trigger fail_room before insert on sync_updates for each row execute function fail_room()`.execute(db.current.db);
    try {
      // One tick: one batch, first written in one transaction (which the trigger fails).
      const results = await Promise.allSettled([
        store.append('bystander', [new Uint8Array([0, 0])]),
        store.append('doomed', [new Uint8Array([0, 0])]),
        store.append('bystander', [new Uint8Array([0, 1]), new Uint8Array([0, 2])]),
        store.append('doomed', [new Uint8Array([0, 3])]),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
      expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/disk full/);
    } finally {
      await sql`drop trigger fail_room on sync_updates`.execute(db.current.db);
    }
    const stored = await store.load('bystander');
    expect(stored.map((r) => [...r.data])).toEqual([[0, 0], [0, 1], [0, 2]]);
    expect(await rowsOf('doomed')).toBe(0);
  });

  it('fails a whole batch at once, without trying room by room, when the database does not answer', async () => {
    let writes = 0;
    const down = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    const store = new KyselyStore(db.current.db, {
      compactAfterRows: 1000,
      log: silent,
      executeEach: async () => {
        writes++;
        throw down;
      },
    });
    const results = await Promise.allSettled(['a', 'b', 'c'].map((room) => store.append(room, [new Uint8Array([0, 0])])));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(writes).toBe(1);
    // Refused by the database itself (a SQLSTATE outside the connection classes): room by room.
    writes = 0;
    Object.assign(down, { code: '53100' });
    await Promise.allSettled(['a', 'b', 'c'].map((room) => store.append(room, [new Uint8Array([0, 0])])));
    expect(writes).toBe(4);
    writes = 0;
    Object.assign(down, { code: '08006' });
    await Promise.allSettled(['a', 'b', 'c'].map((room) => store.append(room, [new Uint8Array([0, 0])])));
    expect(writes).toBe(1);
  });

  /** Runs `during` while writing `room`'s snapshot fails with `message` (a trigger), and SQLSTATE `code`. */
  const whileSnapshotsFail = async (room: string, message: string, during: () => Promise<void>, code = 'P0001') => {
    await sql`create or replace function fail_snapshot() returns trigger language plpgsql as $$
      begin
        if new.kind = 'snapshot' and new.room = ${sql.lit(room)} then raise exception ${sql.lit(message)} using errcode = ${sql.lit(code)}; end if;
        return new;
      end $$`.execute(db.current.db);
    await sql`create trigger fail_snapshot before insert on sync_updates for each row execute function fail_snapshot()`.execute(db.current.db);
    try {
      await during();
    } finally {
      await sql`drop trigger fail_snapshot on sync_updates`.execute(db.current.db);
    }
  };

  it('loses nothing when compaction dies half-way (after deleting, before the snapshot lands)', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 8; i++) await store.append('r5', [spanUpdate(doc, `L${i}`, i)]);
    // The snapshot insert fails: by then the old rows have been deleted in the same transaction.
    await whileSnapshotsFail('r5', 'crash during compaction', async () => {
      await expect(store.compact('r5')).rejects.toThrow(/crash during compaction/);
    });
    const rows = await store.load('r5');
    expect(rows).toHaveLength(8);
    const loaded = new Y.Doc();
    for (const r of rows) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded)).toHaveLength(8);
    // And a compaction that completes afterwards still works.
    expect(await store.compact('r5')).toBe(8);
  });

  it('counts and logs a compaction that fails, and keeps the log', async () => {
    const errors: string[] = [];
    const logged: string[] = [];
    const store = storeWith({ compactAfterRows: 4, log: { ...silent, error: (event) => logged.push(event) }, observer: { error: (kind) => errors.push(kind) } });
    const doc = new Y.Doc();
    for (let i = 0; i < 5; i++) await store.append('r9', [spanUpdate(doc, `L${i}`, i)]);
    await whileSnapshotsFail('r9', 'no room for a snapshot', async () => {
      store.release('r9'); // unloaded past the threshold: compacts in the background
      await until(async () => errors.length > 0);
    });
    expect(errors).toEqual(['compaction_failed']);
    expect(logged).toEqual(['sync_compaction_failed']);
    expect(await rowsOf('r9')).toBe(5);
  });

  it('defers a compaction the disk has no room for, without counting it as a failure', async () => {
    const errors: string[] = [];
    const logged: string[] = [];
    const log = { ...silent, warn: (event: string) => logged.push(`warn ${event}`), error: (event: string) => logged.push(`error ${event}`) };
    const store = storeWith({ compactAfterRows: 4, log, observer: { error: (kind) => errors.push(kind) } });
    const doc = new Y.Doc();
    for (let i = 0; i < 5; i++) await store.append('r9b', [spanUpdate(doc, `L${i}`, i)]);
    await whileSnapshotsFail(
      'r9b',
      'disk full',
      async () => {
        store.release('r9b');
        await until(async () => logged.length > 0);
      },
      '53100',
    );
    expect(logged).toEqual(['warn sync_compaction_deferred']);
    expect(errors).toEqual([]);
    expect(await rowsOf('r9b')).toBe(5);
  });

  it('after a failed compaction, tries again only once another threshold of rows has come in', async () => {
    const errors: string[] = [];
    const store = storeWith({ compactAfterRows: 3, openRoomFactor: 1, log: silent, observer: { error: (kind) => errors.push(kind) } });
    const doc = new Y.Doc();
    await whileSnapshotsFail('r10', 'no room for a snapshot', async () => {
      for (let rows = 1; rows <= 12; rows++) {
        await store.append('r10', [spanUpdate(doc, `L${rows}`, rows)]);
        // At 3, 6, 9 and 12 rows a try starts; it is let finish before the next append.
        if (rows % 3 === 0) await until(async () => errors.length === rows / 3);
      }
    });
    // Past 3 rows on every append would be 10 tries.
    expect(errors.filter((e) => e === 'compaction_failed')).toHaveLength(4);
    expect(await rowsOf('r10')).toBe(12);
  });

  it('remembers a failed compaction across unloads: loading and unloading the room again does not retry it until its log has grown', async () => {
    const errors: string[] = [];
    const store = storeWith({ compactAfterRows: 3, log: silent, observer: { error: (kind) => errors.push(kind) } });
    const doc = new Y.Doc();
    for (let i = 0; i < 4; i++) await store.append('r10b', [spanUpdate(doc, `L${i}`, i)]);
    await whileSnapshotsFail('r10b', 'cannot be compacted', async () => {
      store.release('r10b'); // unloaded past the threshold: a try, which fails
      await until(async () => errors.length === 1);
      for (let visit = 0; visit < 3; visit++) {
        await store.load('r10b'); // the room opened and closed again: no new try
        store.release('r10b');
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(errors).toHaveLength(1);
      // Another threshold's worth of rows: then it is tried again.
      for (let i = 4; i < 7; i++) await store.append('r10b', [spanUpdate(doc, `L${i}`, i)]);
      await store.load('r10b');
      await until(async () => errors.length === 2);
    });
    expect(errors).toEqual(['compaction_failed', 'compaction_failed']);
    expect(await rowsOf('r10b')).toBe(7);
  });

  it('forgets a failed compaction once another process has compacted the log since', async () => {
    const errors: string[] = [];
    const here = storeWith({ compactAfterRows: 3, log: silent, observer: { error: (kind) => errors.push(kind) } });
    const elsewhere = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 4; i++) await here.append('r10c', [spanUpdate(doc, `L${i}`, i)]);
    await whileSnapshotsFail('r10c', 'cannot be compacted now', async () => {
      here.release('r10c');
      await until(async () => errors.length === 1);
    });
    expect(await elsewhere.compact('r10c')).toBe(4); // the log is one snapshot now
    expect(await here.load('r10c')).toHaveLength(1);
    for (let i = 4; i < 6; i++) await here.append('r10c', [spanUpdate(doc, `L${i}`, i)]);
    here.release('r10c'); // 3 rows: past the threshold, and not to be held back by the old failure
    await until(async () => (await rowsOf('r10c')) === 1);
    expect(await rowsOf('r10c')).toBe(1);
    expect(errors).toEqual(['compaction_failed']);
  });

  it('compacts a room only once when two processes try at the same time', async () => {
    const a = storeWith({ compactAfterRows: 1000, log: silent });
    const b = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 6; i++) await a.append('r6', [spanUpdate(doc, `L${i}`, i)]);
    const replaced = await Promise.all([a.compact('r6'), b.compact('r6')]);
    expect(replaced.sort()).toEqual([0, 6]);
    const rows = await a.load('r6');
    expect(rows).toHaveLength(1);
  });

  it('gives way when another process compacted the rows while it was merging them', async () => {
    const b = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    const a = storeWith({
      compactAfterRows: 1000,
      log: silent,
      // While a merges what it read, b compacts the room, and another edit comes in.
      merger: {
        merge: async (rows) => {
          expect(await b.compact('r12')).toBe(5);
          await b.append('r12', [spanUpdate(doc, 'late', 9)]);
          return logMerger.merge(rows);
        },
      },
    });
    for (let i = 0; i < 5; i++) await a.append('r12', [spanUpdate(doc, `L${i}`, i)]);
    expect(await a.compact('r12')).toBe(0);
    const rows = await db.current.db.selectFrom('sync_updates').select(['kind', 'data']).where('room', '=', 'r12').orderBy('id').execute();
    expect(rows.map((r) => r.kind)).toEqual(['snapshot', 'update']);
    const loaded = new Y.Doc();
    for (const r of rows) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded).map((s) => s.label).sort()).toEqual(['L0', 'L1', 'L2', 'L3', 'L4', 'late']);
  });

  // Only PostgreSQL commits rows out of id order (several connections, several instances).
  if (kind !== 'pglite') it('gives way when another process put its snapshot in the place of a row it read (rows committed out of id order)', async () => {
    const room = 'r14';
    const mine = new Y.Doc();
    const theirs = new Y.Doc();
    const { merger: heldB, merging: bHasRead, release: releaseB } = heldMerger();
    const b = storeWith({ compactAfterRows: 1000, log: silent, merger: heldB });
    await b.append(room, [spanUpdate(mine, 'L0', 0)]);
    const first = (await b.load(room))[0]!.id;
    // Another instance's row, committed with an id above rows still being written elsewhere.
    const late = BigInt(first) + BigInt(READ_RUN_ROWS);
    await sql`insert into sync_updates (id, room, data) overriding system value values (${String(late)}, ${room}, ${spanUpdate(theirs, 'X0', 50)})`.execute(db.current.db);
    const bDone = b.compact(room); // reads the first row and X0, then waits
    await bHasRead;
    // The rows between commit now: the first READ_RUN_ROWS rows of the log are ids first..first+999.
    await b.append(room, Array.from({ length: READ_RUN_ROWS - 1 }, (_, i) => spanUpdate(mine, `L${i + 1}`, i + 1)));
    // a reads one run of the log; before its next run, b compacts (X0 and the first row, whose
    // place its snapshot takes), so a's next run finds nothing past its first.
    let afterFirstRun: (() => Promise<void>) | null = async () => {
      releaseB();
      expect(await bDone).toBe(2);
    };
    const a = new KyselyStore(
      db.current.db.withPlugin({
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          if (afterFirstRun && args.result.rows.length === READ_RUN_ROWS) {
            const hook = afterFirstRun;
            afterFirstRun = null;
            await hook();
          }
          return args.result;
        },
      }),
      { compactAfterRows: 1000, log: silent },
    );
    try {
      expect(await a.compact(room)).toBe(0);
    } finally {
      // Row X0 has an id the sequence will give out: gone whatever happened, so later appends
      // of this suite do not meet it.
      await db.current.db.deleteFrom('sync_updates').where('id', '=', String(late)).execute();
    }
    expect(afterFirstRun).toBeNull();
    const loaded = new Y.Doc();
    for (const r of await b.load(room)) Y.applyUpdate(loaded, r.data);
    const labels = listSpans(loaded).map((s) => s.label);
    expect(labels).toHaveLength(READ_RUN_ROWS + 1);
    expect(labels).toContain('X0');
  });

  /**
   * `db`, recording how many rows each query read; with `after`, its `hook` is called once, after
   * the `nth` query that read a full run of rows.
   */
  const recordRuns = (after?: { nth: number; hook: () => Promise<void> }) => {
    const runs: number[] = [];
    const plugged = db.current.db.withPlugin({
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        runs.push(args.result.rows.length);
        if (after && runs.filter((n) => n === READ_RUN_ROWS).length === after.nth && runs[runs.length - 1] === READ_RUN_ROWS) await after.hook();
        return args.result;
      },
    });
    return { plugged, runs };
  };

  it('loads a log of many runs one run per query, whole and in order', async () => {
    const room = 'long-load';
    const doc = new Y.Doc();
    const total = 2 * READ_RUN_ROWS + 500;
    await storeWith({ compactAfterRows: 100_000, log: silent }).append(room, Array.from({ length: total }, (_, i) => spanUpdate(doc, `L${i}`, i)));
    const { plugged, runs } = recordRuns();
    const rows = await new KyselyStore(plugged, { compactAfterRows: 100_000, log: silent }).load(room);
    // No one query read more than a run: a log too long to read within a query's deadline still loads.
    expect(Math.max(...runs)).toBe(READ_RUN_ROWS);
    expect(rows).toHaveLength(total);
    const loaded = new Y.Doc();
    for (const r of rows) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded).map((s) => s.label)).toEqual(Array.from({ length: total }, (_, i) => `L${i}`));
  });

  // PGlite is one session: another process cannot compact between two runs of a read.
  if (kind !== 'pglite') it('loads every update of a long log while another process compacts it between two runs of the load', async () => {
    const room = 'long-load-compacted';
    const doc = new Y.Doc();
    const total = 2 * READ_RUN_ROWS + 500;
    const other = storeWith({ compactAfterRows: 100_000, log: silent });
    await other.append(room, Array.from({ length: total }, (_, i) => spanUpdate(doc, `L${i}`, i)));
    // After the load's first run of its whole read (its second full run: the first tells it the
    // log is long), the other process replaces every row with a snapshot in the first row's place.
    let compacted = false;
    const { plugged } = recordRuns({
      nth: 2,
      hook: async () => {
        await other.compact(room);
        compacted = true;
      },
    });
    const rows = await new KyselyStore(plugged, { compactAfterRows: 100_000, log: silent }).load(room);
    expect(compacted).toBe(true);
    expect((await db.current.db.selectFrom('sync_updates').select('kind').where('room', '=', room).execute()).map((r) => r.kind)).toEqual(['snapshot']);
    const loaded = new Y.Doc();
    for (const r of rows) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded)).toHaveLength(total);
  });

  it('counts an update set aside once when two processes compact the room', async () => {
    const errors: string[] = [];
    const observer = { error: (kind: string) => errors.push(kind) };
    const b = storeWith({ compactAfterRows: 1000, log: silent, observer });
    const a = storeWith({
      compactAfterRows: 1000,
      log: silent,
      observer,
      merger: {
        merge: async (rows) => {
          expect(await b.compact('r15')).toBe(0); // one good row: nothing to merge, the bad one set aside
          return logMerger.merge(rows);
        },
      },
    });
    await a.append('r15', [spanUpdate(new Y.Doc(), 'L0', 0), new Uint8Array([1, 2, 3])]);
    expect(await a.compact('r15')).toBe(0);
    expect(errors).toEqual(['set_aside']);
    expect(await db.current.db.selectFrom('sync_quarantine').select('id').where('room', '=', 'r15').execute()).toHaveLength(1);
    expect(await rowsOf('r15')).toBe(1);
  });

  it('compacts one room at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const merged: string[] = [];
    const store = storeWith({
      compactAfterRows: 3,
      openRoomFactor: 1,
      log: silent,
      merger: {
        merge: async (rows) => {
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 50));
          inFlight--;
          merged.push(`${rows.length}`);
          return logMerger.merge(rows);
        },
      },
    });
    const docs = [new Y.Doc(), new Y.Doc(), new Y.Doc()];
    // Three rooms past the threshold at once (rows stored, then loaded: compacted after loading).
    for (const [i, doc] of docs.entries()) await db.current.db.insertInto('sync_updates').values([0, 1, 2].map((j) => ({ room: `r16-${i}`, data: spanUpdate(doc, `L${j}`, j) }))).execute();
    await Promise.all(docs.map((_, i) => store.load(`r16-${i}`)));
    const counts = () => Promise.all(docs.map((_, i) => rowsOf(`r16-${i}`)));
    await until(async () => (await counts()).every((n) => n === 1));
    expect(await counts()).toEqual([1, 1, 1]);
    expect(merged).toHaveLength(3);
    expect(most).toBe(1);
  });

  it('after giving way to another process, waits for another threshold of rows before trying again', async () => {
    let merges = 0;
    const b = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    const a = storeWith({
      compactAfterRows: 3,
      openRoomFactor: 1,
      log: silent,
      merger: {
        merge: async (rows) => {
          if (merges++ === 0) await b.compact('r17'); // the first time, b got there first
          return logMerger.merge(rows);
        },
      },
    });
    await a.load('r17');
    for (let i = 0; i < 3; i++) await a.append('r17', [spanUpdate(doc, `L${i}`, i)]);
    await until(async () => merges === 1 && (await rowsOf('r17')) === 1);
    await new Promise((r) => setTimeout(r, 50));
    // The log is one snapshot now: one more row is not past the threshold.
    await a.append('r17', [spanUpdate(doc, 'L3', 3)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(merges).toBe(1);
    await a.append('r17', [spanUpdate(doc, 'L4', 4)]); // three rows: past it
    await until(async () => merges === 2);
    expect(merges).toBe(2);
  });

  /** Four rows in `room`, and a store holding its lease while it merges them (until `release`). */
  const compactingWithLease = async (room: string) => {
    const doc = new Y.Doc();
    const { merger, merging, release } = heldMerger();
    const a = storeWith({ compactAfterRows: 1000, log: silent, merger, sharedDatabase: true });
    for (let i = 0; i < 4; i++) await a.append(room, [spanUpdate(doc, `L${i}`, i)]);
    const aDone = a.compact(room);
    await merging; // a has read the log and merges it
    return { doc, aDone, release };
  };

  // The lease is PostgreSQL's (several processes); on PGlite one process compacts one room at a time.
  if (kind !== 'pglite') it('with the lease, one process compacts a room at a time: another gives way before it reads or merges', async () => {
    const room = 'r40';
    const { doc, aDone, release } = await compactingWithLease(room);
    let bMerges = 0;
    const b = storeWith({ compactAfterRows: 1000, log: silent, sharedDatabase: true, merger: { merge: (rows) => (bMerges++, logMerger.merge(rows)) } });
    expect(await b.compact(room)).toBe(0);
    expect(bMerges).toBe(0);
    release();
    expect(await aDone).toBe(4);
    // The lease went with a's compaction: b takes it next time.
    await b.append(room, [spanUpdate(doc, 'L4', 4)]);
    expect(await b.compact(room)).toBe(2);
    expect(bMerges).toBe(1);
    expect(await rowsOf(room)).toBe(1);
    // Given back when a compaction fails too.
    await b.append(room, [spanUpdate(doc, 'L5', 5)]);
    const failing = storeWith({ compactAfterRows: 1000, log: silent, sharedDatabase: true, merger: { merge: async () => Promise.reject(new Error('merge failed')) } });
    await expect(failing.compact(room)).rejects.toThrow('merge failed');
    expect(await b.compact(room)).toBe(2);
  });

  if (kind !== 'pglite') it('with the lease held elsewhere, tries again once another threshold’s worth has come in, not at each append', async () => {
    const room = 'r42';
    let leaseTries = 0;
    const counted = db.current.db.withPlugin({
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        if (args.result.rows[0] && typeof args.result.rows[0] === 'object' && 'leased' in args.result.rows[0]) leaseTries++;
        return args.result;
      },
    });
    const b = new KyselyStore(counted, { compactAfterRows: 2, openRoomFactor: 1, log: silent, sharedDatabase: true });
    const { doc, aDone, release } = await compactingWithLease(room);
    await b.load(room); // 4 rows, past 2: b tries, and gives way
    await until(async () => leaseTries === 1);
    await b.append(room, [spanUpdate(doc, 'L4', 4)]); // 5: not another 2 past 4
    await new Promise((r) => setTimeout(r, 150));
    expect(leaseTries).toBe(1);
    release();
    expect(await aDone).toBe(4);
    await b.append(room, [spanUpdate(doc, 'L5', 5)]); // 6: tried again, and compacts what a left
    await until(async () => (await rowsOf(room)) === 1);
    expect(leaseTries).toBe(2);
  });

  if (kind !== 'pglite') it('with several processes writing to an open room, counts its log again from the database: others’ rows count toward compacting it', async () => {
    const room = 'r41';
    const doc = new Y.Doc();
    const a = storeWith({ compactAfterRows: 10, openRoomFactor: 3, log: silent, sharedDatabase: true });
    const b = storeWith({ compactAfterRows: 10, openRoomFactor: 3, log: silent, sharedDatabase: true });
    await a.load(room);
    await b.load(room);
    for (let i = 0; i < 12; i++) await a.append(room, [spanUpdate(doc, `A${i}`, i)]);
    // b's own 25 rows alone stay below 3 × 10; with a's 12, the log is well past it.
    for (let i = 0; i < 25; i++) await b.append(room, [spanUpdate(doc, `B${i}`, 20 + i)]);
    // (Compacted once b's count, with a's rows, reached 30: its later rows follow the snapshot.)
    const snapshots = async () => (await db.current.db.selectFrom('sync_updates').select('id').where('room', '=', room).where('kind', '=', 'snapshot').execute()).length;
    await until(async () => (await snapshots()) === 1);
    expect(await snapshots()).toBe(1);
    expect(await rowsOf(room)).toBeLessThan(12);
    const loaded = new Y.Doc();
    for (const r of await b.load(room)) Y.applyUpdate(loaded, r.data);
    expect(listSpans(loaded)).toHaveLength(37);
  });

  it('on close, finishes the compactions under way or queued, and starts no other', async () => {
    const { merger, merging, release } = heldMerger();
    const store = storeWith({ compactAfterRows: 2, log: silent, merger });
    const doc = new Y.Doc();
    for (const room of ['r18', 'r19', 'r20']) {
      for (let i = 0; i < 3; i++) await store.append(room, [spanUpdate(doc, `L${i}`, i)]);
    }
    store.release('r18'); // compacts in the background...
    store.release('r19'); // ...and this one after it
    await merging;
    let closed = false;
    const closing = store.close().then(() => (closed = true));
    store.release('r20'); // asked for after close: not compacted
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    release();
    await closing;
    expect([await rowsOf('r18'), await rowsOf('r19'), await rowsOf('r20')]).toEqual([1, 1, 3]);
  });

  it('does not set aside a row whose id a snapshot took since it was read', async () => {
    const store = storeWith({
      compactAfterRows: 1000,
      log: silent,
      merger: {
        merge: async (rows) => {
          // Meanwhile the bad row's id went to a snapshot (as a compaction elsewhere would do).
          const [bad] = await db.current.db.selectFrom('sync_updates').select('id').where('room', '=', 'r21').where('data', '=', new Uint8Array([1, 2, 3])).execute();
          await db.current.db.deleteFrom('sync_updates').where('id', '=', bad!.id).execute();
          await sql`insert into sync_updates (id, room, data, kind) overriding system value values (${bad!.id}, 'r21', ${Y.encodeStateAsUpdate(new Y.Doc())}, 'snapshot')`.execute(db.current.db);
          return logMerger.merge(rows);
        },
      },
    });
    const doc = new Y.Doc();
    await store.append('r21', [spanUpdate(doc, 'L0', 0), spanUpdate(doc, 'L1', 1), new Uint8Array([1, 2, 3]), spanUpdate(doc, 'L2', 2)]);
    expect(await store.compact('r21')).toBe(3);
    const rows = await db.current.db.selectFrom('sync_updates').select('kind').where('room', '=', 'r21').execute();
    expect(rows.map((r) => r.kind)).toEqual(['snapshot', 'snapshot']);
    expect(await db.current.db.selectFrom('sync_quarantine').select('id').where('room', '=', 'r21').execute()).toEqual([]);
  });

  // PGlite has one connection: no other can hold the lock meanwhile.
  if (kind !== 'pglite') it('gives way at once, without waiting, while another holds the room\'s compaction lock', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 3; i++) await store.append('r22', [spanUpdate(doc, `L${i}`, i)]);
    await db.current.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(${'spanwise-compact:r22'}))`.execute(trx);
      expect(await store.compact('r22')).toBe(0);
    });
    expect(await rowsOf('r22')).toBe(3);
    expect(await store.compact('r22')).toBe(3);
  });

  it('lets other rooms\' appends through while it merges (the connection is not held)', async () => {
    const { merger, merging: started, release: finish } = heldMerger();
    const store = storeWith({ compactAfterRows: 1000, log: silent, merger });
    const doc = new Y.Doc();
    for (let i = 0; i < 4; i++) await store.append('r13', [spanUpdate(doc, `L${i}`, i)]);
    const compaction = store.compact('r13');
    await started;
    // On PGlite a transaction open across the merge would hold the one connection: this append
    // (and every room's) would wait until the merge ends.
    const appended = await Promise.race([
      store.append('bystander-2', [new Uint8Array([0, 0])]).then(() => 'stored'),
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5_000)),
    ]);
    finish();
    expect(appended).toBe('stored');
    expect(await compaction).toBe(4);
    expect(await rowsOf('r13')).toBe(1);
  });

  it('does not set aside a snapshot that took the id of the update asked for', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 3; i++) await store.append('r11', [spanUpdate(doc, `L${i}`, i)]);
    const [first] = await store.load('r11'); // a room read its rows...
    expect(await store.compact('r11')).toBe(3); // ...a compaction elsewhere replaced them...
    await store.setAside('r11', first!.id, 'does not apply'); // ...and it sets aside what it read
    expect(await rowsOf('r11')).toBe(1);
    expect(await db.current.db.selectFrom('sync_quarantine').select('id').where('room', '=', 'r11').execute()).toEqual([]);
  });

  it('sets aside a snapshot that leaves the doc unusable, by the version it was read at, so the room loads again', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    await store.append('r-snap', [spanUpdate(doc, 'L0', 0)]);
    // A snapshot row Yjs throws on part-way (a merge gone wrong, or the disk): before, only an
    // update could be set aside, and every load of the room failed on it for good.
    await sql`insert into sync_updates (room, data, kind) values ('r-snap', ${cleanupPoison()}, 'snapshot')`.execute(db.current.db);
    const server = new SyncServer({ store, log: silent, limits: { maxMessageBytes: 1 << 20, maxMessagesPerSecond: 100, maxAwarenessBytes: 1 << 16 } });
    const closed: number[] = [];
    const connect = () =>
      server.connect({ send: () => true, close: (code) => void closed.push(code) }, { room: 'r-snap', userId: 1, readOnly: false });
    connect();
    await server.rooms.get('r-snap')?.loaded.catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toHaveLength(1); // (its socket tries again)
    const quarantined = await db.current.db.selectFrom('sync_quarantine').select('data').where('room', '=', 'r-snap').execute();
    expect(quarantined).toHaveLength(1);
    connect();
    await server.rooms.get('r-snap')!.loaded;
    expect(listSpans(server.rooms.get('r-snap')!.doc).map((sp) => sp.label)).toEqual(['L0']);
    await server.close();
  });

  it('sets aside only the row read: not one that replaced it meanwhile under the same id', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    const doc = new Y.Doc();
    for (let i = 0; i < 3; i++) await store.append('r-ver', [spanUpdate(doc, `L${i}`, i)]);
    const [first] = await store.load('r-ver');
    expect(first!.version).toBeDefined();
    expect(await store.compact('r-ver')).toBe(3); // its snapshot takes the first row's id
    expect(await store.setAside('r-ver', first!.id, 'does not apply', first!.version)).toBe(false);
    expect(await rowsOf('r-ver')).toBe(1);
    const [snapshot] = await store.load('r-ver');
    expect(await store.setAside('r-ver', snapshot!.id, 'does not apply', snapshot!.version)).toBe(true);
    expect(await rowsOf('r-ver')).toBe(0);
  });

  it('sets aside an update whose error quotes a NUL (which a text column refuses), with the error cut to length', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    await store.append('r-nul', [new Uint8Array([1, 2, 3])]);
    const [row] = await store.load('r-nul');
    await store.setAside('r-nul', row!.id, `SyntaxError: Unexpected token \u0000 in JSON "\u0000garbage" ${'x'.repeat(5_000)}`);
    expect(await store.load('r-nul')).toEqual([]);
    const [q] = await db.current.db.selectFrom('sync_quarantine').selectAll().where('room', '=', 'r-nul').execute();
    expect(q!.error.startsWith('SyntaxError: Unexpected token \uFFFD in JSON "\uFFFDgarbage"')).toBe(true);
    expect(q!.error.length).toBeLessThanOrEqual(2_001);
  });

  it('sets aside an update, keeping its bytes and the error', async () => {
    const store = storeWith({ compactAfterRows: 1000, log: silent });
    await store.append('r4', [new Uint8Array([1, 2, 3])]);
    const [row] = await store.load('r4');
    await store.setAside('r4', row!.id, 'does not decode');
    expect(await store.load('r4')).toEqual([]);
    const q = await db.current.db.selectFrom('sync_quarantine').selectAll().where('room', '=', 'r4').execute();
    expect(q).toHaveLength(1);
    expect(Array.from(q[0]!.data)).toEqual([1, 2, 3]);
    expect(q[0]!.error).toBe('does not decode');
  });
});
