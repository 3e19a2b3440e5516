// @ts-check
/**
 * Rebuilding a room's document from its update log, for compaction: run on a worker thread
 * (merge-worker.mjs), and importable anywhere without side effects.
 *
 * Plain JavaScript, not TypeScript: a worker thread is a bare Node realm, which loads neither
 * the server's tsx nor the test runner's transforms.
 */
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
