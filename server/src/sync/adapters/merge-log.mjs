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
 * room's whole history with it. A row that leaves the doc unusable (Yjs' own cleanup threw,
 * after the row's content went in) is bad too, and the merge starts again on a fresh doc
 * without it, as loading does: the snapshot must hold nothing of a row set aside. A row that
 * throws while others wait on missing content cannot be told from them (Yjs retries those
 * inside its apply): then this throws, and the room is not compacted at all.
 *
 * @param {readonly Uint8Array[]} rows
 * @returns {{ merged: Uint8Array, bad: Array<{ index: number, error: string }> }}
 */
export function mergeLog(rows) {
  /** @type {Map<number, string>} */
  const bad = new Map();
  for (let pass = 0; ; pass++) {
    // Each such row costs a pass over the whole log: past a few, loading sets them aside.
    if (pass > MAX_RESTARTS) throw new Error(`more than ${MAX_RESTARTS} rows of the log left the document unusable: not compacted`);
    const doc = new Y.Doc({ gc: true });
    try {
      if (applyAll(doc, rows, bad)) {
        const merged = Y.encodeStateAsUpdate(doc);
        return { merged, bad: [...bad].sort(([a], [b]) => a - b).map(([index, error]) => ({ index, error })) };
      }
    } finally {
      try {
        doc.destroy();
      } catch {
        // (an unusable doc may throw on the way out too)
      }
    }
  }
}

/** Rows that leave the document unusable, one merged again without each, before giving up. */
const MAX_RESTARTS = 8;

/**
 * Applies every row not yet in `bad`, adding to it those that fail; false when one left the doc
 * unusable (it is in `bad` then, and the rows must be applied again to a fresh doc).
 *
 * @param {Y.Doc} doc
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 */
function applyAll(doc, rows, bad) {
  for (let index = 0; index < rows.length; index++) {
    if (bad.has(index)) continue;
    const data = /** @type {Uint8Array} */ (rows[index]);
    const waiting = doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
    /** @type {unknown} */
    let error = null;
    try {
      Y.decodeUpdate(data);
      Y.applyUpdate(doc, data);
    } catch (err) {
      error = err;
    }
    if (unusable(doc)) {
      bad.set(index, String(error ?? 'left the document unusable'));
      return false;
    }
    if (error === null) continue;
    if (waiting) throw new Error(`row ${index} of the log failed to apply while earlier rows waited on missing content: not compacted`);
    bad.set(index, String(error));
  }
  return true;
}

/**
 * Yjs failed part-way through a transaction and left the doc mid-way (as room.ts' docBroken).
 *
 * @param {Y.Doc} doc
 */
function unusable(doc) {
  const internals = /** @type {{ _transaction: unknown, _transactionCleanups: unknown[] }} */ (/** @type {unknown} */ (doc));
  return internals._transaction !== null || internals._transactionCleanups.length > 0;
}
