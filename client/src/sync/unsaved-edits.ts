/**
 * Which edits made in this page the server has not stored yet. The page opens its sockets with
 * `?acks=1`, and the server then says, once nothing of a socket waits to be stored, how many of
 * the document frames (sync step 2s and updates) it sent are stored (MessageKind.stored). Each
 * socket counts what it sends; an edit made while no socket is open goes out in the next
 * socket's sync step 2, which carries everything the page holds that the server lacks.
 *
 * So an edit is unsaved from the moment it is made until the server has stored every frame of
 * a socket that sent it (or sent the step 2 after it). A server that does not tell (an older
 * one, mid-upgrade) never sends the count of 0 that follows its greeting: on its sockets an edit
 * counts as saved once sent on a synced socket, and the sync itself settles the rest. Edits unsaved for a while (made offline,
 * or the server slow to store) are marked in the layer's IndexedDB copy, so a page reloaded
 * offline still knows; the first time, the browser is asked to keep the site's storage
 * (`navigator.storage.persist()`) rather than clear it under pressure.
 */
import { createSignal, type Accessor } from 'solid-js';
import * as decoding from 'lib0/decoding';
import type * as Y from 'yjs';
import type { IndexeddbPersistence } from 'y-indexeddb';
import type { WebsocketProvider } from 'y-websocket';
import { MessageKind } from '@spanwise/shared/protocol';
import { parseRoom } from '@spanwise/shared/rooms';

/** The layer's IndexedDB entry that says edits made here may not have reached the server. */
const UNSAVED_KEY = 'unsaved';
/** How long an edit sent on an open socket may wait for the server's word before it is marked. */
const MARK_AFTER_MS = 2_000;
/** y-protocols' sync message types that carry document content. */
const SYNC_STEP2 = 1;
const SYNC_UPDATE = 2;

/** A browser WebSocket that counts the document frames it sends (see the module comment). */
export class CountingWebSocket extends WebSocket {
  /** Sync step 2s and updates sent (as the server counts what it stored). */
  documentFrames = 0;
  /** Its sync step 2 has gone: what the page held then went out on this socket. */
  answered = false;
  /** The server said it tells what is stored (its count of 0 after the greeting). */
  tells = false;

  override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    super.send(data);
    if (!(data instanceof Uint8Array) || data[0] !== MessageKind.sync) return;
    if (data[1] === SYNC_STEP2) {
      this.documentFrames++;
      this.answered = true;
    } else if (data[1] === SYNC_UPDATE) {
      this.documentFrames++;
    }
  }
}

/** The IndexedDB database that keeps a layer's copy for one signed-in user (`storagePrefix`). */
export function layerCopyName(storagePrefix: string, room: string): string {
  return `spanwise:${storagePrefix}:${room}`;
}

/** Whether the copy named `name` holds the mark; false if it cannot be read, or is not there. */
function holdsMark(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    let open: IDBOpenDBRequest;
    try {
      open = indexedDB.open(name);
    } catch {
      return resolve(false);
    }
    // Not there (any more): opening it would make an empty one.
    open.onupgradeneeded = () => open.transaction?.abort();
    open.onerror = () => resolve(false);
    open.onblocked = () => resolve(false);
    open.onsuccess = () => {
      const db = open.result;
      try {
        const get = db.transaction('custom').objectStore('custom').get(UNSAVED_KEY);
        get.onsuccess = () => resolve(get.result === 1);
        get.onerror = () => resolve(false);
      } catch {
        resolve(false);
      } finally {
        db.close(); // (once its transaction is done)
      }
    };
  });
}

/**
 * The documents whose layers this browser holds edits of not yet saved, for the user of
 * `storagePrefix`: made offline and left, they are sent only when the document is opened again
 * while the server can be reached, so the document list says where they are. Empty where the
 * browser cannot list its databases; never rejects.
 */
export async function documentsWithUnsavedEdits(storagePrefix: string): Promise<Set<number>> {
  const documents = new Set<number>();
  if (typeof indexedDB === 'undefined' || typeof indexedDB.databases !== 'function') return documents;
  const prefix = layerCopyName(storagePrefix, '');
  let names: string[];
  try {
    names = (await indexedDB.databases()).flatMap((d) => (d.name?.startsWith(prefix) ? [d.name] : []));
  } catch {
    return documents;
  }
  await Promise.all(
    names.map(async (name) => {
      const room = parseRoom(name.slice(prefix.length));
      if (room && room.kind !== 'entities' && (await holdsMark(name))) documents.add(room.documentId);
    }),
  );
  return documents;
}

/** Asks the browser once per page to keep this site's storage (it holds edits not yet sent). */
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
 * and connect only once `local` has loaded and `read` settled: a step 2 sent before would not
 * carry what the copy holds, and its word could not settle a mark not yet read.
 */
export function trackUnsaved(doc: Y.Doc, provider: WebsocketProvider, local: IndexeddbPersistence | null): UnsavedEdits {
  const [unsaved, setUnsaved] = createSignal(false);
  /**
   * This page wrote the mark, or found it: its own full ack may take it away. (Another tab's
   * mark stays: that tab's edits may have reached this one over BroadcastChannel, which this
   * page does not send on.)
   */
  let marked = false;
  let markTimer: ReturnType<typeof setTimeout> | undefined;
  const socket = () => provider.ws as CountingWebSocket | null;

  const mark = () => {
    clearTimeout(markTimer);
    markTimer = undefined;
    marked = true;
    local?.set(UNSAVED_KEY, 1).catch(() => {});
    askToPersist();
  };

  /** Synced with a server that does not say what it stored. */
  const untold = () => provider.synced && socket()?.tells === false;
  const settle = () => {
    clearTimeout(markTimer);
    markTimer = undefined;
    if (unsaved()) setUnsaved(false);
    if (marked) {
      marked = false;
      local?.del(UNSAVED_KEY).catch(() => {});
    }
  };

  const onDocUpdate = (_update: Uint8Array, origin: unknown) => {
    if (origin === provider || (local !== null && origin === local)) return;
    if (untold() && provider.wsconnected) return; // sent now: as saved as it can be known to be
    setUnsaved(true);
    // Made with no socket open, it waits for the next one's step 2: marked at once.
    if (!provider.wsconnected) mark();
    else if (markTimer === undefined) {
      markTimer = setTimeout(() => {
        markTimer = undefined;
        if (unsaved()) mark();
      }, MARK_AFTER_MS);
    }
  };
  doc.on('update', onDocUpdate);

  provider.messageHandlers[MessageKind.stored] = (_encoder, decoder, _provider, fromSocket) => {
    if (!fromSocket) return;
    const count = decoding.readVarUint(decoder);
    const ws = socket();
    if (!ws) return;
    ws.tells = true;
    // Only a socket that sent its step 2 has sent everything: what was made before it opened
    // too (a socket's end drops it from the provider, so an edit made with none open is in the
    // next one's step 2).
    if (ws.answered && count === ws.documentFrames) settle();
  };
  const onSync = (synced: boolean) => {
    if (synced && untold()) settle();
  };
  provider.on('sync', onSync);

  // Edits an earlier page left unsent (made offline, and the page was left meanwhile): this
  // page's step 2 sends what the copy holds, and the server's word on it takes the mark away.
  const read = (local?.get(UNSAVED_KEY) ?? Promise.resolve(undefined)).then(
    (left) => {
      if (left !== 1) return;
      marked = true;
      setUnsaved(true);
    },
    () => {},
  );

  return {
    unsaved,
    read,
    destroy() {
      clearTimeout(markTimer);
      doc.off('update', onDocUpdate);
      provider.off('sync', onSync);
    },
  };
}
