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
 * throws while others wait on missing content may be sound (Yjs retries what waits inside its
 * apply): the rows whose content still waits are suspects, and one without which that row
 * applies cleanly and whole is bad (its waiting content is what failed); else, if that row
 * fails even without any of them, it is bad itself; else this throws, and the room is not
 * compacted at all.
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
    let outcome;
    try {
      outcome = applyAll(doc, rows, bad);
      if (outcome === true) {
        const merged = Y.encodeStateAsUpdate(doc);
        return { merged, bad: [...bad].sort(([a], [b]) => a - b).map(([index, error]) => ({ index, error })) };
      }
    } finally {
      destroy(doc);
    }
    if (outcome !== false) blame(rows, bad, outcome);
  }
}

/** Rows set aside (each costs a pass over the whole log) before giving up. */
const MAX_RESTARTS = 8;
/** Suspects tried (the latest first) for a row that failed while content waited. */
const MAX_SUSPECTS = 4;

/** @param {Y.Doc} doc */
function destroy(doc) {
  try {
    doc.destroy();
  } catch {
    // (an unusable doc may throw on the way out too)
  }
}

/**
 * Row `index` failed while the content of `suspects` (rows whose content was left waiting)
 * waited: adds to `bad` the suspect without which it applies cleanly and whole, or else the row
 * itself if it fails without any of them; throws if neither can be told.
 *
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 * @param {{ index: number, suspects: number[] }} failed
 */
function blame(rows, bad, { index, suspects }) {
  for (const suspect of suspects.slice(-MAX_SUSPECTS).reverse()) {
    if (trial(rows, bad, new Set([suspect]), index) === null) {
      bad.set(suspect, `its content, waiting on content missing from the log, failed when row ${index} applied`);
      return;
    }
  }
  const alone = trial(rows, bad, new Set(suspects), index);
  if (alone !== null && alone !== WAITS) {
    bad.set(index, alone);
    return;
  }
  throw new Error(`row ${index} of the log failed to apply while earlier rows waited on missing content: not compacted`);
}

/** (A trial's row that applied without error but did not integrate: it waits on content.) */
const WAITS = 'waits';

/**
 * Applies the rows before `index` (but those in `bad` or `without`) to a fresh doc, then row
 * `index`: null if it applied cleanly and whole (all its content integrated), WAITS if it
 * applied but some of its content waits, else why it failed.
 *
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 * @param {Set<number>} without
 * @param {number} index
 * @returns {string | null}
 */
function trial(rows, bad, without, index) {
  const doc = new Y.Doc({ gc: true });
  try {
    for (let i = 0; i < index; i++) {
      if (bad.has(i) || without.has(i)) continue;
      try {
        Y.applyUpdate(doc, /** @type {Uint8Array} */ (rows[i]));
      } catch {
        // (judged by the pass itself; here only what comes before matters)
      }
      if (unusable(doc)) return 'the rows before it left the document unusable';
    }
    const data = /** @type {Uint8Array} */ (rows[index]);
    try {
      Y.applyUpdate(doc, data);
    } catch (err) {
      return String(err);
    }
    if (unusable(doc)) return 'left the document unusable';
    return integrated(doc, data) ? null : WAITS;
  } finally {
    destroy(doc);
  }
}

/**
 * Whether every struct of `update` is in `doc` (none of it waits on missing content).
 *
 * @param {Y.Doc} doc
 * @param {Uint8Array} update
 */
function integrated(doc, update) {
  for (const struct of Y.decodeUpdate(update).structs) {
    if (struct.constructor.name === 'Skip') continue;
    if (Y.getState(doc.store, struct.id.client) < struct.id.clock + struct.length) return false;
  }
  return true;
}

/**
 * Applies every row not yet in `bad`, adding to it those that fail: true once all are applied;
 * false when one left the doc unusable (it is in `bad` then, and the rows must be applied again
 * to a fresh doc); or the row that failed while content waited, with the rows whose content was
 * left waiting (see blame).
 *
 * @param {Y.Doc} doc
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 * @returns {boolean | { index: number, suspects: number[] }}
 */
function applyAll(doc, rows, bad) {
  /** @type {number[]} */
  const suspects = [];
  for (let index = 0; index < rows.length; index++) {
    if (bad.has(index)) continue;
    const data = /** @type {Uint8Array} */ (rows[index]);
    const { pendingStructs, pendingDs } = doc.store;
    const waiting = pendingStructs !== null || pendingDs !== null;
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
    if (error === null) {
      // (Yjs replaces what waits when a row adds to it.)
      const store = doc.store;
      if ((store.pendingStructs !== null && store.pendingStructs !== pendingStructs) || (store.pendingDs !== null && store.pendingDs !== pendingDs)) suspects.push(index);
      continue;
    }
    // (Suspects are rows whose content still waits: one that went in since is not to blame.)
    if (waiting) return { index, suspects: suspects.filter((i) => !integrated(doc, /** @type {Uint8Array} */ (rows[i]))) };
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
