// @ts-check
/**
 * Merges a room's update log into one snapshot, on a worker thread of its own (log-merger.ts
 * starts it), so that the work — proportional to the whole document — holds neither the event
 * loop every room shares nor the database connection.
 *
 * Plain JavaScript, not TypeScript: a worker thread is a bare Node realm, which loads neither
 * the server's tsx nor the test runner's transforms.
 */
import { parentPort } from 'node:worker_threads';
import * as Y from 'yjs';

/**
 * The rows applied in order to a fresh doc, as loading does; the snapshot is the doc's state,
 * so content deleted since is garbage-collected, as in a live room. A row that does not decode,
 * or throws when applied, is reported as bad (the store sets it aside): left in the log with an
 * id below the snapshot's, it would be applied before it at the next load, and one that waited
 * there on content only the snapshot holds would throw inside the snapshot's apply and take the
 * room's whole history with it. A row that throws while others wait on missing content cannot
 * be told from them (Yjs retries those inside its apply): then this throws, and the room is not
 * compacted at all.
 *
 * @param {readonly Uint8Array[]} rows
 * @returns {{ merged: Uint8Array, bad: Array<{ index: number, error: string }> }}
 */
export function mergeLog(rows) {
  const doc = new Y.Doc({ gc: true });
  /** @type {Array<{ index: number, error: string }>} */
  const bad = [];
  try {
    rows.forEach((data, index) => {
      const waiting = doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
      try {
        Y.decodeUpdate(data);
        Y.applyUpdate(doc, data);
      } catch (err) {
        if (waiting) throw new Error(`row ${index} of the log failed to apply while earlier rows waited on missing content: not compacted`);
        bad.push({ index, error: String(err) });
      }
    });
    return { merged: Y.encodeStateAsUpdate(doc), bad };
  } finally {
    doc.destroy();
  }
}

/**
 * A job: the rows as one buffer and where each ends (one transfer instead of a copy of every
 * row's backing store, which for a Buffer from a pool is the whole pool).
 * @typedef {{ id: number, bytes: Uint8Array, ends: Uint32Array }} MergeJob
 */

parentPort?.on('message', (/** @type {MergeJob} */ { id, bytes, ends }) => {
  try {
    /** @type {Uint8Array[]} */
    const rows = [];
    let start = 0;
    for (const end of ends) {
      rows.push(bytes.subarray(start, end));
      start = end;
    }
    const { merged, bad } = mergeLog(rows);
    parentPort?.postMessage({ id, merged, bad }, [/** @type {ArrayBuffer} */ (merged.buffer)]);
  } catch (err) {
    parentPort?.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
