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
 * without it, as loading does: the snapshot must hold nothing of a row set aside.
 *
 * A row that throws while other rows' content waits on missing content may be sound: Yjs retries
 * what waits inside its apply. Then a row none of whose content is in (it all waits, and it
 * deletes nothing: deletions go in before the retry, and stay when it throws) is to blame
 * (and set aside) only if both show it: without it, the failing row applies cleanly and whole;
 * and it throws itself, none of it going in, applied after the failing row onto the log without
 * any row whose content waits, and with nothing else waiting. Failing that, the failing row is
 * to blame if it throws so without any of them. Else this throws, and the room is not compacted
 * at all. A sound row never throws, and a row set aside so takes nothing a room loading the whole
 * log holds. (What still waits at the end stays in the snapshot, waiting; a room that loads the
 * whole log drops it when a retry throws: the snapshot holds more than the room, never less.)
 *
 * @param {readonly Uint8Array[]} rows
 * @returns {{ merged: Uint8Array, bad: Array<{ index: number, error: string }> }}
 */
export function mergeLog(rows) {
  /** @type {Map<number, string>} */
  const bad = new Map();
  let restarts = 0;
  let blamed = 0;
  for (;;) {
    const doc = new Y.Doc({ gc: true });
    try {
      const outcome = applyAll(doc, rows, bad);
      if (outcome === true) {
        const merged = Y.encodeStateAsUpdate(doc);
        return { merged, bad: [...bad].sort(([a], [b]) => a - b).map(([index, error]) => ({ index, error })) };
      }
      // Each costs passes over the log: past a few, loading sets the rows aside.
      if (outcome === false) {
        if (++restarts > MAX_RESTARTS) throw new Error(`more than ${MAX_RESTARTS} rows of the log left the document unusable: not compacted`);
      } else {
        if (++blamed > MAX_BLAMED) throw new Error(`more than ${MAX_BLAMED} rows of the log failed while content waited: not compacted`);
        blame(rows, bad, outcome, doc);
      }
    } finally {
      destroy(doc);
    }
  }
}

/** Rows that leave the document unusable, one merged again without each, before giving up. */
const MAX_RESTARTS = 8;
/** Rows blamed for a failure while content waited, before giving up. */
const MAX_BLAMED = 8;
/** Rows whose content waits tried (the latest first) for one such failure. */
const MAX_SUSPECTS = 16;

/** @param {Y.Doc} doc */
function destroy(doc) {
  try {
    doc.destroy();
  } catch {
    // (an unusable doc may throw on the way out too)
  }
}

/**
 * Row `index` failed while content waited; `suspects` are the rows whose content still waits.
 * Adds to `bad` the one to blame (see mergeLog), or throws if none can be told. A row is blamed
 * only if none of its content is in the doc where it threw, with nothing else waiting there: a
 * sound row never throws, and what is set aside takes nothing a room loading the log has.
 *
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 * @param {{ index: number, suspects: number[] }} failed
 * @param {Y.Doc} doc the doc the pass failed in
 */
function blame(rows, bad, { index, suspects }, doc) {
  const allSuspects = new Set(suspects);
  // (One part of which went in holds sound content, or leads to it: never blamed.)
  const absent = suspects.filter((i) => !someIn(doc, /** @type {Uint8Array} */ (rows[i])));
  for (const suspect of absent.slice(-MAX_SUSPECTS).reverse()) {
    if (trial(rows, bad, new Set([suspect]), [index]).outcome !== WHOLE) continue;
    const itself = trial(rows, bad, allSuspects, [index, suspect]);
    if (itself.outcome !== THREW) continue;
    bad.set(suspect, `its content, waiting, failed when row ${index} was applied (${itself.error})`);
    return;
  }
  // (Not if some of it went in where the pass failed: a room keeps that.)
  const alone = someIn(doc, /** @type {Uint8Array} */ (rows[index])) ? null : trial(rows, bad, allSuspects, [index]);
  if (alone?.outcome === THREW) {
    bad.set(index, alone.error);
    return;
  }
  throw new Error(`row ${index} of the log failed to apply while earlier rows waited on missing content: not compacted`);
}

const WHOLE = 'whole';
const WAITS = 'waits';
/** The last row threw, none of its content went in, and nothing else waited. */
const THREW = 'threw';
/** Anything else: a row before the last failed, the doc was left unusable, something waited
 * before the last row, or some of its content went in before it threw. */
const UNCLEAR = 'unclear';

/**
 * Applies the rows before `then[0]` (but those in `bad` or `without`) to a fresh doc, then the
 * rows `then`, in that order: how the last went — WHOLE (applied, all its content in), WAITS
 * (applied, some of its content waits), THREW (with why) or UNCLEAR.
 *
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 * @param {Set<number>} without
 * @param {number[]} then
 * @returns {{ outcome: string, error: string }}
 */
function trial(rows, bad, without, then) {
  const doc = new Y.Doc({ gc: true });
  const unclear = { outcome: UNCLEAR, error: '' };
  try {
    for (let i = 0; i < /** @type {number} */ (then[0]); i++) {
      if (bad.has(i) || without.has(i)) continue;
      try {
        Y.applyUpdate(doc, /** @type {Uint8Array} */ (rows[i]));
      } catch {
        // (judged by the pass itself: here only what comes before matters)
      }
      if (unusable(doc)) return unclear;
    }
    for (const [n, i] of then.entries()) {
      const last = n === then.length - 1;
      const data = /** @type {Uint8Array} */ (rows[i]);
      const waiting = doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
      try {
        Y.applyUpdate(doc, data);
      } catch (err) {
        return last && !waiting && !unusable(doc) && !someIn(doc, data) ? { outcome: THREW, error: String(err) } : unclear;
      }
      if (unusable(doc)) return unclear;
      if (last) return { outcome: integrated(doc, data) ? WHOLE : WAITS, error: '' };
    }
    return unclear;
  } finally {
    destroy(doc);
  }
}

/**
 * Whether any struct of `update` is in `doc`, or it deletes anything: its deletions go in before
 * Yjs retries what waits (and survive a retry that throws), so a row that deletes may have
 * changed what a room holds even when none of its structs went in.
 *
 * @param {Y.Doc} doc
 * @param {Uint8Array} update
 */
function someIn(doc, update) {
  const { structs, ds } = Y.decodeUpdate(update);
  if (ds.clients.size > 0) return true;
  for (const struct of structs) {
    if (struct instanceof Y.Skip) continue;
    if (Y.getState(doc.store, struct.id.client) > struct.id.clock) return true;
  }
  return false;
}

/**
 * Whether every struct of `update` is in `doc` (none of it waits on missing content).
 *
 * @param {Y.Doc} doc
 * @param {Uint8Array} update
 */
function integrated(doc, update) {
  for (const struct of Y.decodeUpdate(update).structs) {
    if (struct instanceof Y.Skip) continue;
    if (Y.getState(doc.store, struct.id.client) < struct.id.clock + struct.length) return false;
  }
  return true;
}

/**
 * Applies every row not yet in `bad`, adding to it those that fail: true once all are applied;
 * false when one left the doc unusable (it is in `bad` then, and the rows must be applied again
 * to a fresh doc); or the row that failed while content waited, with the rows whose content
 * still waits then (see blame).
 *
 * @param {Y.Doc} doc
 * @param {readonly Uint8Array[]} rows
 * @param {Map<number, string>} bad
 * @returns {boolean | { index: number, suspects: number[] }}
 */
function applyAll(doc, rows, bad) {
  /** Rows some of whose content waited once applied. */
  const waited = [];
  for (let index = 0; index < rows.length; index++) {
    if (bad.has(index)) continue;
    const data = /** @type {Uint8Array} */ (rows[index]);
    const waiting = doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
    /** @type {unknown} */
    let error = null;
    let decoded = false;
    try {
      Y.decodeUpdate(data);
      decoded = true;
      Y.applyUpdate(doc, data);
    } catch (err) {
      error = err;
    }
    if (!decoded) {
      // Nothing of it was applied, so nothing waiting is to blame: set aside, as loading does.
      bad.set(index, String(error));
      continue;
    }
    if (unusable(doc)) {
      bad.set(index, String(error ?? 'left the document unusable'));
      return false;
    }
    if (error === null) {
      if (doc.store.pendingStructs !== null && !integrated(doc, data)) waited.push(index);
      continue;
    }
    if (waiting) {
      const suspects = waited.filter((i) => !integrated(doc, /** @type {Uint8Array} */ (rows[i])));
      return { index, suspects };
    }
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
