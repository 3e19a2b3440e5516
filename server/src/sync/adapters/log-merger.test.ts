import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { addSpan, listSpans } from '@spanwise/shared';
import { cleanupPoison, findPoison, waitingPoison, waitingPoisonLog } from '../../../test/updates.ts';
import { LogMerger } from './log-merger.ts';
import { mergeLog } from './merge-log.mjs';

/** A doc's updates, one per span added. */
function log(spans: number): { doc: Y.Doc; updates: Uint8Array[] } {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  for (let i = 0; i < spans; i++) addSpan(doc, { label: `L${i}`, start: i, end: i + 1, quote: 'x', author: 1 });
  return { doc, updates };
}

describe('LogMerger', () => {
  it('merges a log on its worker into the state of a doc the rows were applied to', async () => {
    const merger = new LogMerger();
    try {
      const { doc, updates } = log(50);
      // Rows as they come from a database: views into larger buffers.
      const backing = Buffer.concat(updates.map((u) => Buffer.concat([Buffer.from([7, 7]), u])));
      let at = 0;
      const rows = updates.map((u) => {
        const row = backing.subarray(at + 2, at + 2 + u.byteLength);
        at += 2 + u.byteLength;
        return row;
      });
      const { merged, bad } = await merger.merge(rows);
      expect(bad).toEqual([]);
      const loaded = new Y.Doc();
      Y.applyUpdate(loaded, merged);
      expect(listSpans(loaded)).toHaveLength(50);
      expect(Y.encodeStateVector(loaded)).toEqual(Y.encodeStateVector(doc));
      expect(merged).toEqual(mergeLog(rows).merged);
    } finally {
      await merger.close();
    }
  });

  it('reports rows that do not decode or apply, by index, and refuses a log it cannot tell apart', async () => {
    const merger = new LogMerger();
    try {
      const { updates } = log(3);
      // Another client's edit on top of the first three, made bad: it decodes, and throws once
      // applied onto what it builds on (and onto an empty doc, some of it going in first).
      const other = new Y.Doc();
      Y.applyUpdate(other, Y.mergeUpdates(updates));
      const before = Y.encodeStateAsUpdate(other);
      let edit: Uint8Array | null = null;
      other.once('update', (u: Uint8Array) => (edit = u));
      addSpan(other, { label: 'X', start: 5, end: 6, quote: 'x', author: 2 });
      const poison = findPoison(edit!, before);
      const { merged, bad } = await merger.merge([...updates, new Uint8Array([1, 2, 3]), poison]);
      expect(bad.map((b) => b.index)).toEqual([3, 4]);
      const loaded = new Y.Doc();
      Y.applyUpdate(loaded, merged);
      expect(listSpans(loaded)).toHaveLength(3);
      // A row that throws while an earlier one waits on missing content, and some of whose
      // content goes in before it throws even without that one: it cannot be shown to hold
      // nothing a room keeps, so the log is not merged at all.
      await expect(merger.merge([updates[2]!, poison])).rejects.toThrow(/waited on missing content/);
      // The worker is still there for the next job.
      expect((await merger.merge(updates)).bad).toEqual([]);
    } finally {
      await merger.close();
    }
  });

  it('sets aside a row whose waiting content fails when a later, sound row lets Yjs retry it, and keeps that row', () => {
    // hello · (the poison, waiting) · " world" (its apply throws retrying the poison) · " again"
    const { rows, text } = waitingPoisonLog();
    const { merged, bad } = mergeLog(rows);
    expect(bad.map((b) => b.index)).toEqual([1]);
    expect(bad[0]!.error).toMatch(/^its content, waiting, failed when row 2 was applied/);
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, merged);
    // What a room loads from the whole log (the poison never integrates), and nothing waits.
    expect(loaded.getText('t').toString()).toBe(text);
    expect(loaded.store.pendingStructs).toBeNull();
  });

  describe('a row that fails while others’ content waits', () => {
    /** A writer whose edits are rows. */
    const writer = (id: number) => {
      const doc = new Y.Doc();
      doc.clientID = id;
      const rows: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => rows.push(u));
      return { doc, text: doc.getText('t'), rows };
    };
    /** "hello", " world", " again" by one writer (id 1000), a row each. */
    const honest = () => {
      const h = writer(1_000);
      h.text.insert(0, 'hello');
      h.text.insert(5, ' world');
      h.text.insert(11, ' again');
      return h;
    };
    /** Another writer's two rows on top of "hello": "X" (lost, never in the log), and "Y", which waits on it. */
    const lostAndWaiting = (h: ReturnType<typeof honest>) => {
      const other = writer(3_000);
      Y.applyUpdate(other.doc, h.rows[0]!);
      other.rows.length = 0;
      other.text.insert(0, 'X');
      other.text.insert(1, 'Y');
      return { lost: other.rows[0]!, waiting: other.rows[1]! };
    };

    it('blames the waiting poison, not a sound row whose content waits too (its author’s earlier row never reached the log)', () => {
      const h = honest();
      const { lost, waiting } = lostAndWaiting(h);
      const rows = [h.rows[0]!, waiting, waitingPoison({ client: 1_000, clock: 5 }), h.rows[1]!, h.rows[2]!];
      const { merged, bad } = mergeLog(rows);
      expect(bad.map((b) => b.index)).toEqual([2]);
      const loaded = new Y.Doc();
      Y.applyUpdate(loaded, merged);
      expect(loaded.getText('t').toString()).toBe('hello world again');
      // The sound row is kept, still waiting: it goes in once its author's first row does.
      const complete = new Y.Doc();
      Y.applyUpdate(complete, merged);
      Y.applyUpdate(complete, lost);
      expect(complete.getText('t').toString()).toBe('XYhello world again');
    });

    it('sets aside a row that no longer decodes, though content waits before it (nothing of it went in)', () => {
      const h = honest();
      const { waiting } = lostAndWaiting(h);
      const rows = [h.rows[0]!, waiting, new Uint8Array([0, 1, 2]), h.rows[1]!, h.rows[2]!];
      const { merged, bad } = mergeLog(rows);
      expect(bad.map((b) => b.index)).toEqual([2]);
      const loaded = new Y.Doc();
      Y.applyUpdate(loaded, merged);
      expect(loaded.getText('t').toString()).toBe('hello world again');
      expect(loaded.store.pendingStructs).not.toBeNull(); // (the waiting row is kept)
    });

    it('never blames a row that holds sound content beside the waiting poison (an earlier snapshot)', () => {
      // The first compaction keeps the poison in its snapshot, waiting on content of client 4000.
      const h = honest();
      const first = mergeLog([h.rows[0]!, h.rows[1]!, waitingPoison({ client: 4_000, clock: 0 })]);
      expect(first.bad).toEqual([]);
      // Client 4000 then writes: its row lets Yjs retry the poison, which throws. Blaming the
      // snapshot would set aside the room's whole history: the log is refused instead.
      const later = writer(4_000);
      later.doc.getMap('m').set('k', 'v');
      expect(() => mergeLog([first.merged, later.rows[0]!])).toThrow(/waited on missing content: not compacted/);
    });

    it('never blames a failing row some of whose content went in (a room keeps it)', () => {
      const h = honest(); // (its " world" row is lost)
      // A sound row: "X" goes in, "Y" (after " world") waits.
      const s = writer(3_000);
      Y.applyUpdate(s.doc, h.rows[0]!);
      Y.applyUpdate(s.doc, h.rows[1]!);
      s.rows.length = 0;
      s.doc.transact(() => {
        s.text.insert(0, 'X');
        s.text.insert(12, 'Y');
      });
      // The failing row: another client's sound "Z" after "X" (it goes in first: Yjs takes the
      // higher client first), merged with a poison of a low client.
      const a = writer(9_000);
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(s.doc));
      a.rows.length = 0;
      a.text.insert(1, 'Z');
      const failing = Y.mergeUpdates([a.rows[0]!, waitingPoison({ client: 1_000, clock: 2 }, 10)]);
      expect(() => mergeLog([h.rows[0]!, s.rows[0]!, failing])).toThrow(/waited on missing content: not compacted/);
    });

    it('never blames a row that deletes (its deletions go in before the retry that throws)', () => {
      const h = honest();
      const deleter = writer(3_000);
      Y.applyUpdate(deleter.doc, h.rows[0]!);
      deleter.rows.length = 0;
      deleter.text.delete(0, 2); // "he"
      const row = Y.mergeUpdates([deleter.rows[0]!, waitingPoison({ client: 1_000, clock: 5 }, 10)]);
      // A room holds "llo world": blaming the row would bring "he" back.
      expect(() => mergeLog([h.rows[0]!, row, h.rows[1]!])).toThrow(/waited on missing content: not compacted/);
    });

    it('refuses to compact when no row can be shown to be the one to blame', () => {
      // A sound row holding two authors' edits: one waits on " world", the other on a row that
      // never reached the log; the poison builds on the first. Without that sound row the
      // poison only waits, so it cannot be told from it.
      const h = honest();
      const a = writer(3_000);
      Y.applyUpdate(a.doc, h.rows[0]!);
      Y.applyUpdate(a.doc, h.rows[1]!);
      a.rows.length = 0;
      a.text.insert(11, 'Z');
      const b = writer(3_001);
      Y.applyUpdate(b.doc, h.rows[0]!);
      b.rows.length = 0;
      b.text.insert(0, 'X'); // (this row is lost)
      b.text.insert(1, 'Y');
      const sound = Y.mergeUpdates([a.rows[0]!, b.rows[1]!]);
      const poison = waitingPoison({ client: 3_000, clock: 0 });
      expect(() => mergeLog([h.rows[0]!, sound, poison, h.rows[1]!, h.rows[2]!])).toThrow(/waited on missing content: not compacted/);
      // The poison first: without the sound row " world" applies whole, and the sound row then
      // brings what the poison waits on — yet it does not throw itself, so it is not blamed.
      expect(() => mergeLog([h.rows[0]!, poison, sound, h.rows[1]!, h.rows[2]!])).toThrow(/waited on missing content: not compacted/);
    });
  });

  it('leaves out all of a row that left the doc unusable (its content went in before Yjs threw), as loading does', () => {
    const { updates } = log(3);
    const after = log(2).updates; // another client's, independent of the rest
    const { merged, bad } = mergeLog([...updates, cleanupPoison(), ...after]);
    expect(bad.map((b) => b.index)).toEqual([3]);
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, merged);
    // The poison's own span ('X') is not in the snapshot; every other row's is.
    expect(listSpans(loaded).map((sp) => sp.label).sort()).toEqual(['L0', 'L0', 'L1', 'L1', 'L2']);
  });

  it('gives up past a few rows that leave the doc unusable (each costs a pass over the whole log)', () => {
    const { updates } = log(3);
    expect(mergeLog([...updates, ...Array.from({ length: 8 }, () => cleanupPoison())]).bad).toHaveLength(8);
    expect(() => mergeLog([...updates, ...Array.from({ length: 9 }, () => cleanupPoison())])).toThrow(/not compacted/);
  });

  it('fails the jobs of a worker that ends, and starts a new one for the next', async () => {
    const merger = new LogMerger();
    const { updates } = log(2_000);
    const failed = expect(merger.merge(updates)).rejects.toThrow(/closed/);
    await merger.close();
    await failed;
    const { merged } = await merger.merge(updates);
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, merged);
    expect(listSpans(loaded)).toHaveLength(2_000);
    await merger.close();
  });

  it('ends a worker that holds a job past its deadline, failing that job, and sends the next to a new one', async () => {
    const exited: number[] = [];
    let started = 0;
    const merger = new LogMerger({
      jobTimeoutMs: 300,
      // The first worker never answers (as on an update Yjs never finishes with); later ones do.
      startWorker: () => {
        const worker = started++ === 0 ? new Worker('setInterval(() => {}, 1000);', { eval: true }) : new Worker(new URL('./merge-worker.mjs', import.meta.url));
        worker.once('exit', (code) => exited.push(code));
        return worker;
      },
    });
    try {
      const first = merger.merge(log(3).updates);
      const second = merger.merge(log(5).updates); // waits behind the first
      await expect(first).rejects.toThrow(/longer than 300 ms/);
      const { merged, bad } = await second;
      expect(bad).toEqual([]);
      const loaded = new Y.Doc();
      Y.applyUpdate(loaded, merged);
      expect(listSpans(loaded)).toHaveLength(5);
      expect(started).toBe(2);
      expect(exited).toEqual([1]); // the silent one was ended
    } finally {
      await merger.close();
    }
  });
});
