/**
 * Whether a layer's copy in this browser (IndexedDB, through y-indexeddb) really holds its edits.
 *
 * y-indexeddb writes each update of the doc in a transaction of its own and never looks at how
 * that ends: a full disk, or the site's quota reached, aborts it without a word, and the page
 * would go on saying its edits are kept in this browser while they are only in the page (a
 * reload loses them). Its writer is replaced here by one that watches each transaction. After a
 * failure the next write carries the whole doc (what the failed one lost included), and the copy
 * counts as keeping the edits again once such a write has gone through.
 *
 * - `opening`: the copy has not opened yet (what is edited meanwhile is written as it opens);
 * - `open`: every edit is in the copy;
 * - `failed`: the copy did not open (or not within `openWaitMs`: it may yet), or a write failed
 *   and none carrying the whole doc has gone through since.
 *
 * It takes y-indexeddb's own writer off the doc and does its trimming as it does, through
 * fields the library does not promise (`_storeUpdate`, `_dbsize`, `_storeTimeout(Id)`): hence
 * y-indexeddb is pinned to 9.0.12 in client/package.json; check them when it moves.
 */
import { createSignal, type Accessor } from 'solid-js';
import * as Y from 'yjs';
import { PREFERRED_TRIM_SIZE, storeState, type IndexeddbPersistence } from 'y-indexeddb';

export type LocalCopy = 'opening' | 'open' | 'failed';

export function watchLocalCopy(local: IndexeddbPersistence, doc: Y.Doc, openWaitMs: number): { state: Accessor<LocalCopy>; destroy(): void } {
  const [state, setState] = createSignal<LocalCopy>('opening');
  let destroyed = false;
  /** Writes issued so far, and the last of them that failed (0: none). */
  let issued = 0;
  let lastFailed = 0;
  /** The next write carries the whole doc: one failed, or edits came before the copy opened. */
  let wholeNext = false;

  const failed = (write: number) => {
    lastFailed = Math.max(lastFailed, write);
    wholeNext = true;
    if (!destroyed) setState('failed');
  };
  const write = (update: Uint8Array | null) => {
    const db = local.db;
    if (!db || destroyed) return;
    const mine = ++issued;
    const whole = update === null || wholeNext;
    wholeNext = false;
    let tx: IDBTransaction;
    try {
      tx = db.transaction(['updates'], 'readwrite');
      tx.objectStore('updates').add(whole ? Y.encodeStateAsUpdate(doc) : update!);
    } catch {
      failed(mine); // (the database closed under it, say)
      return;
    }
    // A whole doc written after the last failure holds everything edited so far.
    tx.oncomplete = () => {
      if (whole && mine > lastFailed && !destroyed) setState('open');
    };
    tx.onabort = () => failed(mine); // (an error aborts the transaction: this covers both)
    // Merged into one update now and then, as y-indexeddb does (it writes the whole doc then).
    if (++local._dbsize >= PREFERRED_TRIM_SIZE) {
      clearTimeout(local._storeTimeoutId);
      local._storeTimeoutId = setTimeout(() => {
        local._storeTimeoutId = null;
        void storeState(local, false).catch(() => {});
      }, local._storeTimeout);
    }
  };

  const onUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === local) return; // (what the copy itself brought)
    if (local.db) write(update);
    else wholeNext = true; // y-indexeddb writes the whole doc as it opens; watched below
  };
  doc.off('update', local._storeUpdate);
  doc.on('update', onUpdate);

  const openWait = setTimeout(() => {
    if (state() === 'opening' && !destroyed) setState('failed');
  }, openWaitMs);
  local._db.then(
    () =>
      local.whenSynced.then(() => {
        clearTimeout(openWait);
        if (destroyed) return;
        // Edits made before it opened, or a write that failed meanwhile: a watched whole write.
        if (wholeNext || lastFailed > 0) write(null);
        else setState('open');
      }),
    () => {
      clearTimeout(openWait);
      if (!destroyed) setState('failed');
    },
  );

  return {
    state,
    destroy() {
      destroyed = true;
      clearTimeout(openWait);
      doc.off('update', onUpdate);
    },
  };
}
