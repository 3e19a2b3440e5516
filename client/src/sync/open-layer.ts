/**
 * Opens one layer: a Y.Doc synced with the server over y-websocket on `/sync/<room>`, kept in
 * IndexedDB so edits made offline survive a reload and merge on reconnect. Connection state,
 * presence and what the server says about this user's edits are exposed as Solid signals.
 *
 * How it answers the server's close codes (shared/src/protocol.ts):
 * - 4401, 4403, 4404: closed for good (signed out, no access, no such layer); 4409 too (the
 *   browser is signed in as someone else now: the page learns who).
 * - 1009 (a message too big) and 4400 (one the server could not read): reconnecting would send
 *   the same again, so it stops and waits for `retry()`; the edits stay in IndexedDB (until
 *   the page discards them: `discardLocalCopy()`).
 * - 1013 and 4429 (the server is busy, or too many layers are open): it waits before trying
 *   again, longer each time (1, 2, 4 … 30 s, with jitter), and says the server is busy.
 * - 4408 (this user's access changed): it reconnects at once. Every sync after a reconnect
 *   forgets that writes were refused and calls `onAccessChanged`, so the page learns the role
 *   again: it may have changed while the socket was down, too (only open sockets get 4408).
 *   From the third 4408 in a row (each closing a socket that lived less than 10 s) it waits
 *   first, as after a busy close, learning its role meanwhile: a role changed again and again,
 *   or a server that says so at every connect, must not have every open page reconnect, and
 *   read its role, five times a second.
 * A read-only socket's edits are dropped by the server, which says so once with an auth
 * message: `writesRefused` turns true.
 *
 * `unsaved` says whether the server has yet to store edits made here (see unsaved-edits.ts):
 * the page asks before it is left then. `localCopy` says whether the layer's IndexedDB copy
 * holds its edits (it did not open, or the browser refused a write: they then live only in the
 * page until the server has them).
 *
 * @example
 *   const layer = openLayer({ room: layerRoom(3, 7), user: { id: 7, name: 'alice' }, storagePrefix: 'u7' });
 *   onCleanup(layer.close);
 *   layer.connection(); // 'connecting' | 'connected' | 'offline' | 'busy' | 'closed'
 */
import { createSignal, type Accessor } from 'solid-js';
import * as Y from 'yjs';
import * as authProtocol from 'y-protocols/auth';
import { applyAwarenessUpdate } from 'y-protocols/awareness';
import * as decoding from 'lib0/decoding';
import { IndexeddbPersistence } from 'y-indexeddb';
import { WebsocketProvider } from 'y-websocket';
import { CloseCode, FINAL_CLOSE_CODES, MessageKind } from '@spanwise/shared/protocol';
import { readPresenceEntries } from '@spanwise/shared/presence-entries';
import { withoutRemovals } from './awareness-update.ts';
import { createPresence, type Peer, type PresenceUser, type TextSelection } from './presence.ts';
import { CountingWebSocket, discardCopies, holdCopy, layerCopyName, trackUnsaved, watchCopyDiscards } from './unsaved-edits.ts';
import { watchLocalCopy, type LocalCopy } from './local-copy.ts';
import { within } from '../lib/within.ts';

export type Connection = 'connecting' | 'connected' | 'offline' | 'busy' | 'closed';

export interface Layer {
  doc: Y.Doc;
  connection: Accessor<Connection>;
  /**
   * The close code when the server closed the room and the client stopped: for good (4401,
   * 4403, 4404), or until `retry()` (1009, 4400); else null.
   */
  closedCode: Accessor<number | null>;
  peers: Accessor<Peer[]>;
  /** The server says it cannot store edits right now (its database is away); they are kept. */
  savingDelayed: Accessor<boolean>;
  /** The server said it drops this user's edits to the layer (a read-only socket). */
  writesRefused: Accessor<boolean>;
  /** The open socket has synced: what the server says now is about this socket. */
  synced: Accessor<boolean>;
  /**
   * The server has yet to store edits made here (or, if it does not say what it stored, to have
   * been sent them while it announces no saving delay).
   */
  unsaved: Accessor<boolean>;
  /**
   * Whether the layer's IndexedDB copy holds its edits (see local-copy.ts): unless `open`, edits
   * live only in the page until the server has them.
   */
  localCopy: Accessor<LocalCopy>;
  setSelection(selection: TextSelection | null): void;
  /** Connects again after a close that waits for the user (1009, 4400). */
  retry(): void;
  close(): void;
  /**
   * Closes the layer and deletes its copy in this browser, with the edits the server never
   * stored (the user may no longer change the layer, say); open it again to see what is saved.
   */
  discardLocalCopy(): Promise<void>;
}

export interface OpenLayerOptions {
  room: string;
  user: PresenceUser;
  /** Keeps IndexedDB copies apart per signed-in user on a shared browser. */
  storagePrefix: string;
  /** Called once when the server closes the room with a code after which the client stops. */
  onClosed?: (code: number) => void;
  /**
   * Called after every sync but the first, and after the first when the layer was offline
   * before it (a page opened from what the browser kept): the user's access may have changed
   * meanwhile.
   */
  onAccessChanged?: () => void;
  /**
   * Another page of this browser is deleting the layer's copy (discarding edits that cannot be
   * saved): the layer has closed itself, and should be opened afresh once `done` settles.
   */
  onCopyDiscarded?: (done: Promise<void>) => void;
}

/** Codes after which reconnecting would only send the same again: stop until asked. */
export const RETRY_BY_HAND_CODES: ReadonlySet<number> = new Set([CloseCode.tooBig, CloseCode.malformed]);
/** Codes that ask the client to come back later. */
const BUSY_CODES: ReadonlySet<number> = new Set([CloseCode.tryAgainLater, CloseCode.rateLimited]);
const BUSY_FIRST_WAIT_MS = 1_000;
const BUSY_LONGEST_WAIT_MS = 30_000;
/** A connection that lasted this long ends a run of busy closes. */
const BUSY_RUN_RESET_MS = 30_000;

/** A 4408 closing a socket younger than this continues a run (see the module comment). */
const ACCESS_RUN_MS = 10_000;
/** 4408s in a run taken at once; each one after waits as the busy closes do (busyWaitMs). */
const ACCESS_RUN_AT_ONCE = 2;

/** How long a layer waits for its IndexedDB copy to load before it connects anyway. */
const LOCAL_LOAD_WAIT_MS = 2_000;

/** The longest wait between two tries to reconnect (not after a busy close: see busyWaitMs). */
const RECONNECT_LONGEST_WAIT_MS = 5_000;

/**
 * How long to wait before the kth try to reconnect in a row: y-websocket's 0.2, 0.4 … s, capped,
 * but each drawn from the second half of its span. Its own schedule is the same for every page,
 * so after a restart every open tab would come back in the same instant, and again every 2.5 s
 * while the server is away.
 */
export function reconnectWaitMs(k: number): number {
  return Math.round(Math.min(100 * 2 ** k, RECONNECT_LONGEST_WAIT_MS) * (0.5 + Math.random() / 2));
}

/** How long to wait after the nth busy close in a row (n from 1): doubling, capped, jittered. */
function busyWaitMs(n: number): number {
  const base = Math.min(BUSY_LONGEST_WAIT_MS, BUSY_FIRST_WAIT_MS * 2 ** (n - 1));
  return Math.round(base * (0.5 + Math.random()));
}

function syncUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/sync`;
}

export function openLayer(options: OpenLayerOptions): Layer {
  const doc = new Y.Doc();
  const copyName = layerCopyName(options.storagePrefix, options.room);
  /** Tells this layer's own word on the marks channel from other pages'. */
  const self = `layer:${Math.random().toString(36).slice(2)}`;
  // (Before the copy opens: a sign-out's sweep must find it in use.)
  const releaseCopy = holdCopy(copyName);
  const local = new IndexeddbPersistence(copyName, doc);
  const localCopy = watchLocalCopy(local, doc, LOCAL_LOAD_WAIT_MS);
  const provider = new WebsocketProvider(syncUrl(), options.room, doc, {
    shouldReconnect: (event) => !FINAL_CLOSE_CODES.has(event.code) && !RETRY_BY_HAND_CODES.has(event.code),
    // Whose page this is: the server refuses the socket (4409) if the browser's session is now
    // someone else's (signed out and in again in another tab, unheard of here).
    // `acks`: the server says when what the page sent is stored (unsaved-edits.ts).
    params: { user: String(options.user.id), acks: '1' },
    WebSocketPolyfill: CountingWebSocket,
    connect: false,
  });
  // Tabs share a room's updates over a BroadcastChannel, named by the room alone: per user, or a
  // stale tab of the last user would hand what it holds to the next user's tab of that room.
  provider.bcChannel += `#user:${options.user.id}`;

  const [connection, setConnection] = createSignal<Connection>('connecting');
  const [closedCode, setClosedCode] = createSignal<number | null>(null);
  const [writesRefused, setWritesRefused] = createSignal(false);
  const [synced, setSynced] = createSignal(false);
  provider.on('status', ({ status }) => {
    if (status !== 'connected') setSynced(false);
  });
  let everConnected = false;
  let destroyed = false;
  /** The layer was offline before its first sync (a page opened while the server was away). */
  let offlineBeforeSync = false;
  let connectedAt = 0;
  let busyRun = 0;
  let busyTimer: ReturnType<typeof setTimeout> | undefined;
  /** The server said it is busy, and no connection has opened since. */
  let busy = false;
  let accessRun = 0;
  let accessTimer: ReturnType<typeof setTimeout> | undefined;
  /** The server closed the socket with 4408, and no connection has opened since. */
  let accessWait = false;
  /**
   * The page closed its socket itself to sync afresh (unsaved-edits.ts, takeOver): 'closing'
   * until that socket's close, then 'back' until the next sync. Meanwhile the layer says
   * "connecting", not "offline": nothing is amiss. A reconnect that fails in turn ends it.
   */
  let resync: 'closing' | 'back' | null = null;

  // y-websocket only logs the server's "permission denied"; here it tells the page.
  provider.messageHandlers[MessageKind.auth] = (_encoder, decoder) => {
    authProtocol.readAuthMessage(decoder, doc, () => setWritesRefused(true));
  };

  // Another tab of this browser on the layer passes on over BroadcastChannel what its awareness
  // does, the removals among it: when that tab's socket goes, the others' states it drops (the
  // server's saving-delayed notice, the peers' presence) would vanish here too, though this
  // tab's own socket still has them, until each is renewed (15 s). While this tab is connected,
  // its server says when those leave: a sibling's removal is taken only of a state this tab's
  // socket did not bring (the sibling's own, say, when it had no socket of its own).
  const viaSocket = new Set<number>();
  const defaultAwarenessHandler = provider.messageHandlers[MessageKind.awareness]!;
  provider.messageHandlers[MessageKind.awareness] = (encoder, decoder, p, fromSocket, messageType) => {
    if (!fromSocket && !provider.wsconnected) return defaultAwarenessHandler(encoder, decoder, p, fromSocket, messageType);
    const update = decoding.readVarUint8Array(decoder);
    if (fromSocket) {
      for (const e of readPresenceEntries(update)) {
        if (e.state === 'null') viaSocket.delete(e.id);
        else viaSocket.add(e.id);
      }
      applyAwarenessUpdate(provider.awareness, update, provider);
      return;
    }
    const kept = withoutRemovals(update, (client) => viaSocket.has(client));
    if (kept) applyAwarenessUpdate(provider.awareness, kept, provider);
  };
  provider.on('status', ({ status }) => {
    if (status === 'disconnected') viaSocket.clear();
  });

  // Presence across a reconnect. y-websocket drops the others' states when its socket goes but
  // keeps the clock it last saw of each, and y-protocols ignores a state that does not move a
  // clock on: the server's greeting after a reconnect, the same states at the same clocks (its
  // saving-delayed notice among them), would be ignored until each is renewed, up to 15 s
  // later. Forgotten, they are taken as new. The server, likewise, kept this page's clock when
  // the socket went: its own state goes again with a newer one.
  const awareness = provider.awareness;
  let connectedBefore = false;
  provider.on('status', ({ status }) => {
    if (status === 'disconnected') {
      for (const id of [...awareness.meta.keys()]) if (id !== awareness.clientID && !awareness.states.has(id)) awareness.meta.delete(id);
    } else if (status === 'connected') {
      const own = awareness.getLocalState();
      if (connectedBefore && own !== null) awareness.setLocalState(own);
      connectedBefore = true;
    }
  });
  provider.on('status', ({ status }) => {
    if (closedCode() !== null) return;
    if (status === 'connected') {
      everConnected = true;
      connectedAt = Date.now();
      accessWait = false;
      // Only a sync shows the server has taken the socket (see 'sync'): one it refuses at the
      // door opens and closes at once, and a room the server has yet to load answers nothing.
      if (!busy) setConnection('connecting');
    } else if (busy || accessWait) {
      // Waiting to come back (or coming back) after the server said it is busy, or again and
      // again that the access changed.
    } else if (resync !== null) {
      setConnection('connecting');
    } else if (status === 'disconnected' || everConnected) {
      // Reconnect attempts flip between connecting and disconnected; to a person that is "offline".
      setConnection('offline');
      offlineBeforeSync ||= !syncedBefore;
    }
  });
  provider.on('connection-error', () => {
    if (closedCode() !== null || provider.wsconnected) return;
    busy = false; // the server is not answering at all now
    accessWait = false;
    resync = null;
    setConnection('offline');
    offlineBeforeSync ||= !syncedBefore;
  });
  // Emitted before the provider schedules its own reconnect, which a busy close cancels.
  provider.on('connection-close', (event) => {
    const code = event?.code;
    resync = resync === 'closing' ? 'back' : null;
    // y-websocket counts this close as one more failed try, then waits min(2^tries × 100 ms,
    // maxBackoffTime): set to a draw no longer than that, it is the wait.
    provider.maxBackoffTime = reconnectWaitMs(provider.wsUnsuccessfulReconnects + 1);
    if (code !== undefined && BUSY_CODES.has(code)) {
      provider.shouldConnect = false; // the reconnect y-websocket schedules does nothing
      busyRun = connectedAt > 0 && Date.now() - connectedAt > BUSY_RUN_RESET_MS ? 1 : busyRun + 1;
      clearTimeout(busyTimer);
      busy = true;
      busyTimer = setTimeout(() => {
        busyTimer = undefined;
        if (closedCode() === null) provider.connect();
      }, busyWaitMs(busyRun));
      setConnection('busy');
    } else if (code === CloseCode.accessChanged) {
      accessRun = connectedAt > 0 && Date.now() - connectedAt > ACCESS_RUN_MS ? 1 : accessRun + 1;
      // Asked by the server to come back: "connecting", not "offline", until it is back.
      accessWait = true;
      setConnection('connecting');
      if (accessRun <= ACCESS_RUN_AT_ONCE) return;
      provider.shouldConnect = false; // (as for a busy close: the wait is this one)
      clearTimeout(accessTimer);
      accessTimer = setTimeout(() => {
        accessTimer = undefined;
        if (closedCode() === null && !destroyed) provider.connect();
      }, busyWaitMs(accessRun - ACCESS_RUN_AT_ONCE));
      // The role is learnt now, not only at the sync after the wait.
      options.onAccessChanged?.();
    }
  });
  let syncedBefore = false;
  provider.on('sync', (isSynced: boolean) => {
    setSynced(isSynced && provider.wsconnected);
    if (!isSynced || closedCode() !== null) return;
    busy = false;
    resync = null;
    setConnection('connected');
    if (syncedBefore) setWritesRefused(false); // the server says so again at the next refused write
    // The role the page holds may be older than this socket: it changed while the socket was
    // down, or the page opened offline from what the browser kept.
    if (syncedBefore || offlineBeforeSync) options.onAccessChanged?.();
    syncedBefore = true;
  });
  provider.on('closed', ({ code }) => {
    provider.disconnect();
    setClosedCode(code);
    setConnection('closed');
    options.onClosed?.(code);
  });

  const presence = createPresence(provider.awareness, options.user);
  // The server announces a storage outage as its own awareness state: { server: { saving } }.
  const [savingDelayed, setSavingDelayed] = createSignal(false);
  const readServerState = () =>
    setSavingDelayed(
      [...provider.awareness.getStates().values()].some((s) => (s as { server?: { saving?: string } }).server?.saving === 'delayed'),
    );
  provider.awareness.on('change', readServerState);

  const edits = trackUnsaved(
    doc,
    provider,
    local,
    savingDelayed,
    () => localCopy.state() === 'open',
    () => (resync = 'closing'),
  );
  const discardWatch = watchCopyDiscards(copyName, self, (done) => {
    void shutDown().catch(() => {});
    options.onCopyDiscarded?.(done);
  });
  // Another page deleting the copy: its database is told before the delete goes on (lib0 then
  // closes it), so the doc is let go of before the copy is gone, whatever the channels' order.
  local._db.then(
    (db) => db.addEventListener('versionchange', () => discardWatch.begin()),
    () => {},
  );
  // Connected once the layer's copy has loaded, so that the first sync sends what it holds (and
  // its mark is read); but not later than LOCAL_LOAD_WAIT_MS, should the copy never answer (the
  // layer then syncs anyway, and what the copy brings later goes as updates).
  let connectWait: ReturnType<typeof setTimeout> | undefined;
  let connectAsked = false;
  const connectOnce = () => {
    clearTimeout(connectWait);
    if (connectAsked || destroyed) return;
    connectAsked = true;
    provider.connect();
  };
  connectWait = setTimeout(connectOnce, LOCAL_LOAD_WAIT_MS);
  // (`whenSynced` never settles when the copy fails to open: `_db` says so.)
  Promise.all([local._db.then(() => local.whenSynced), edits.read]).then(connectOnce, connectOnce);

  return {
    doc,
    connection,
    closedCode,
    peers: presence.peers,
    savingDelayed,
    writesRefused,
    synced,
    unsaved: edits.unsaved,
    localCopy: localCopy.state,
    setSelection: presence.setSelection,
    retry() {
      const code = closedCode();
      if (code === null || !RETRY_BY_HAND_CODES.has(code)) return;
      setClosedCode(null);
      everConnected = false; // 'connecting', not 'offline', until it is back
      setConnection('connecting');
      provider.connect();
    },
    close: () => void shutDown().catch(() => {}),
    async discardLocalCopy() {
      // (A copy that never opened has nothing to close, and may never say so.)
      await within(shutDown().catch(() => {}), LOCAL_LOAD_WAIT_MS, () => undefined);
      await discardCopies([copyName], self);
    },
  };

  /** Stops everything; settles once the IndexedDB copy is closed (it can be deleted then). */
  function shutDown(): Promise<void> {
    if (destroyed) return Promise.resolve();
    destroyed = true;
    discardWatch.stop();
    clearTimeout(connectWait);
    clearTimeout(busyTimer);
    busyTimer = undefined;
    clearTimeout(accessTimer);
    provider.awareness.off('change', readServerState);
    edits.destroy();
    localCopy.destroy();
    presence.destroy();
    provider.destroy();
    const closed = local.destroy();
    doc.destroy();
    // (A copy that never opened may never say it closed: let go of it then all the same.)
    void within(closed.catch(() => {}), LOCAL_LOAD_WAIT_MS, () => undefined).then(releaseCopy);
    return closed;
  }
}
