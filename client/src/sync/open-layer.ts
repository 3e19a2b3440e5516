/**
 * Opens one layer: a Y.Doc synced with the server over y-websocket on `/sync/<room>`, kept in
 * IndexedDB so edits made offline survive a reload and merge on reconnect. Connection state and
 * presence are exposed as Solid signals.
 *
 * @example
 *   const layer = openLayer({ room: layerRoom(3, 7), user: { id: 7, name: 'alice' }, storagePrefix: 'u7' });
 *   onCleanup(layer.close);
 *   layer.connection(); // 'connecting' | 'connected' | 'offline' | 'closed'
 */
import { createSignal, type Accessor } from 'solid-js';
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { WebsocketProvider } from 'y-websocket';
import { FINAL_CLOSE_CODES } from '@spanwise/shared/protocol';
import { createPresence, type Peer, type PresenceUser, type TextSelection } from './presence.ts';

export type Connection = 'connecting' | 'connected' | 'offline' | 'closed';

export interface Layer {
  doc: Y.Doc;
  connection: Accessor<Connection>;
  /** The close code when the server refused the room for good (4401, 4403, 4404); else null. */
  closedCode: Accessor<number | null>;
  peers: Accessor<Peer[]>;
  /** The server says it cannot store edits right now (its database is away); they are kept. */
  savingDelayed: Accessor<boolean>;
  setSelection(selection: TextSelection | null): void;
  close(): void;
}

export interface OpenLayerOptions {
  room: string;
  user: PresenceUser;
  /** Keeps IndexedDB copies apart per signed-in user on a shared browser. */
  storagePrefix: string;
  /** Called once when the server closes the room with a final code. */
  onClosed?: (code: number) => void;
}

function syncUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/sync`;
}

export function openLayer(options: OpenLayerOptions): Layer {
  const doc = new Y.Doc();
  const local = new IndexeddbPersistence(`spanwise:${options.storagePrefix}:${options.room}`, doc);
  const provider = new WebsocketProvider(syncUrl(), options.room, doc, {
    shouldReconnect: (event) => !FINAL_CLOSE_CODES.has(event.code),
  });

  const [connection, setConnection] = createSignal<Connection>('connecting');
  const [closedCode, setClosedCode] = createSignal<number | null>(null);
  let everConnected = false;

  provider.on('status', ({ status }) => {
    if (closedCode() !== null) return;
    if (status === 'connected') {
      everConnected = true;
      setConnection('connected');
    } else if (status === 'disconnected' || everConnected) {
      // Reconnect attempts flip between connecting and disconnected; to a person that is "offline".
      setConnection('offline');
    }
  });
  provider.on('connection-error', () => {
    if (closedCode() === null && !provider.wsconnected) setConnection('offline');
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

  return {
    doc,
    connection,
    closedCode,
    peers: presence.peers,
    savingDelayed,
    setSelection: presence.setSelection,
    close() {
      provider.awareness.off('change', readServerState);
      presence.destroy();
      provider.destroy();
      void local.destroy();
      doc.destroy();
    },
  };
}
