/**
 * Which edits made in this page the server has not stored yet. The page opens its sockets with
 * `?acks=1`, and the server then says, once nothing of a socket waits to be stored, how many of
 * the document frames (sync step 2s and updates) it sent are stored (MessageKind.stored). Each
 * socket counts what it sends; an edit made while no socket is open goes out in the next
 * socket's sync step 2, which carries everything the page holds that the server lacks.
 *
 * So an edit is unsaved from the moment it is made until the server has stored every frame of
 * a socket that sent it (or sent the step 2 after it). The server sends a count of 0 after its
 * greeting, before it answers the socket's step 1 (so before the page's 'sync'). A server that
 * does not (an older one, mid-upgrade) never says what it stored: on its sockets an edit counts
 * as saved once sent on a synced socket and the server has announced no saving delay for
 * WITHOUT_ACKS_GRACE_MS since (it announces one once a store has taken 2 s, by default).
 *
 * Edits unsaved for a while (made offline, or the server slow to store) are marked in the
 * layer's IndexedDB copy, so a page reloaded offline still knows; the first time, the browser
 * is asked to keep the site's storage (`navigator.storage.persist()`).
 */
import { createEffect, createRoot, createSignal, type Accessor } from 'solid-js';
import * as decoding from 'lib0/decoding';
import { messageYjsSyncStep2, messageYjsUpdate } from 'y-protocols/sync';
import type * as Y from 'yjs';
import { clearDocument, fetchUpdates, type IndexeddbPersistence } from 'y-indexeddb';
import type { WebsocketProvider } from 'y-websocket';
import { MessageKind } from '@spanwise/shared/protocol';
import { parseRoom, type Room } from '@spanwise/shared/rooms';
import { within } from '../lib/within.ts';

/**
 * The layer's IndexedDB entries that say edits made in a page may not be saved yet: one per
 * page, `unsaved:<page>` (`unsaved` alone, as pages before those wrote it, counts too).
 */
const UNSAVED_KEY = 'unsaved';
/** The Web Lock a page holds while it lives, named by its mark's key after this. */
const LIVE_LOCK = 'spanwise:live:';
/** Every mark's key, whichever page wrote it. */
const markKeys = () => IDBKeyRange.bound(UNSAVED_KEY, `${UNSAVED_KEY}:\uffff`);
/** How long an edit sent on an open socket may wait for the server's word before it is marked. */
const MARK_AFTER_MS = 2_000;
/** How long a layer closing waits for its mark's write before it lets go of its page's lock. */
const LEAVE_MARK_WAIT_MS = 2_000;
/** Mark writes are announced to the other pages at most this often. */
const MARK_ANNOUNCE_MS = 1_000;
/** Without acks: how long after the last edit (or sync) a server announcing no delay is trusted. */
const WITHOUT_ACKS_GRACE_MS = 5_000;

/** A browser WebSocket that counts the document frames it sends (see the module comment). */
export class CountingWebSocket extends WebSocket {
  /** Sync step 2s and updates sent (as the server counts what it stored). */
  documentFrames = 0;
  /** Its sync step 2 has gone: what the page held then went out on this socket. */
  sentStep2 = false;
  /** Its server says what it stored (it sent the count of 0 after its greeting). */
  sendsAcks = false;

  override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    super.send(data);
    if (!(data instanceof Uint8Array) || data[0] !== MessageKind.sync) return;
    if (data[1] === messageYjsSyncStep2) {
      this.documentFrames++;
      this.sentStep2 = true;
    } else if (data[1] === messageYjsUpdate) {
      this.documentFrames++;
    }
  }
}

/**
 * Where the pages of this browser say that a layer's mark was written or taken away, and that
 * a layer's copy is being deleted (`discarding`, by whom) or has been (`discarded`).
 */
const MARKS_CHANNEL = 'spanwise:unsaved-marks';
type MarksMessage = { kind: 'changed' } | { kind: 'discarding' | 'discarded'; names: readonly string[]; by: string };
let marksChannel: BroadcastChannel | null | undefined;

function tell(message: MarksMessage): void {
  if (marksChannel === undefined) marksChannel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(MARKS_CHANNEL) : null;
  marksChannel?.postMessage(message);
}

/** Tells the pages of this browser (this one too) that a layer's mark was written or taken away. */
function tellMarksChanged(): void {
  tell({ kind: 'changed' });
}

/** Listens on the marks channel; returns what stops it. (A channel never hears itself: this one is its own.) */
function listen(listener: (message: MarksMessage) => void): () => void {
  if (typeof BroadcastChannel !== 'function') return () => {};
  const channel = new BroadcastChannel(MARKS_CHANNEL);
  channel.onmessage = (event: MessageEvent<MarksMessage>) => listener(event.data);
  return () => channel.close();
}

/**
 * Calls `listener` when a page of this browser (this one included) wrote or took away a
 * layer's mark, or deleted a layer's copy; returns what stops it.
 */
export function onMarksChanged(listener: () => void): () => void {
  return listen((message) => {
    if (message.kind !== 'discarding') listener();
  });
}

/** How long a layer whose copy another page deletes waits for it to be done before it opens again. */
const DISCARD_WAIT_MS = 10_000;

/** What follows deletions of one layer copy by other pages (see watchCopyDiscards). */
export interface CopyDiscardWatch {
  /** The copy is being deleted (its database says so): as when a page says it is. */
  begin(): void;
  /** Stops listening; a wait under way goes on until it is done (then it stops). */
  stop(): void;
}

/**
 * Calls `listener` when a page of this browser other than `self` begins to delete the copy
 * `name` (it says so on the marks channel, or the copy's database is told: `begin`), with a
 * promise that settles once it is done (or DISCARD_WAIT_MS have passed): a layer open on that
 * copy must let its doc go, or what it holds would come back (it hands its updates to the layer
 * opened afresh over BroadcastChannel).
 */
export function watchCopyDiscards(name: string, self: string, listener: (done: Promise<void>) => void): CopyDiscardWatch {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finish: (() => void) | null = null;
  let stopped = false;
  const begin = () => {
    if (finish || stopped) return; // (already waiting, or no longer open)
    const done = new Promise<void>((resolve) => {
      finish = () => {
        clearTimeout(timer);
        finish = null;
        stop();
        resolve();
      };
    });
    timer = setTimeout(() => finish?.(), DISCARD_WAIT_MS);
    listener(done);
  };
  const stopListening = listen((message) => {
    if (message.kind === 'changed' || message.by === self || !message.names.includes(name)) return;
    if (message.kind === 'discarded') finish?.();
    else begin();
  });
  const stop = () => {
    stopped = true;
    if (finish === null) stopListening();
  };
  return { begin, stop };
}

/** What a user's layer copies in this browser are named with, apart from everyone else's. */
export function storagePrefixOf(userId: number): string {
  return `u${userId}`;
}

/** The IndexedDB database that keeps a layer's copy for one signed-in user (`storagePrefix`). */
export function layerCopyName(storagePrefix: string, room: string): string {
  return `spanwise:${storagePrefix}:${room}`;
}

/** Whether the copy named `name` holds a mark; false if it cannot be read, or is not there. */
async function holdsMark(name: string): Promise<boolean> {
  return (await markState(name)) === true;
}

/** Whether the copy named `name` holds a mark: false too if it is not there; null if it cannot be read. */
function markState(name: string): Promise<boolean | null> {
  return new Promise((resolve) => {
    let open: IDBOpenDBRequest;
    try {
      open = indexedDB.open(name);
    } catch {
      return resolve(null);
    }
    // Not there (any more): opening it would make an empty one.
    open.onupgradeneeded = () => open.transaction?.abort();
    open.onerror = () => resolve(open.error?.name === 'AbortError' ? false : null);
    open.onblocked = () => resolve(null);
    open.onsuccess = () => {
      const db = open.result;
      try {
        const count = db.transaction('custom').objectStore('custom').count(markKeys());
        count.onsuccess = () => resolve(count.result > 0);
        count.onerror = () => resolve(null);
      } catch {
        resolve(null);
      } finally {
        db.close(); // (once its transaction is done)
      }
    };
  });
}

/** The Web Lock each page with a layer's copy open holds (shared) on it, named by the copy after this. */
const COPY_LOCK = 'spanwise:copy:';
/**
 * The Web Lock a page holds, named by the layer's copy after this (and its mark), while edits of
 * that layer wait for the server only in the page (its copy did not open): a sign-out from any
 * tab of the user then says they would be lost (see unsavedEditsAt).
 */
const PAGE_ONLY_LOCK = 'spanwise:page-only:';

/**
 * Holds the Web Lock `name` (in `mode`) until the returned function is called, from whenever it
 * is granted; a release called first gives it back at once. Without Web Locks, nothing.
 */
function holdLock(name: string, mode: LockMode = 'exclusive'): () => void {
  if (typeof navigator === 'undefined' || !navigator.locks) return () => {};
  const held: { over: boolean; release?: () => void } = { over: false };
  void navigator.locks.request(name, { mode }, () => (held.over ? undefined : new Promise<void>((r) => (held.release = r)))).catch(() => {});
  return () => {
    held.over = true;
    held.release?.();
  };
}

/**
 * Holds the copy `name`'s lock (shared) until the returned function is called: while a page has
 * a copy open, a sweep of the copies leaves it alone (see forgetCopies).
 */
export function holdCopy(name: string): () => void {
  return holdLock(`${COPY_LOCK}${name}`, 'shared');
}

/** After a change of who is signed in, how long to wait before each try at the copies some page still had open. */
const FORGET_TRIES_MS = [0, 250, 500, 1_000, 2_000, 4_000, 8_000];

/**
 * Deletes the copies this browser keeps of anyone's layers but those of the user of
 * `storagePrefix` (everyone's, with null): what a sign-out in a tab closed at once, or a session
 * that ended while no page was open, left behind (see forgetCopies).
 */
export function forgetCopiesBut(storagePrefix: string | null): Promise<void> {
  return forgetCopies((prefix) => prefix !== storagePrefix);
}

/**
 * Deletes the layer copies of the users whose storage prefix `whose` picks: each once no page
 * has it open or is opening it (tried again for some seconds, as the pages let their layers go
 * on hearing of a sign-out), and never one that holds a mark (edits not saved yet: the person
 * was asked, and chose to keep them) or whose marks cannot be read. Without Web Locks, which say
 * whether a copy is open, or a list of the browser's databases, none is. Never rejects.
 */
async function forgetCopies(whose: (prefix: string) => boolean): Promise<void> {
  if (typeof indexedDB === 'undefined' || typeof indexedDB.databases !== 'function' || typeof navigator === 'undefined' || !navigator.locks) return;
  let left: string[];
  try {
    left = (await indexedDB.databases()).flatMap((d) => {
      const prefix = /^spanwise:([^:]+):/.exec(d.name ?? '')?.[1];
      return prefix !== undefined && whose(prefix) ? [d.name!] : [];
    });
  } catch {
    return;
  }
  for (const wait of FORGET_TRIES_MS) {
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, wait));
    const outcomes = await Promise.all(
      left.map((name) => {
        const lock = `${COPY_LOCK}${name}`;
        return navigator.locks
          .request(lock, { ifAvailable: true }, async (held) => {
            if (!held) return 'open';
            // A page opening it waits its turn: it is about to open it (and holds no mark yet).
            const { pending = [] } = await navigator.locks.query();
            if (pending.some((request) => request.name === lock)) return 'open';
            if ((await markState(name)) !== false) return 'kept';
            await discardCopies([name], 'sign-out');
            return 'gone';
          })
          .catch(() => 'kept');
      }),
    );
    left = left.filter((_, i) => outcomes[i] === 'open');
  }
}

/** A layer's copy in this browser that holds edits not saved yet (see unsavedCopies). */
export interface UnsavedCopy {
  /** The IndexedDB database. */
  name: string;
  room: Exclude<Room, { kind: 'entities' }>;
}

/**
 * The copies of layers of `documents` (of every document, without it) that hold edits not yet
 * saved, for the user of `storagePrefix`: made offline and left, they are sent only when the
 * layer is opened again while the server can be reached (and the user may still write it), so
 * the document list says where they are. Empty where the browser cannot list its databases;
 * never rejects.
 */
export async function unsavedCopies(storagePrefix: string, documents?: ReadonlySet<number>): Promise<UnsavedCopy[]> {
  if (typeof indexedDB === 'undefined' || typeof indexedDB.databases !== 'function') return [];
  const prefix = layerCopyName(storagePrefix, '');
  let names: string[];
  try {
    names = (await indexedDB.databases()).flatMap((d) => (d.name?.startsWith(prefix) ? [d.name] : []));
  } catch {
    return [];
  }
  const found = await Promise.all(
    names.map(async (name): Promise<UnsavedCopy[]> => {
      const room = parseRoom(name.slice(prefix.length));
      if (!room || room.kind === 'entities' || (documents && !documents.has(room.documentId))) return [];
      return (await holdsMark(name)) ? [{ name, room }] : [];
    }),
  );
  return found.flat();
}

/** The layers open in this page that follow their edits (see trackUnsaved). */
const tracking = new Set<{ unsaved: Accessor<boolean>; kept: Accessor<boolean> }>();

/**
 * Edits of the user of `storagePrefix` that wait for the server, as signing out would leave
 * them: `lost`, some are in an open layer whose copy in this browser could not be opened (they
 * are only in the page); `kept`, some are in an open layer, or marked in a layer's copy (left
 * by another page, or another tab's) whose document `reachable` does not deny (the server
 * answers it gone or forbidden: they can never be sent); `none`.
 */
export async function unsavedEditsAt(storagePrefix: string, reachable: (documentId: number) => Promise<boolean>): Promise<'none' | 'kept' | 'lost'> {
  let kept = false;
  for (const layer of tracking) {
    if (!layer.unsaved()) continue;
    if (!layer.kept()) return 'lost';
    kept = true;
  }
  if (await heldElsewhere(`${PAGE_ONLY_LOCK}${layerCopyName(storagePrefix, '')}`)) return 'lost';
  if (kept) return 'kept';
  const documents = new Set((await unsavedCopies(storagePrefix)).map((c) => c.room.documentId));
  const answers = await Promise.all([...documents].map(reachable));
  return answers.includes(true) ? 'kept' : 'none';
}

/** Whether a page holds a Web Lock whose name starts with `prefix`; false without Web Locks. */
async function heldElsewhere(prefix: string): Promise<boolean> {
  if (typeof navigator === 'undefined' || !navigator.locks) return false;
  try {
    const { held = [] } = await navigator.locks.query();
    return held.some((lock) => lock.name?.startsWith(prefix));
  } catch {
    return false;
  }
}

/** How long deleting a copy may take before the person is told it did not answer. */
const DELETE_WAIT_MS = 10_000;

/**
 * Deletes these layers' copies (by name) from this browser, with what they hold. Pages with one
 * of them open (`by`: the page that deletes, if it has one open itself) let it go before it is
 * gone (their copy's database is told, and they are) and open it again once this is done (see
 * watchCopyDiscards). Rejects if the browser's storage fails, or does not answer in time.
 */
export async function discardCopies(names: readonly string[], by = 'document-list'): Promise<void> {
  tell({ kind: 'discarding', names, by });
  try {
    await within(Promise.all(names.map((name) => clearDocument(name))), DELETE_WAIT_MS, () => {
      throw new Error('the browser’s storage has not finished deleting them (it may yet)');
    });
  } finally {
    tell({ kind: 'discarded', names, by });
  }
}

/**
 * Asks the browser to keep this site's storage (it holds edits not yet saved): once per page
 * load, for all its layers (module state on purpose: Firefox asks its user each time).
 */
let persistAsked = false;
function askToPersist(): void {
  if (persistAsked) return;
  persistAsked = true;
  const storage = navigator.storage;
  if (!storage?.persist) return;
  storage
    .persisted()
    .then((already) => (already ? undefined : storage.persist()))
    .catch(() => {});
}

export interface UnsavedEdits {
  unsaved: Accessor<boolean>;
  /** Settles once the mark an earlier page may have left has been read (or could not be). */
  read: Promise<void>;
  destroy(): void;
}

/**
 * Follows `doc`'s own edits (not what came through `provider`, nor what `local` loaded) until
 * the server says it stored them. Sets `provider.messageHandlers[MessageKind.stored]`; the
 * provider must be made with `WebSocketPolyfill: CountingWebSocket` and `params.acks = '1'`,
 * and should connect once `local` has loaded and `read` settled: a step 2 sent before does not
 * carry what the copy holds (it then goes as updates, which count too). `savingDelayed`: the
 * server announces that it cannot store now (what the fallback for servers that do not say
 * what they stored goes by).
 */
export function trackUnsaved(
  doc: Y.Doc,
  provider: WebsocketProvider,
  local: IndexeddbPersistence,
  savingDelayed: Accessor<boolean>,
  /** Whether the layer's copy in this browser opened (else edits are only in the page). */
  kept: Accessor<boolean> = () => true,
  /** Told just before the socket is closed to sync afresh (see takeOver): it comes back at once. */
  onResync: () => void = () => {},
): UnsavedEdits {
  const [unsaved, setUnsaved] = createSignal(false);
  /**
   * The last mark written was not (its transaction aborted: the browser's storage full, say):
   * the copy holds the edits, but nothing says they wait, and a sweep of the copies (another
   * user signing in) would take them. Counted as not kept until a mark is written; tried again
   * at the next edit, and on leaving.
   */
  const [markLost, setMarkLost] = createSignal(false);
  const tracked = { unsaved, kept: () => kept() && !markLost() };
  tracking.add(tracked);
  /** This page's mark (each page has its own: see UNSAVED_KEY). */
  const ownMark = `${UNSAVED_KEY}:${Math.random().toString(36).slice(2)}`;
  let marked = false;
  // Held under the mark's name while the page lives, so that another page tells a mark whose
  // page is gone from one whose page may still send it on (see `found`).
  const releaseLive = holdLock(`${LIVE_LOCK}${ownMark}`);
  // Held while this page's edits wait only here: other tabs' sign-outs ask about them too.
  let releasePageOnly: (() => void) | undefined;
  const stopWatchingPageOnly = createRoot((dispose) => {
    createEffect(() => {
      const pageOnly = unsaved() && !tracked.kept();
      if (pageOnly && !releasePageOnly) releasePageOnly = holdLock(`${PAGE_ONLY_LOCK}${local.name}:${ownMark}`);
      else if (!pageOnly && releasePageOnly) {
        releasePageOnly();
        releasePageOnly = undefined;
      }
    });
    return dispose;
  });
  /**
   * The marks this page found when it opened, left by pages gone since: its step 2 sends what
   * the copy holds, so its own full ack may take them away, with its own. Not the mark of a page
   * still open (it holds its lock): that page's edits may reach this one over BroadcastChannel,
   * which this page does not send on, after its step 2; it takes that mark over once that page
   * goes (see takeOver).
   */
  let found: string[] = [];
  /** The server has said it stored all this page sent, and nothing was edited since. */
  let acked = false;
  /**
   * The layer has set up a socket at least once (a connection that backs off after a refusal
   * counts: what the copy brought before it went out with its first sync).
   */
  let connectedOnce = provider.shouldConnect;
  const onStatus = () => {
    connectedOnce = true;
  };
  provider.on('status', onStatus);
  let markTimer: ReturnType<typeof setTimeout> | undefined;
  /** Mark writes are announced at most once a second (each makes open lists read every copy). */
  let announceTimer: ReturnType<typeof setTimeout> | undefined;
  let announceAgain = false;
  const announceMark = (): void => {
    if (announceTimer !== undefined) {
      announceAgain = true;
      return;
    }
    tellMarksChanged();
    announceTimer = setTimeout(() => {
      announceTimer = undefined;
      if (!announceAgain) return;
      announceAgain = false;
      announceMark();
    }, MARK_ANNOUNCE_MS);
  };
  const socket = () => provider.ws as CountingWebSocket | null;
  /** A socket closed to sync afresh (see takeOver): what it says it stored is no longer all. */
  let staleSocket: CountingWebSocket | null = null;

  /**
   * Changes the copy's marks (its `custom` store) in a transaction of its own, resolving once it
   * is committed: y-indexeddb's `set` resolves at its request's success, and a transaction that
   * aborts later, at commit (the browser's storage full), would go unnoticed. `work` returns
   * whether its requests are all made, so that the transaction is committed at once (a page
   * going away may not wait for it to commit on its own).
   */
  const changeMarks = (work: (store: IDBObjectStore) => boolean): Promise<void> =>
    local._db.then(
      (db) =>
        new Promise<void>((resolve, reject) => {
          const tx = db.transaction('custom', 'readwrite');
          if (work(tx.objectStore('custom'))) tx.commit?.();
          tx.oncomplete = () => resolve();
          tx.onabort = () => reject(tx.error ?? new Error('the marks were not changed'));
        }),
    );
  /** Writes this page's mark. */
  const writeMark = (): Promise<void> =>
    changeMarks((store) => {
      store.put(1, ownMark);
      return true;
    });
  /** The last mark's write, settled (a page's lock is let go of after it: see destroy). */
  let markWritten: Promise<unknown> = Promise.resolve();
  const mark = () => {
    clearTimeout(markTimer);
    markTimer = undefined;
    // (Written again each time, should a tab have taken it away meanwhile.)
    marked = true;
    markWritten = writeMark().then(
      () => {
        setMarkLost(false);
        announceMark();
      },
      () => {
        if (marked) setMarkLost(true);
      },
    );
    askToPersist();
  };

  /** Synced with a server that does not say what it stored. */
  const syncedWithoutAcks = () => provider.synced && socket()?.sendsAcks === false;
  /** Without acks, what was sent is taken as saved from then on, unless a delay is announced. */
  let graceUntil = 0;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const startGrace = () => {
    graceUntil = performance.now() + WITHOUT_ACKS_GRACE_MS;
    clearTimeout(graceTimer);
    graceTimer = setTimeout(() => settleWithoutAcks(), WITHOUT_ACKS_GRACE_MS);
  };
  const settle = () => {
    clearTimeout(markTimer);
    markTimer = undefined;
    acked = true;
    // The marks earlier pages left stand for what the copy holds: kept, and the page unsaved,
    // until the copy has loaded (what it brings then goes out as edits, which the server's word
    // settles in turn; or, bringing nothing new, the load itself: see onCopyLoaded).
    const copyWaits = found.length > 0 && !local.synced;
    if (unsaved() && !copyWaits) setUnsaved(false);
    const keys = [...(marked ? [ownMark] : []), ...(copyWaits ? [] : found)];
    marked = false;
    setMarkLost(false); // (nothing of this page's waits now)
    if (!copyWaits) found = [];
    if (keys.length > 0) Promise.all(keys.map((key) => local.del(key))).then(tellMarksChanged, () => {});
  };
  const onCopyLoaded = () => {
    if (acked && found.length > 0) settle();
  };
  local.on('synced', onCopyLoaded);

  const onDocUpdate = (_update: Uint8Array, origin: unknown) => {
    if (origin === provider) return;
    // What the browser's copy brings before the layer connects goes out in its first sync, and
    // is saved with it. Once the layer connects without waiting for it any longer (the copy
    // slow to read), it comes after that sync, which the server may already have acknowledged:
    // the provider sends it on as an edit, and it is unsaved until the server says so.
    if (origin === local && !connectedOnce) return;
    acked = false;
    setUnsaved(true);
    // Sent now (on an open socket) to a server that will not say whether it stored it.
    if (syncedWithoutAcks() && socket()?.readyState === WebSocket.OPEN) startGrace();
    // Made with no socket open, it waits for the next one's step 2: marked at once (and so
    // after a mark that was lost).
    if (!provider.wsconnected || markLost()) mark();
    else if (markTimer === undefined) {
      markTimer = setTimeout(() => {
        markTimer = undefined;
        if (unsaved()) mark();
      }, MARK_AFTER_MS);
    }
  };
  doc.on('update', onDocUpdate);
  // Left before an edit's mark was due (the page reloaded or closed, or the layer closed, within
  // MARK_AFTER_MS of an edit the server has not said it stored: its socket may be dead without
  // knowing it yet): marked now, or the page opened next could not know the edit waits.
  // (y-indexeddb queues the write ahead of its own closing; a leave called off keeps a mark
  // that the server's word takes away as usual.)
  const markBeforeLeaving = () => {
    if ((markTimer !== undefined || markLost()) && unsaved()) mark();
  };
  window.addEventListener('beforeunload', markBeforeLeaving);
  window.addEventListener('pagehide', markBeforeLeaving);
  // Hidden, a page may be frozen or ended without either (a phone's browser, a tab crash later):
  // its edit is marked then too, and a sweep of the copies (forgetCopies) keeps what it holds.
  const markWhenHidden = () => {
    if (document.visibilityState === 'hidden') markBeforeLeaving();
  };
  document.addEventListener('visibilitychange', markWhenHidden);

  provider.messageHandlers[MessageKind.stored] = (_encoder, decoder, _provider, fromSocket) => {
    if (!fromSocket) return;
    const count = decoding.readVarUint(decoder);
    const ws = socket();
    if (!ws || ws === staleSocket) return;
    ws.sendsAcks = true;
    // Only a socket that sent its step 2 has sent everything: what was made before it opened
    // too (a socket's end drops it from the provider, so an edit made with none open is in the
    // next one's step 2).
    if (ws.sentStep2 && count === ws.documentFrames) settle();
  };
  // Without acks: the grace after the sync (its step 2 sent) or the last edit, once no saving
  // delay is announced, settles it.
  function settleWithoutAcks(): void {
    if (syncedWithoutAcks() && !savingDelayed() && performance.now() >= graceUntil) settle();
  }
  const onSync = (synced: boolean) => {
    if (synced && syncedWithoutAcks()) startGrace();
  };
  provider.on('sync', onSync);
  provider.awareness.on('change', settleWithoutAcks);

  // Edits an earlier page left unsaved (made offline, and the page was left meanwhile): this
  // page's step 2 sends what the copy holds, and the server's word on it takes the mark away.
  const readMarks = (db: IDBDatabase) =>
    new Promise<string[]>((resolve) => {
      const keys = db.transaction('custom').objectStore('custom').getAllKeys(markKeys());
      keys.onsuccess = () => resolve(keys.result.filter((key): key is string => typeof key === 'string'));
      keys.onerror = () => resolve([]);
    });
  /** The marks whose pages are open (without Web Locks, none is known to be). */
  const liveMarks = async (): Promise<Set<string>> => {
    if (typeof navigator === 'undefined' || !navigator.locks) return new Set();
    const { held = [] } = await navigator.locks.query().catch(() => ({ held: [] }));
    return new Set(held.flatMap((lock) => (lock.name?.startsWith(LIVE_LOCK) ? [lock.name.slice(LIVE_LOCK.length)] : [])));
  };
  const read = local._db.then(async (db) => {
    const [keys, live] = await Promise.all([readMarks(db), liveMarks()]);
    return keys.filter((key) => !live.has(key));
  }).then(
    (left) => {
      found = left.filter((key) => key !== ownMark);
      if (found.length === 0) return;
      // Read after the server's word on all this page sent, the copy loaded: what they stand
      // for went out (in the first sync, or as edits since), and is stored.
      if (acked && local.synced) return settle();
      setUnsaved(true);
      // Read only after a sync with a server that will not say (the layer connected without
      // waiting for it): what the copy holds has gone out already.
      if (syncedWithoutAcks()) startGrace();
    },
    () => {},
  );

  // Another page's edits reach this one over BroadcastChannel, and that page sends them; if it
  // goes with its mark left (its socket refused or down meanwhile: 1013, 4429, offline), this
  // page sends them. It waits for that page's lock, then loads what the copy holds that its doc
  // lacks (that page's edits, should they not have come over the channel), makes the mark its
  // own (one transaction: the next page waiting finds it gone), and syncs afresh if its socket
  // has sent its step 2 already (a fresh step 2 carries what the server lacks, what came over
  // the channel too), so the server's word takes the mark away. Without Web Locks, marks wait
  // for the next page to open the layer.
  /** Other pages' marks whose lock this page waits for. */
  const awaited = new Set<string>();
  const stopAwaiting = typeof AbortController === 'function' ? new AbortController() : null;
  let ended = false;
  /** Replaces another page's mark with this page's, if it is still there; resolves whether it was. */
  const takeMark = async (key: string): Promise<boolean> => {
    let there = false;
    await changeMarks((store) => {
      const look = store.getKey(key);
      look.onsuccess = () => {
        if (look.result === undefined) return;
        there = true;
        store.put(1, ownMark);
        store.delete(key);
      };
      return false; // (more requests follow the look)
    });
    return there;
  };
  const takeOver = async (key: string): Promise<void> => {
    awaited.delete(key);
    if (ended) return;
    try {
      await local._db;
      await fetchUpdates(local);
      if (ended || !(await takeMark(key))) return;
    } catch {
      return; // (the copy cannot be read: the mark stays for the next page)
    }
    marked = true;
    acked = false;
    setUnsaved(true);
    setMarkLost(false);
    announceMark();
    const ws = socket();
    if (provider.wsconnected && ws?.sentStep2) {
      // Its word on what it sent before no longer covers all this page stands for.
      staleSocket = ws;
      onResync();
      ws.close();
    }
  };
  const awaitOthers = (): void => {
    if (!stopAwaiting || typeof navigator === 'undefined' || !navigator.locks) return;
    local._db.then(readMarks).then(
      (keys) => {
        for (const key of keys) {
          if (key === ownMark || found.includes(key) || awaited.has(key) || ended) continue;
          awaited.add(key);
          navigator.locks
            .request(`${LIVE_LOCK}${key}`, { signal: stopAwaiting.signal }, () => takeOver(key))
            .catch(() => awaited.delete(key));
        }
      },
      () => {},
    );
  };
  // (After the marks found on opening are known: those are this page's already.)
  let stopListening = () => {};
  void read.then(() => {
    if (ended) return;
    awaitOthers();
    stopListening = listen((message) => {
      if (message.kind === 'changed') awaitOthers();
    });
  });

  return {
    unsaved,
    read,
    destroy() {
      tracking.delete(tracked);
      ended = true;
      stopWatchingPageOnly();
      releasePageOnly?.();
      stopAwaiting?.abort();
      stopListening();
      markBeforeLeaving();
      // Once its mark is written (2 s at most): a page waiting for it then finds the mark (see takeOver).
      void within(markWritten, LEAVE_MARK_WAIT_MS, () => undefined).finally(releaseLive);
      window.removeEventListener('beforeunload', markBeforeLeaving);
      window.removeEventListener('pagehide', markBeforeLeaving);
      document.removeEventListener('visibilitychange', markWhenHidden);
      clearTimeout(markTimer);
      clearTimeout(graceTimer);
      clearTimeout(announceTimer);
      announceTimer = undefined; // (a mark written on leaving is announced at once)
      if (announceAgain) tellMarksChanged();
      doc.off('update', onDocUpdate);
      provider.off('status', onStatus);
      local.off('synced', onCopyLoaded);
      provider.off('sync', onSync);
      provider.awareness.off('change', settleWithoutAcks);
    },
  };
}
