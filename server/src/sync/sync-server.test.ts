import { describe, expect, it, vi } from 'vitest';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import { addSpan, annotationsMap, CloseCode, deleteAnnotation, listSpans, MessageKind } from '@spanwise/shared';
import { readPresenceEntries, writePresenceEntries } from '@spanwise/shared/presence-entries';
import { cleanupPoison, findPoison, presenceUpdate, waitingPoisonLog } from '../../test/updates.ts';
import { MAX_AWARENESS_CLIENTS, MAX_AWARENESS_IDS_INTRODUCED, ROOM_PRESENCE_MESSAGES, STEP1_BURST, USER_PRESENCE_MESSAGES } from './connection.ts';
import { MemoryStore } from './memory-store.ts';
import { messageLabel } from './message-label.ts';
import { MAX_BATCH_UPDATES, MAX_PRESENCE_IDS_PER_USER, MAX_ROOM_PRESENCE_IDS } from './room.ts';
import { ENTRY_OVERHEAD_BYTES, queuedBytes, socketFrameBound, WAITING_FRAMES_PER_SOCKET } from './backlog.ts';
import { SyncServer } from './sync-server.ts';
import type { BusListener, ConnectionInfo, StoredUpdate, SyncBus, SyncSocket, SyncStore } from './types.ts';
import { createSyncMetrics } from '../features/metrics/sync-metrics.ts';
import { logLeftOutCounts } from '../log.ts';

const silent = { info() {}, warn() {}, error() {} };
const limits = { maxMessageBytes: 1024 * 1024, maxMessagesPerSecond: 1000, maxAwarenessBytes: 1024 };
const tick = () => new Promise((r) => setImmediate(r));
/** Waits until every room has loaded and stored what it was sent (at most `maxTicks` ticks). */
const flushed = async (server: SyncServer, maxTicks = 50) => {
  await tick(); // a connection reads the frames it was handed on its promise chain first
  for (let i = 0; i < maxTicks && [...server.rooms.values()].some((r) => r.busy); i++) await tick();
  await tick();
  await tick();
};

/** A bus that only remembers who follows each room (what another instance would send goes through `followers`). */
function followingBus(): { bus: SyncBus; followers: Map<string, BusListener> } {
  const followers = new Map<string, BusListener>();
  const bus = {
    async join(room: string, listener: BusListener) {
      followers.set(room, listener);
    },
    // As RedisBus: with a listener, only if that is still whom the room's messages go to.
    leave(room: string, listener?: BusListener) {
      if (!listener || followers.get(room) === listener) followers.delete(room);
    },
    publish() {},
    async close() {},
  } satisfies SyncBus;
  return { bus, followers };
}

/** An in-memory peer: a Y.Doc that applies what the server sends it. */
class MemorySocket implements SyncSocket {
  readonly doc = new Y.Doc();
  readonly received: Uint8Array[] = [];
  closedWith: number | null = null;
  /** Whether frames go out (a real socket's are dropped once it is not open). */
  open = true;
  send(data: Uint8Array) {
    if (!this.open) return false;
    this.received.push(data);
    const decoder = decoding.createDecoder(data);
    if (decoding.readVarUint(decoder) === MessageKind.sync) {
      syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), this.doc, 'server');
    }
    return true;
  }
  close(code: number) {
    this.closedWith = code;
  }
}

function updateMessage(update: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MessageKind.sync);
  syncProtocol.writeUpdate(e, update);
  return encoding.toUint8Array(e);
}

/** A presence (awareness) message carrying `update`. */
function awarenessMessage(update: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MessageKind.awareness);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
}

/** A presence message with `tab`'s own state (null once it is removed). */
const ownPresence = (tab: awarenessProtocol.Awareness) => awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(tab, [tab.clientID]));

/** A presence message written entry by entry (id, clock, state), as a peer may send any. */
function rawPresence(entries: ReadonlyArray<readonly [id: number, clock: number, state: unknown]>): Uint8Array {
  return awarenessMessage(presenceUpdate(entries));
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function spanUpdate(label: string, start = 0, end = 4): Uint8Array {
  const doc = new Y.Doc();
  addSpan(doc, { label, start, end, quote: 'text', author: 1 });
  return Y.encodeStateAsUpdate(doc);
}

/** Connects a memory peer and asks for the room's state, as a real client does. */
function join(server: SyncServer, socket: MemorySocket, connInfo: ConnectionInfo = info()) {
  const conn = server.connect(socket, connInfo);
  const step1 = encoding.createEncoder();
  encoding.writeVarUint(step1, MessageKind.sync);
  syncProtocol.writeSyncStep1(step1, socket.doc);
  conn.receive(encoding.toUint8Array(step1));
  return conn;
}

/** Holds every load of `store` until the returned function is called. */
function holdLoads(store: MemoryStore): () => void {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const load = store.load.bind(store);
  store.load = async (room: string): Promise<StoredUpdate[]> => {
    await gate;
    return load(room);
  };
  return release;
}

/** A server whose presence messages may be 64 KiB, with one peer joined and its room loaded. */
async function presenceRoom() {
  const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
  const socket = new MemorySocket();
  const conn = join(server, socket);
  await flushed(server);
  return { server, socket, conn, room: server.rooms.get('doc:1:user:1')! };
}

/** A server on a memory store with two peers in one room: `w` writes, `reader` listens. */
async function writerAndReader() {
  const store = new MemoryStore();
  const server = new SyncServer({ store, log: silent, limits });
  const reader = new MemorySocket();
  const w = server.connect(new MemorySocket(), info());
  server.connect(reader, info());
  await flushed(server);
  return { store, server, w, reader };
}

const info = (room = 'doc:1:user:1', readOnly = false) => ({ room, userId: 1, readOnly });

describe('SyncServer', () => {
  it('sends nothing before the room has loaded, then answers in order', async () => {
    const store = new MemoryStore();
    await store.append('doc:1:user:1', [spanUpdate('GPE')]);
    const release = holdLoads(store);
    const server = new SyncServer({ store, log: silent, limits });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    const step1 = encoding.createEncoder();
    encoding.writeVarUint(step1, MessageKind.sync);
    syncProtocol.writeSyncStep1(step1, socket.doc);
    conn.receive(encoding.toUint8Array(step1));
    await tick();
    expect(socket.received).toHaveLength(0);
    release();
    await flushed(server);
    expect(listSpans(socket.doc).map((s) => s.label)).toEqual(['GPE']);
  });

  it('stores updates that arrive in one tick in one append', async () => {
    const { store, server, w, reader } = await writerAndReader();
    const callsBefore = store.appendCalls;
    for (const label of ['PERSON', 'ORG', 'GPE']) w.receive(updateMessage(spanUpdate(label)));
    await flushed(server);
    expect(store.appendCalls - callsBefore).toBe(1);
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(3);
    expect(listSpans(reader.doc)).toHaveLength(3);
  });

  it('queues an update apart from the frame it came in: padding after it is neither counted nor kept', async () => {
    const store = new MemoryStore();
    const queued: Uint8Array[] = [];
    const append = store.append.bind(store);
    store.append = (room, updates) => {
      queued.push(...updates);
      return append(room, updates);
    };
    const server = new SyncServer({ store, log: silent, limits });
    const w = join(server, new MemorySocket());
    await flushed(server);
    const update = spanUpdate('GPE');
    const frame = new Uint8Array(256 * 1024);
    frame.set(updateMessage(update));
    w.receive(frame);
    await flushed(server);
    expect(queued).toHaveLength(1);
    expect(queued[0]).toEqual(update);
    // Its own bytes, not a view that keeps the 256 KiB frame alive while it waits.
    expect(queued[0]!.buffer.byteLength).toBe(update.byteLength);
  });

  it(`answers ${STEP1_BURST} sync requests from one socket at once, and closes one that floods them (4429)`, async () => {
    const errors: string[] = [];
    const store = new MemoryStore();
    await store.append('doc:1:user:1', [spanUpdate('GPE')]);
    const logged: Array<[string, unknown]> = [];
    const log = { ...silent, warn: (event: string, fields?: unknown) => void logged.push([event, fields]) };
    const server = new SyncServer({ store, log, limits, observer: { error: (kind) => errors.push(kind) } });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    const step1 = encoding.createEncoder();
    encoding.writeVarUint(step1, MessageKind.sync);
    syncProtocol.writeSyncStep1(step1, new Y.Doc());
    const request = encoding.toUint8Array(step1);
    for (let i = 0; i < STEP1_BURST; i++) conn.receive(request);
    await flushed(server);
    const answers = () => socket.received.filter((m) => m[0] === MessageKind.sync && m[1] === syncProtocol.messageYjsSyncStep2).length;
    expect(answers()).toBe(STEP1_BURST);
    expect(socket.closedWith).toBeNull();
    conn.receive(request);
    await flushed(server);
    expect(answers()).toBe(STEP1_BURST);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(errors).toEqual(['rate_limited']);
    // Logged with whose socket it was (the counter alone says neither room nor user).
    expect(logged).toEqual([['sync_socket_refused', { room: 'doc:1:user:1', userId: 1, code: CloseCode.rateLimited, reason: 'too many sync requests' }]]);
  });

  it(`answers ${STEP1_BURST} presence queries from one socket at once (each encodes every state shown), and closes one that floods them (4429)`, async () => {
    const errors: string[] = [];
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, observer: { error: (kind) => errors.push(kind) } });
    const other = join(server, new MemorySocket());
    await flushed(server);
    other.receive(rawPresence([[7, 1, { user: { id: 1 }, cursor: 'x'.repeat(500) }]]));
    const socket = new MemorySocket();
    const conn = server.connect(socket, info('doc:1:user:1', true)); // a viewer may ask too
    await flushed(server);
    const answers = () => socket.received.filter((m) => m[0] === MessageKind.awareness).length;
    const greeting = answers();
    const query = new Uint8Array([MessageKind.queryAwareness]);
    for (let i = 0; i < STEP1_BURST; i++) conn.receive(query);
    await flushed(server);
    expect(answers()).toBe(greeting + STEP1_BURST);
    expect(socket.closedWith).toBeNull();
    conn.receive(query);
    await flushed(server);
    expect(answers()).toBe(greeting + STEP1_BURST);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(errors).toEqual(['rate_limited']);
  });

  describe('an update that leaves the doc unusable (Yjs’ own cleanup throws)', () => {
    /** Whether Yjs left the doc mid-transaction (it would emit no update again). */
    const unusable = (doc: Y.Doc) => (doc as unknown as { _transactionCleanups: unknown[] })._transactionCleanups.length > 0;
    /** A fresh reader and writer on the room: the writer's edit reaches the reader. */
    const stillSyncs = async (server: SyncServer) => {
      const reader = new MemorySocket();
      const writer = join(server, new MemorySocket());
      join(server, reader);
      await flushed(server);
      writer.receive(updateMessage(spanUpdate('AFTER', 5, 9)));
      await flushed(server);
      return listSpans(reader.doc).map((s) => s.label);
    };

    it('from a peer: the server stays up, stores it, has the room’s peers reconnect, and the fresh room sets it aside', async () => {
      const poison = cleanupPoison();
      const probe = new Y.Doc();
      expect(() => Y.applyUpdate(probe, poison)).toThrow();
      expect(unusable(probe)).toBe(true);
      const errors: string[] = [];
      const store = new MemoryStore();
      const server = new SyncServer({ store, log: silent, limits, observer: { error: (kind) => errors.push(kind) } });
      const readerSocket = new MemorySocket();
      const writerSocket = new MemorySocket();
      const w = join(server, writerSocket);
      join(server, readerSocket);
      await flushed(server);
      w.receive(updateMessage(spanUpdate('BEFORE')));
      await flushed(server);
      const broken = server.rooms.get('doc:1:user:1')!;
      w.receive(updateMessage(poison));
      await flushed(server);
      // (Before, the throw escaped the flush: an unhandled rejection, which ends Node.)
      expect(errors).toContain('room_broken');
      expect(readerSocket.closedWith).toBe(CloseCode.tryAgainLater);
      // Its sender is told not to send it again (its client waits for its person), not to reconnect.
      expect(writerSocket.closedWith).toBe(CloseCode.malformed);
      expect(store.rooms.get('doc:1:user:1')).toHaveLength(2);
      expect(broken.destroyed).toBe(true);
      expect(server.rooms.has('doc:1:user:1')).toBe(false);
      // Reconnecting: a fresh room, whose load sets it aside and fails once; then it is whole.
      expect(await stillSyncs(server)).toEqual([]);
      expect(await stillSyncs(server)).toEqual(['BEFORE', 'AFTER']);
      const room = server.rooms.get('doc:1:user:1')!;
      expect(listSpans(room.doc).map((s) => s.label).sort()).toEqual(['AFTER', 'BEFORE']);
      expect(store.setAsideRows).toHaveLength(1);
    });

    /** A server with two writers on one room, joined. */
    const twoWriters = async () => {
      const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
      const sockets = [new MemorySocket(), new MemorySocket()];
      const [w1, w2] = sockets.map((socket) => join(server, socket)) as [ReturnType<typeof join>, ReturnType<typeof join>];
      await flushed(server);
      return { server, sockets, w1, w2 };
    };

    /** Two writers on a room, the first of which has sent client 777's second edit without its first: held back. */
    const withHeldBack = async () => {
      const { server, sockets, w1, w2 } = await twoWriters();
      const source = new Y.Doc();
      source.clientID = 777;
      source.getText('t').insert(0, 'a');
      const afterFirst = Y.encodeStateVector(source);
      source.getText('t').insert(1, 'b');
      w1.receive(updateMessage(Y.encodeStateAsUpdate(source, afterFirst)));
      await flushed(server);
      expect(server.rooms.get('doc:1:user:1')!.doc.store.pendingStructs).not.toBeNull();
      return { server, sockets, w1, w2, source };
    };

    it('with updates Yjs held back waiting for others: none is blamed (they are tried again in the batch)', async () => {
      const { server, sockets, w2 } = await withHeldBack();
      w2.receive(updateMessage(cleanupPoison()));
      await flushed(server);
      expect(sockets.map((socket) => socket.closedWith)).toEqual([CloseCode.tryAgainLater, CloseCode.tryAgainLater]);
    });

    it('with updates of its own sender held back: the sender is blamed all the same', async () => {
      const { server, sockets, w1, source } = await withHeldBack();
      // The same socket, in one batch: its poison and more of 777's (its own, still waiting).
      const more = Y.encodeStateVector(source);
      source.getText('t').insert(2, 'c');
      const poison = cleanupPoison();
      const poisonClients = new Set(Y.decodeUpdate(poison).structs.map((struct) => struct.id.client));
      expect(poisonClients.has(777)).toBe(false);
      w1.receive(updateMessage(poison));
      w1.receive(updateMessage(Y.encodeStateAsUpdate(source, more)));
      await flushed(server);
      expect(sockets.map((socket) => socket.closedWith)).toEqual([CloseCode.malformed, CloseCode.tryAgainLater]);
    });

    it('sends the sender what its update let through of others’ held-back content', async () => {
      const { server, sockets, w2, source } = await withHeldBack();
      // An update that lets nothing through is not sent back to its sender.
      const before = sockets[1]!.received.length;
      w2.receive(updateMessage(spanUpdate('OTHER')));
      await flushed(server);
      expect(sockets[1]!.received.length).toBe(before);
      expect(listSpans(sockets[0]!.doc).map((s) => s.label)).toEqual(['OTHER']);
      // The second writer sends 777's first edit only: the second, held back, goes in with it.
      const first = new Y.Doc();
      first.clientID = 777;
      first.getText('t').insert(0, 'a');
      w2.receive(updateMessage(Y.encodeStateAsUpdate(first)));
      await flushed(server);
      expect(server.rooms.get('doc:1:user:1')!.doc.store.pendingStructs).toBeNull();
      expect(source.getText('t').toString()).toBe('ab');
      // Both have all of it: the first had sent the second edit, the second had sent neither back.
      expect(sockets.map((socket) => socket.doc.getText('t').toString())).toEqual(['ab', 'ab']);
    });

    it('in a batch of several peers’ updates: none is blamed, all reconnect', async () => {
      const { server, sockets, w1, w2 } = await twoWriters();
      // (Both in the same tick: one batch.)
      w1.receive(updateMessage(spanUpdate('FINE')));
      w2.receive(updateMessage(cleanupPoison()));
      await flushed(server);
      expect(sockets.map((socket) => socket.closedWith)).toEqual([CloseCode.tryAgainLater, CloseCode.tryAgainLater]);
    });

    it('stored: the first load sets it aside and fails (its sockets try again), the next is whole', async () => {
      const store = new MemoryStore();
      await store.append('doc:1:user:1', [spanUpdate('OLD'), cleanupPoison()]);
      const server = new SyncServer({ store, log: silent, limits });
      const first = new MemorySocket();
      join(server, first);
      await flushed(server);
      expect(first.closedWith).toBe(CloseCode.tryAgainLater);
      expect(store.setAsideRows).toHaveLength(1);
      expect(await stillSyncs(server)).toEqual(['OLD', 'AFTER']);
      expect(unusable(server.rooms.get('doc:1:user:1')!.doc)).toBe(false);
    });

    it('stored, several: the first load sets them all aside and fails once, the next is whole with every sound row', async () => {
      const store = new MemoryStore();
      // (With a row before them that throws and leaves the doc whole: set aside by the load.)
      const thrower = findPoison(spanUpdate('BAD', 20, 24));
      const probe = new Y.Doc();
      expect(() => Y.applyUpdate(probe, thrower)).toThrow();
      expect(unusable(probe)).toBe(false);
      await store.append('doc:1:user:1', [spanUpdate('OLD'), thrower, cleanupPoison(), spanUpdate('MID', 5, 9), cleanupPoison(), cleanupPoison(), spanUpdate('NEW', 10, 14)]);
      const logged: string[] = [];
      const log = { ...silent, error: (event: string) => void logged.push(event) };
      const server = new SyncServer({ store, log, limits });
      const first = new MemorySocket();
      join(server, first);
      await server.rooms.get('doc:1:user:1')!.loaded.catch(() => {}); // (it looks ahead, a pass a turn)
      await flushed(server);
      expect(first.closedWith).toBe(CloseCode.tryAgainLater);
      expect(store.setAsideRows).toHaveLength(4);
      expect(logged.filter((e) => e === 'sync_update_set_aside')).toHaveLength(4);
      expect((await stillSyncs(server)).sort()).toEqual(['AFTER', 'MID', 'NEW', 'OLD']);
      expect(unusable(server.rooms.get('doc:1:user:1')!.doc)).toBe(false);
      expect(store.rooms.get('doc:1:user:1')).toHaveLength(4); // (the three sound rows, and AFTER)
    });

    it('stored, while the load sets them aside: what the bus brings is not applied, and the room is not called broken', async () => {
      const { bus, followers } = followingBus();
      const store = new MemoryStore();
      await store.append('doc:1:user:1', [spanUpdate('OLD'), cleanupPoison(), spanUpdate('MID', 5, 9), cleanupPoison()]);
      // Another instance's update arrives as each row is set aside.
      const setAside = store.setAside.bind(store);
      store.setAside = async (...args: Parameters<MemoryStore['setAside']>) => {
        const moved = await setAside(...args);
        followers.get('doc:1:user:1')?.message('update', spanUpdate('BUS', 10, 14));
        return moved;
      };
      const errors: string[] = [];
      const server = new SyncServer({ store, log: silent, limits, bus, observer: { error: (kind) => errors.push(kind) } });
      const first = new MemorySocket();
      join(server, first);
      await server.rooms.get('doc:1:user:1')!.loaded.catch(() => {});
      await flushed(server);
      expect(first.closedWith).toBe(CloseCode.tryAgainLater);
      expect(store.setAsideRows).toHaveLength(2);
      expect(errors).not.toContain('room_broken');
      expect(errors.filter((k) => k === 'set_aside')).toHaveLength(2);
    });

    it('from another instance while the room loads: nothing sound is set aside, the fresh room keeps the bus, the old one goes', async () => {
      const { bus, followers } = followingBus();
      const store = new MemoryStore();
      await store.append('doc:1:user:1', [spanUpdate('OLD')]);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const load = store.load.bind(store);
      let loads = 0;
      store.load = async (room: string) => {
        if (++loads === 1) await gate; // only the first room's load waits
        return load(room);
      };
      // (What the store keeps of a room's log size is the fresh room's by the time the old one goes.)
      const released: string[] = [];
      (store as MemoryStore & { release(room: string): void }).release = (room: string) => void released.push(room);
      const server = new SyncServer({ store, log: silent, limits, bus });
      const first = new MemorySocket();
      join(server, first);
      await tick();
      const old = server.rooms.get('doc:1:user:1')!;
      followers.get('doc:1:user:1')!.message('update', cleanupPoison());
      await flushed(server);
      expect(first.closedWith).toBe(CloseCode.tryAgainLater);
      const reader = new MemorySocket();
      const writer = join(server, new MemorySocket());
      join(server, reader);
      await flushed(server);
      release(); // the old room's load comes back after the fresh room has joined the bus
      await flushed(server);
      writer.receive(updateMessage(spanUpdate('AFTER', 5, 9)));
      await flushed(server);
      expect(store.setAsideRows).toEqual([]);
      expect(store.rooms.get('doc:1:user:1')).toHaveLength(2);
      expect(old.destroyed).toBe(true);
      expect(released).toEqual([]);
      followers.get('doc:1:user:1')!.message('update', spanUpdate('BUS', 10, 14));
      await flushed(server);
      expect(listSpans(reader.doc).map((s) => s.label).sort()).toEqual(['AFTER', 'BUS', 'OLD']);
    });

    it('from another instance while a peer’s update is being stored: the fresh room, loaded before it was, gets it when it is', async () => {
      const { bus, followers } = followingBus();
      const store = new MemoryStore();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const append = store.append.bind(store);
      let appends = 0;
      store.append = async (room: string, updates: readonly Uint8Array[]) => {
        if (++appends === 1) await gate; // the first update's store waits
        return append(room, updates);
      };
      const server = new SyncServer({ store, log: silent, limits, bus });
      const writer = join(server, new MemorySocket());
      await flushed(server);
      writer.receive(updateMessage(spanUpdate('STORED-LATE')));
      await flushed(server);
      // The room breaks while that update is being stored; its sockets reconnect to a fresh
      // room, which loads without it (this instance's bus does not bring back its own).
      followers.get('doc:1:user:1')!.message('update', cleanupPoison());
      await flushed(server);
      const reader = new MemorySocket();
      join(server, reader);
      await flushed(server);
      expect(listSpans(reader.doc)).toEqual([]);
      release();
      await flushed(server);
      expect(store.rooms.get('doc:1:user:1')).toHaveLength(1);
      expect(listSpans(reader.doc).map((s) => s.label)).toEqual(['STORED-LATE']);
      expect(listSpans(server.rooms.get('doc:1:user:1')!.doc).map((s) => s.label)).toEqual(['STORED-LATE']);
    });

    it('from another instance: the room is let go of as when a peer sends it', async () => {
      const listeners: BusListener[] = [];
      const bus = {
        async join(_room: string, listener: BusListener) {
          listeners.push(listener);
        },
        leave() {},
        publish() {},
        async close() {},
      } satisfies SyncBus;
      const store = new MemoryStore();
      const server = new SyncServer({ store, log: silent, limits, bus });
      const readerSocket = new MemorySocket();
      join(server, readerSocket);
      await flushed(server);
      listeners.at(-1)!.message('update', cleanupPoison());
      await flushed(server);
      expect(readerSocket.closedWith).toBe(CloseCode.tryAgainLater);
      // (Not stored here: what another instance publishes is its to store.)
      expect(await stillSyncs(server)).toEqual(['AFTER']);
    });
  });

  it('sends on only what its own Yjs integrated from an update that throws, and goes on', async () => {
    // An update that decodes but throws when applied: one byte of a valid update changed.
    const seed = new Y.Doc();
    seed.clientID = 7;
    addSpan(seed, { label: 'PERSON', start: 0, end: 4, quote: 'text', author: 1 });
    const valid = Y.encodeStateAsUpdate(seed);
    const poison = findPoison(valid);
    const errors: string[] = [];
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits, observer: { error: (kind) => errors.push(kind) } });
    const reader = new MemorySocket();
    const w = server.connect(new MemorySocket(), info());
    const other = server.connect(new MemorySocket(), info());
    server.connect(reader, info());
    await flushed(server);
    // The reader applies what it is sent (MemorySocket.send): were it sent the raw update, the
    // throw would surface here. Another writer's update in the same batch still goes through.
    w.receive(updateMessage(poison));
    other.receive(updateMessage(spanUpdate('GPE')));
    await flushed(server);
    expect(errors).toEqual(['apply_failed']);
    expect(listSpans(reader.doc).map((s) => s.label)).toContain('GPE');
    const room = server.rooms.get('doc:1:user:1')!;
    expect(Y.encodeStateVector(reader.doc)).toEqual(Y.encodeStateVector(room.doc));
    expect(reader.doc.store.pendingStructs).toBeNull();
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(2); // kept, for loading to set aside
    w.receive(updateMessage(spanUpdate('ORG')));
    await flushed(server);
    expect(listSpans(reader.doc).map((s) => s.label).sort()).toEqual(['GPE', 'ORG']);
  });

  it('keeps sending to the others when one peer’s send throws', async () => {
    const errors: string[] = [];
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, observer: { error: (kind) => errors.push(kind) } });
    const broken = new MemorySocket();
    server.connect(broken, info());
    const reader = new MemorySocket();
    const w = server.connect(new MemorySocket(), info());
    server.connect(reader, info());
    await flushed(server);
    // Joined first, so it comes first in every broadcast; from now on its sends throw.
    broken.send = () => {
      throw new Error('socket gone');
    };
    w.receive(updateMessage(spanUpdate('PERSON')));
    await flushed(server);
    w.receive(updateMessage(spanUpdate('ORG')));
    await flushed(server);
    expect(listSpans(reader.doc).map((s) => s.label).sort()).toEqual(['ORG', 'PERSON']);
    expect(errors).toContain('broadcast_failed');
  });

  it('does not send on what the room already holds (a reconnecting client resends its state)', async () => {
    const { server, w, reader } = await writerAndReader();
    const doc = new Y.Doc();
    addSpan(doc, { label: 'GPE', start: 0, end: 3, quote: 'The', author: 1 });
    const id = addSpan(doc, { label: 'ORG', start: 4, end: 6, quote: 'ab', author: 1 });
    doc.transact(() => annotationsMap(doc).delete(id)); // a delete set, resent in every step 2
    w.receive(updateMessage(Y.encodeStateAsUpdate(doc)));
    await flushed(server);
    const before = reader.received.length;
    w.receive(updateMessage(Y.encodeStateAsUpdate(doc)));
    await flushed(server);
    expect(reader.received.length).toBe(before);
    expect(listSpans(reader.doc).map((s) => s.label)).toEqual(['GPE']);
  });

  it('broadcasts nothing while the store fails, and everything once it recovers', async () => {
    const { store, server, w, reader } = await writerAndReader();
    store.failing = true;
    w.receive(updateMessage(spanUpdate('PERSON')));
    w.receive(updateMessage(spanUpdate('ORG')));
    await new Promise((r) => setTimeout(r, 250));
    expect(listSpans(reader.doc)).toHaveLength(0);
    expect(server.rooms.get('doc:1:user:1')?.pendingCount).toBe(2);
    // The readers are told that saving is delayed, through the server's awareness state.
    const room = server.rooms.get('doc:1:user:1')!;
    expect(room.awareness.getLocalState()).toMatchObject({ server: { saving: 'delayed', queued: 2 } });
    expect(reader.received.some((m) => m[0] === MessageKind.awareness)).toBe(true);
    store.failing = false;
    await new Promise((r) => setTimeout(r, 500));
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(2);
    expect(listSpans(reader.doc).map((s) => s.label).sort()).toEqual(['ORG', 'PERSON']);
    expect(room.awareness.getLocalState()).toBeNull();
  });

  it('bounds what waits to be stored: past the room’s share or the server’s, a writer is closed with 1013, and nothing queued is lost', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxQueuedBytesPerRoom: 4_000, maxQueuedBytes: 5_200 } });
    /** An update of about a kilobyte. */
    const kilo = (label: string) => {
      const doc = new Y.Doc();
      addSpan(doc, { label, start: 0, end: 4, quote: 'q'.repeat(900), author: 1 });
      return Y.encodeStateAsUpdate(doc);
    };
    const a = new MemorySocket();
    const connA = join(server, a, info('doc:1:user:1'));
    const b = new MemorySocket();
    const connB = join(server, b, info('doc:2:user:1'));
    await flushed(server);
    store.failing = true;
    const sent: Record<string, string[]> = { a: [], b: [] };
    const send = (conn: typeof connA, who: 'a' | 'b', label: string) => {
      conn.receive(updateMessage(kilo(label)));
      sent[who]!.push(label);
    };
    for (let i = 0; i < 5 && a.closedWith === null; i++) {
      send(connA, 'a', `A${i}`);
      await tick();
    }
    expect(a.closedWith).toBe(CloseCode.tryAgainLater); // the room's 4,000 bytes
    const roomA = server.rooms.get('doc:1:user:1')!;
    expect(roomA.pendingCount).toBe(sent.a!.length - 1);
    expect(roomA.heldBytes).toBeLessThanOrEqual(4_000);
    for (let i = 0; i < 5 && b.closedWith === null; i++) {
      send(connB, 'b', `B${i}`);
      await tick();
    }
    expect(b.closedWith).toBe(CloseCode.tryAgainLater); // the server's 5,200 bytes
    expect(server.backlog.bytes).toBeLessThanOrEqual(5_200);
    expect(server.rooms.get('doc:2:user:1')!.pendingCount).toBeLessThan(roomA.pendingCount);
    store.failing = false;
    await new Promise((r) => setTimeout(r, 500));
    // Everything queued was stored, and the bounds are free again.
    const labels = (room: string) => {
      const doc = new Y.Doc();
      for (const row of store.rooms.get(room) ?? []) Y.applyUpdate(doc, row.data);
      return listSpans(doc).map((sp) => sp.label).sort();
    };
    expect(labels('doc:1:user:1')).toEqual(sent.a!.slice(0, -1).sort());
    expect(labels('doc:2:user:1')).toEqual(sent.b!.slice(0, -1).sort());
    expect(server.backlog.bytes).toBe(0);
    const c = new MemorySocket();
    join(server, c, info('doc:3:user:1')).receive(updateMessage(kilo('C')));
    await flushed(server);
    expect(labels('doc:3:user:1')).toEqual(['C']);
    expect(c.closedWith).toBeNull();
  });

  it('counts what each queued update costs beyond its bytes toward the bound, and stores a long queue in bounded batches', async () => {
    const store = new MemoryStore();
    const perRoom = 1024 * 1024;
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxMessagesPerSecond: 10_000_000, maxQueuedBytesPerRoom: perRoom, maxQueuedBytes: 4 * perRoom } });
    const writer = new MemorySocket();
    const w = join(server, writer);
    await flushed(server);
    // The smallest update there is: a delete of one item (a handful of bytes).
    const doc = new Y.Doc();
    doc.getArray('a').insert(0, [1]);
    let tiny!: Uint8Array;
    doc.once('update', (u: Uint8Array) => (tiny = u));
    doc.getArray('a').delete(0, 1);
    expect(tiny.byteLength).toBeLessThan(16);
    store.failing = true;
    globalThis.gc!();
    const heapBefore = process.memoryUsage().heapUsed;
    const frame = updateMessage(tiny);
    // (Read a thousand at a time, as a socket's frames come in reads of many.)
    for (let i = 0; i < 200_000 && writer.closedWith === null; i++) {
      w.receive(frame);
      if (i % 1_000 === 999) await tick();
    }
    await flushed(server);
    expect(writer.closedWith).toBe(CloseCode.tryAgainLater);
    const room = server.rooms.get('doc:1:user:1')!;
    expect(room.pendingCount).toBeLessThanOrEqual(perRoom / (tiny.byteLength + ENTRY_OVERHEAD_BYTES));
    globalThis.gc!();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(3 * perRoom);
    // Back, the store takes the queue in batches, each applied on its own.
    const batches: number[] = [];
    const append = store.append.bind(store);
    store.append = (name: string, updates: readonly Uint8Array[]) => {
      batches.push(updates.length);
      return append(name, updates);
    };
    const queued = room.pendingCount;
    store.failing = false;
    await vi.waitFor(() => expect(room.busy).toBe(false), { timeout: 15_000, interval: 20 }); // (the retry waits up to 5 s)
    expect(batches.reduce((a, b) => a + b, 0)).toBe(queued);
    expect(Math.max(...batches)).toBeLessThanOrEqual(MAX_BATCH_UPDATES);
    expect(batches.length).toBeGreaterThan(1);
    expect(server.backlog.bytes).toBe(0);
  });

  it('counts each run of structs a queued update keeps: an update of many one-item runs holds far more than its bytes', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxQueuedBytesPerRoom: 400_000, maxQueuedBytes: 1_600_000 } });
    // 10,000 writers' one-item inserts, merged: a few bytes a run.
    const many = Y.mergeUpdates(
      Array.from({ length: 10_000 }, (_, i) => {
        const d = new Y.Doc();
        d.clientID = i + 1;
        d.getArray('a').insert(0, [i]);
        return Y.encodeStateAsUpdate(d);
      }),
    );
    expect(many.byteLength).toBeLessThan(200_000);
    const one = spanUpdate('x'.repeat(many.byteLength)); // as many bytes and more, in one run
    const [a, b] = [new MemorySocket(), new MemorySocket()];
    const wa = join(server, a, info('doc:1:user:1'));
    const wb = join(server, b, info('doc:2:user:1'));
    await flushed(server);
    store.failing = true;
    wa.receive(updateMessage(one));
    wb.receive(updateMessage(many));
    await flushed(server);
    expect(a.closedWith).toBeNull();
    expect(b.closedWith).toBe(CloseCode.tryAgainLater); // its 10,000 runs counted: past the room's bound
    expect(server.backlog.bytes).toBe(queuedBytes(one.byteLength, 1));
    store.failing = false;
    await vi.waitFor(() => expect(server.rooms.get('doc:1:user:1')!.busy).toBe(false), { timeout: 15_000, interval: 20 });
    expect(server.backlog.bytes).toBe(0);
  });

  it('lets frames that store nothing through a full backlog: a viewer still syncs', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024, maxQueuedBytesPerRoom: 4_000, maxQueuedBytes: 6_000 } });
    const writer = new MemorySocket();
    const w = join(server, writer);
    await flushed(server);
    store.failing = true;
    for (let i = 0; i < 20 && writer.closedWith === null; i++) {
      w.receive(updateMessage(spanUpdate(`W${i}`.padEnd(600, '.'))));
      await tick();
    }
    expect(writer.closedWith).toBe(CloseCode.tryAgainLater);
    const viewer = new MemorySocket();
    const v = join(server, viewer, info('doc:1:user:1', true));
    await flushed(server);
    // Each larger than what the room has left (under 700 bytes).
    v.receive(updateMessage(spanUpdate('DROPPED'.padEnd(1_000, '.')))); // a viewer's edit: dropped, not held
    const tab = new awarenessProtocol.Awareness(new Y.Doc());
    tab.setLocalState({ user: 'viewer'.padEnd(1_000, '.') });
    v.receive(ownPresence(tab));
    await flushed(server);
    expect(viewer.closedWith).toBeNull();
    expect(viewer.received.some((m) => m[0] === MessageKind.sync && m[1] === syncProtocol.messageYjsSyncStep2)).toBe(true);
    store.failing = false;
  });

  it('bounds any frames a socket has waiting for its room to load, a viewer’s too', async () => {
    const store = new MemoryStore();
    store.load = () => new Promise(() => {}); // never answers
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxMessageBytes: 10_000 } });
    const viewer = new MemorySocket();
    const conn = server.connect(viewer, info('doc:1:user:1', true));
    const junk = new Uint8Array(9_000); // neither an update nor anything the room stores
    for (let i = 0; i < 5 && viewer.closedWith === null; i++) conn.receive(junk);
    expect(viewer.closedWith).toBe(CloseCode.tryAgainLater); // past 2 × the largest message
  });

  it('lets a page’s greeting of small frames wait for its room when the largest message is small', async () => {
    const store = new MemoryStore();
    store.load = () => new Promise(() => {}); // never answers
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxMessageBytes: 1_024 } });
    const page = new MemorySocket();
    // A sync step 1, presence, a reply with nothing in it, each a few dozen bytes: bookkeeping
    // and all, past twice the largest message after three.
    const conn = join(server, page, info('doc:1:user:1', true));
    const tab = new awarenessProtocol.Awareness(new Y.Doc());
    tab.setLocalState({ user: 'alice' });
    for (let i = 0; i < 20; i++) conn.receive(ownPresence(tab));
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, MessageKind.sync);
    syncProtocol.writeSyncStep2(reply, new Y.Doc());
    conn.receive(encoding.toUint8Array(reply));
    expect(page.closedWith).toBeNull();
    // Still bounded: past the bookkeeping of WAITING_FRAMES_PER_SOCKET frames besides.
    for (let i = 0; i < WAITING_FRAMES_PER_SOCKET && page.closedWith === null; i++) conn.receive(ownPresence(tab));
    expect(page.closedWith).toBe(CloseCode.tryAgainLater);
  });

  it('bounds the frames that store nothing waiting across every socket (viewers’ edits, sync requests), apart from the updates', async () => {
    const store = new MemoryStore();
    store.load = () => new Promise(() => {}); // never answers
    const edit = updateMessage(spanUpdate('V'.repeat(8_000))); // a viewer's: dropped once its turn comes
    const held = edit.byteLength + ENTRY_OVERHEAD_BYTES;
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxMessageBytes: 10_000, maxWaitingFrameBytes: 2 * held + 100 } });
    // (Three users, each within their own share.)
    const viewers = Array.from({ length: 3 }, () => new MemorySocket());
    const conns = viewers.map((v, i) => server.connect(v, { room: `doc:${i + 1}:user:${i + 1}`, userId: i + 1, readOnly: true }));
    conns[0]!.receive(edit);
    conns[1]!.receive(edit);
    expect(viewers.map((v) => v.closedWith)).toEqual([null, null, null]);
    expect(server.backlog.frameBytes).toBe(2 * held);
    conns[2]!.receive(edit); // each socket within its own bound, all of them past the server's
    expect(viewers.map((v) => v.closedWith)).toEqual([null, null, CloseCode.tryAgainLater]);
    expect(server.backlog.frameBytes).toBe(2 * held);
    // A writer's update is held against the backlog of updates, not this bound.
    const writer = new MemorySocket();
    server.connect(writer, info('doc:9:user:1')).receive(updateMessage(spanUpdate('W'.repeat(8_000))));
    expect(writer.closedWith).toBeNull();
    expect(server.backlog.bytes).toBeGreaterThan(8_000);
    // Let go of as their sockets close.
    conns[0]!.close(1000, 'bye');
    expect(server.backlog.frameBytes).toBe(held);
    conns[1]!.closedByPeer();
    expect(server.backlog.frameBytes).toBe(0);
  });

  it('lets one user hold no more than a share of that bound: their socket is refused, not another user’s', async () => {
    const store = new MemoryStore();
    store.load = () => new Promise(() => {}); // never answers
    // The smallest bound the config allows: a share (a quarter) holds what one socket may have waiting.
    const share = socketFrameBound(10_000);
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxMessageBytes: 10_000, maxWaitingFrameBytes: 4 * share } });
    const edit = updateMessage(spanUpdate('V'.repeat(8_000))); // a viewer's
    const held = edit.byteLength + ENTRY_OVERHEAD_BYTES;
    const fit = Math.floor(share / held); // (four)
    const own = Array.from({ length: fit + 1 }, () => new MemorySocket());
    own.forEach((socket, i) => server.connect(socket, info(`doc:${i + 1}:user:1`, true)).receive(edit));
    // The frame past user 1's share is refused, on a socket of theirs.
    expect(own.map((s) => s.closedWith)).toEqual([...own.slice(1).map(() => null), CloseCode.tryAgainLater]);
    const other = new MemorySocket();
    server.connect(other, { room: 'doc:1:user:2', userId: 2, readOnly: true }).receive(edit);
    expect(other.closedWith).toBeNull();
    expect(server.backlog.frameBytes).toBe((fit + 1) * held);
  });

  it('holds the frames that wait for a room to load against the same bound', async () => {
    const store = new MemoryStore();
    const release = holdLoads(store);
    const server = new SyncServer({ store, log: silent, limits: { ...limits, maxQueuedBytesPerRoom: 4_000, maxQueuedBytes: 6_000 } });
    const a = new MemorySocket();
    const conn = join(server, a);
    const frame = updateMessage(spanUpdate('X'.repeat(1_000)));
    for (let i = 0; i < 10 && a.closedWith === null; i++) conn.receive(frame);
    expect(a.closedWith).toBe(CloseCode.tryAgainLater);
    expect(server.backlog.bytes).toBe(0); // a refused socket's waiting frames are let go of at once
    release();
    await flushed(server);
    expect(server.backlog.bytes).toBe(0);
  });

  it('says saving is delayed while a store takes longer than the notice delay, and withdraws it once stored', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    class HangingStore extends MemoryStore {
      hang = false;
      override async append(room: string, updates: readonly Uint8Array[]): Promise<void> {
        if (this.hang) await gate;
        return super.append(room, updates);
      }
    }
    const store = new HangingStore();
    const server = new SyncServer({ store, log: silent, limits, storeDelayNoticeMs: 50 });
    const reader = new MemorySocket();
    const w = server.connect(new MemorySocket(), info());
    server.connect(reader, info());
    await flushed(server);
    store.hang = true;
    w.receive(updateMessage(spanUpdate('PERSON')));
    const room = server.rooms.get('doc:1:user:1')!;
    await new Promise((r) => setTimeout(r, 20));
    expect(room.awareness.getLocalState()).toBeNull(); // not yet: slow is not yet late
    await new Promise((r) => setTimeout(r, 100));
    expect(room.awareness.getLocalState()).toMatchObject({ server: { saving: 'delayed', queued: 1 } });
    expect(listSpans(reader.doc)).toHaveLength(0);
    release();
    await flushed(server);
    expect(listSpans(reader.doc).map((s) => s.label)).toEqual(['PERSON']);
    expect(room.awareness.getLocalState()).toBeNull();
  });

  it('closes the sockets of a room that fails to load, destroys the room, and loads it afresh later', async () => {
    const store = new MemoryStore();
    await store.append('doc:1:user:1', [spanUpdate('GPE')]);
    store.failing = true;
    const server = new SyncServer({ store, log: silent, limits });
    const a = new MemorySocket();
    join(server, a);
    const failed = server.rooms.get('doc:1:user:1')!;
    await flushed(server);
    expect(a.closedWith).toBe(CloseCode.tryAgainLater);
    expect(server.rooms.has('doc:1:user:1')).toBe(false);
    expect(failed.destroyed).toBe(true);
    store.failing = false;
    const b = new MemorySocket();
    join(server, b);
    await flushed(server);
    expect(listSpans(b.doc).map((s) => s.label)).toEqual(['GPE']);
  });

  it('stores nothing from a peer that left while its room failed to load', async () => {
    const store = new MemoryStore();
    store.failing = true;
    const server = new SyncServer({ store, log: silent, limits });
    const socket = new MemorySocket();
    const conn = join(server, socket);
    conn.receive(updateMessage(spanUpdate('LEFT')));
    conn.closedByPeer();
    await flushed(server);
    expect(server.rooms.size).toBe(0);
    store.failing = false;
    await new Promise((r) => setTimeout(r, 300)); // past the first retry of a room left storing
    expect(store.appendCalls).toBe(0);
    expect(store.rooms.size).toBe(0);
  });

  it('closes a socket whose awareness update is over the cap with 1009', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    conn.receive(awarenessMessage(new Uint8Array(limits.maxAwarenessBytes + 1)));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.tooBig);
  });

  it('refuses a presence state nested too deeply to be written back (4400): it is not kept, and newcomers are greeted', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    server.connect(new MemorySocket(), info()); // (keeps the room open throughout)
    await flushed(server);
    // 10 KB, parsed whole, but too deep for JSON.stringify (which the room and y-protocols use on it).
    const depth = 5_000;
    const deep = `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    expect(() => JSON.stringify(JSON.parse(deep))).toThrow(RangeError);
    conn.receive(awarenessMessage(writePresenceEntries([{ id: 4242, clock: 1, state: deep }])));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.malformed);
    const room = server.rooms.get('doc:1:user:1')!;
    expect(room.awareness.getStates().has(4242)).toBe(false);
    // A newcomer is greeted (before, every greeting threw on it and closed the socket with 1013).
    const late = new MemorySocket();
    server.connect(late, info());
    await flushed(server);
    expect(late.closedWith).toBeNull();
    expect(late.received.length).toBeGreaterThan(0);
    // Deeper than any page's (40 levels, which JSON.stringify takes, but deeper in the stack it
    // may not): refused the same, whatever the stack holds where it is written back.
    const nested = new MemorySocket();
    server.connect(nested, info()).receive(awarenessMessage(writePresenceEntries([{ id: 4244, clock: 1, state: `{"a":${'['.repeat(40)}${']'.repeat(40)}}` }])));
    await flushed(server);
    expect(nested.closedWith).toBe(CloseCode.malformed);
    // The page's own shape, a few levels deep, is shown.
    const tab = new MemorySocket();
    server.connect(tab, info()).receive(rawPresence([[4343, 1, { user: { id: 1, name: 'a' }, selection: { anchor: { type: [1, 2], item: [3, 4] } } }]]));
    await flushed(server);
    expect(tab.closedWith).toBeNull();
    expect(room.awareness.getStates().has(4343)).toBe(true);
  });

  it('sizes a presence state as the room writes it, not as it was sent ("1e20" is 21 digits)', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits }); // (1 KiB of presence per socket)
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    server.connect(new MemorySocket(), info());
    await flushed(server);
    const text = `{"n":[${Array.from({ length: 60 }, () => '1e20').join(',')}]}`;
    expect(text.length).toBeLessThan(limits.maxAwarenessBytes);
    expect(JSON.stringify(JSON.parse(text)).length).toBeGreaterThan(limits.maxAwarenessBytes);
    conn.receive(awarenessMessage(writePresenceEntries([{ id: 4242, clock: 1, state: text }])));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.tooBig);
    expect(server.rooms.get('doc:1:user:1')!.awareness.getStates().has(4242)).toBe(false);
  });

  it('closes a socket that introduces more presence ids than one client has, and removes them', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    const reader = new MemorySocket();
    server.connect(reader, info());
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    for (let i = 0; i <= MAX_AWARENESS_CLIENTS; i++) {
      const fake = new awarenessProtocol.Awareness(new Y.Doc());
      fake.setLocalState({ user: `u${i}` });
      conn.receive(ownPresence(fake));
      fake.destroy();
      await flushed(server);
      if (i < MAX_AWARENESS_CLIENTS) expect(socket.closedWith).toBeNull();
    }
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(room.awareness.getStates().size).toBe(0);
  });

  it('bounds the presence one socket holds (closed past it), a user’s sockets in a room and the room (a message past those is left unapplied)', async () => {
    const errors: string[] = [];
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, observer: { error: (kind) => errors.push(kind) } }); // (presence messages of 1 KiB at most)
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    server.connect(new MemorySocket(), info()); // (keeps the room open throughout)
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    const big = (id: number, clock: number, size: number) => rawPresence([[id, clock, { user: 'x'.repeat(size) }]]);
    conn.receive(big(1, 1, 600));
    await flushed(server);
    conn.receive(big(1, 2, 700)); // the same state, larger: the socket holds one of 700
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    expect(room.presenceBytes).toBe(JSON.stringify({ user: 'x'.repeat(700) }).length);
    conn.receive(big(2, 1, 600)); // a second beside it: past 1 KiB together
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.tooBig);
    expect([...room.awareness.getStates().keys()]).not.toContain(2);
    expect(room.presenceBytes).toBe(0); // (its states removed as it went)

    /** A socket of `userId`'s in the room that shows presence id `id` (1,011 bytes of JSON). */
    const shows = async (userId: number, id: number) => {
      const s = new MemorySocket();
      const c = server.connect(s, { room: 'doc:1:user:1', userId, readOnly: false });
      await flushed(server);
      c.receive(big(id, 1, 1_000));
      await flushed(server);
      expect(s.closedWith).toBeNull(); // (whether it is shown or not: the socket stays)
      return { c, shown: room.awareness.getStates().has(id) };
    };
    // One user's sockets: USER_PRESENCE_MESSAGES of them fit, the next is not shown.
    const ofUser1 = [];
    for (let i = 0; i < USER_PRESENCE_MESSAGES; i++) ofUser1.push(await shows(1, 100 + i));
    expect(ofUser1.map((s) => s.shown)).toEqual(ofUser1.map(() => true));
    expect((await shows(1, 150)).shown).toBe(false);
    expect(errors.filter((e) => e === 'presence_dropped')).toHaveLength(1);
    // The room: ROOM_PRESENCE_MESSAGES over every user (sixteen of 1,011 bytes); then no one's new presence.
    const others = [];
    for (let user = 2; user < 2 + ROOM_PRESENCE_MESSAGES - USER_PRESENCE_MESSAGES; user++) others.push(await shows(user, 200 + user));
    expect(others.map((s) => s.shown)).toEqual(others.map(() => true));
    expect((await shows(99, 299)).shown).toBe(false);
    expect(room.presenceBytes).toBeLessThanOrEqual(ROOM_PRESENCE_MESSAGES * limits.maxAwarenessBytes);
    // Removing is always let through; a socket that went makes room for another.
    others[0]!.c.closedByPeer();
    expect((await shows(98, 298)).shown).toBe(true);
  });

  it('applies nothing of a presence message past the caps: a flood of ids with no state leaves the room no memory of them', async () => {
    const { server, socket, conn, room } = await presenceRoom();
    const before = room.awareness.meta.size;
    // 5,000 ids, each "removed" (state null): y-protocols would remember every one.
    conn.receive(rawPresence(range(1, 5_000).map((id) => [id, 1, null] as const)));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(room.awareness.meta.size).toBe(before);
  });

  it('does not count what y-protocols would ignore: a newcomer echoing the room’s 20 presence states stays', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const peers = Array.from({ length: 20 }, () => new MemorySocket());
    const conns = peers.map((p) => join(server, p));
    await flushed(server);
    conns.forEach((conn, i) => {
      const tab = new awarenessProtocol.Awareness(new Y.Doc());
      tab.setLocalState({ user: `u${i}` });
      conn.receive(ownPresence(tab));
    });
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    expect(room.awareness.getStates().size).toBe(20);
    // A newcomer's provider sends back every state it was greeted with, clocks unchanged.
    const newcomer = new MemorySocket();
    const conn = join(server, newcomer);
    await flushed(server);
    const echo = awarenessProtocol.encodeAwarenessUpdate(room.awareness, [...room.awareness.getStates().keys()]);
    conn.receive(awarenessMessage(echo));
    await flushed(server);
    expect(newcomer.closedWith).toBeNull();
  });

  it('closes a socket that sets states and, in the same message, "removes" them with older clocks y-protocols ignores', async () => {
    const { server, socket, conn, room } = await presenceRoom();
    // Each "removal" has an older clock: y-protocols keeps the state.
    conn.receive(rawPresence(range(1, 20).flatMap((id) => [[id, 5, { user: `fake${id}` }], [id, 1, null]] as const)));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(room.awareness.getStates().size).toBe(0);
  });

  it('checks presence against what y-protocols will apply once long-gone ids are forgotten', async () => {
    const { server, socket, conn, room } = await presenceRoom();
    // 1,100 ids shown long ago at clock 100, gone since: about to be forgotten.
    for (const id of range(1, 1_100)) room.awareness.meta.set(id, { clock: 100, lastUpdated: 0 });
    // States for 20 of them at clock 50: stale against clock 100, new once those are forgotten.
    conn.receive(rawPresence(range(1, 20).map((id) => [id, 50, { user: `u${id}` }] as const)));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(room.awareness.getStates().size).toBe(0);
  });

  it('refuses a peer that shows a state for the server’s own presence id', async () => {
    const { server, socket, conn, room } = await presenceRoom();
    // A provider echoes the server's notice back as it received it: that is no offence.
    room.awareness.setLocalState({ server: { saving: 'delayed', queued: 1 } });
    conn.receive(awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(room.awareness, [room.awareness.clientID])));
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    room.awareness.setLocalState(null);
    conn.receive(rawPresence([[room.awareness.clientID, 99, { server: { saving: 'delayed', queued: 0 } }]]));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.malformed);
    expect(room.awareness.getLocalState()).toBeNull();
  });

  it('drops a peer’s removal of the server’s own presence id: a clock near 2^53 would leave its notices unheard', async () => {
    const { server, socket, conn, room } = await presenceRoom();
    const own = room.awareness.clientID;
    for (const notice of [null, { server: { saving: 'delayed', queued: 1 } }]) {
      room.awareness.setLocalState(notice);
      const clock = room.awareness.meta.get(own)?.clock ?? 0;
      conn.receive(rawPresence([[own, Number.MAX_SAFE_INTEGER, null]]));
      await flushed(server);
      expect(socket.closedWith).toBeNull();
      expect(room.awareness.meta.get(own)?.clock ?? 0).toBe(clock);
      expect(room.awareness.getLocalState()).toEqual(notice);
    }
    // The next notice still goes out with a clock that rose.
    const before = room.awareness.meta.get(own)!.clock;
    room.awareness.setLocalState({ server: { saving: 'delayed', queued: 2 } });
    expect(room.awareness.meta.get(own)!.clock).toBe(before + 1);
  });

  it('keeps a user’s presence set on another instance from being taken over or removed by another user’s socket here, not from that user’s own', async () => {
    const { bus, followers } = followingBus();
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 }, bus });
    const one = new MemorySocket();
    const conn = join(server, one); // user 1
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    // User 2's presence (id 42) and user 1's from another tab (id 43), from another instance.
    followers.get('doc:1:user:1')!.message('awareness', presenceUpdate([[42, 1, { user: { id: 2 }, selection: 'a' }], [43, 1, { user: { id: 1 } }]]));
    expect(room.awareness.getStates().get(42)).toEqual({ user: { id: 2 }, selection: 'a' });
    // User 1's socket: a state for 42 that names no one, at a far higher clock; then its removal.
    conn.receive(rawPresence([[42, 2 ** 40, { selection: null }]]));
    conn.receive(rawPresence([[42, 2 ** 40 + 1, null]]));
    // Its own, from the other instance: taken over (a client that moved instances).
    conn.receive(rawPresence([[43, 2, { user: { id: 1 }, cursor: 3 }]]));
    await flushed(server);
    expect(one.closedWith).toBeNull();
    expect(room.awareness.getStates().get(42)).toEqual({ user: { id: 2 }, selection: 'a' });
    expect(room.awareness.getStates().get(43)).toEqual({ user: { id: 1 }, cursor: 3 });
    expect(room.holderOf(43)).toBe(conn);
    expect(room.holderOf(42)).toBeUndefined();
  });

  it('drops presence states a peer may not set — one that speaks for the server, one that shows another user — and applies the rest', async () => {
    const { server, socket, conn, room } = await presenceRoom(); // info() is user 1
    conn.receive(
      rawPresence([
        [7, 1, { user: { id: 1, name: 'me', color: '#000' } }],
        [8, 1, { user: { id: 2, name: 'dana', color: '#000' } }], // dana's, relayed (or made up)
        [9, 1, { user: { id: 1, name: 'me', color: '#000' }, server: { saving: 'delayed', queued: 3 } }],
      ]),
    );
    await flushed(server);
    // Dropped, not refused: a provider passes on states it learnt elsewhere (another tab, on
    // another instance, may be ahead of this one).
    expect(socket.closedWith).toBeNull();
    expect(room.awareness.getStates().get(7)).toMatchObject({ user: { id: 1 } });
    expect(room.awareness.getStates().has(8)).toBe(false);
    expect(room.awareness.getStates().has(9)).toBe(false);
    expect([...room.awareness.getStates().values()].some((s) => 'server' in s)).toBe(false);
    conn.receive(rawPresence([[8, 2, { user: { id: 2, name: 'dana', color: '#000' } }]]));
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    expect(room.awareness.getStates().has(8)).toBe(false);
  });

  it('drops a presence state that shows the socket’s own user id under another name, where the session’s username is known', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const socket = new MemorySocket();
    const conn = join(server, socket, { ...info(), userName: 'bob' });
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    conn.receive(
      rawPresence([
        [7, 1, { user: { id: 1, name: 'bob', color: '#000' } }],
        [8, 1, { user: { id: 1, name: 'dana (curator)', color: '#000' } }], // a name the page would show, were the id not a member it knows
        [9, 1, { user: { name: 'anyone' } }], // no id: no page shows it
      ]),
    );
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    expect(room.awareness.getStates().get(7)).toMatchObject({ user: { id: 1, name: 'bob' } });
    expect(room.awareness.getStates().has(8)).toBe(false);
    expect(room.awareness.getStates().has(9)).toBe(true);
  });

  it("takes no one's presence over: another user's socket can neither set nor remove a state a socket of theirs holds", async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    const bobSocket = new MemorySocket();
    const bob = join(server, bobSocket, { room: 'doc:1:gold', userId: 2, readOnly: false });
    const alice = join(server, new MemorySocket(), { room: 'doc:1:gold', userId: 1, readOnly: false });
    const aliceTab = join(server, new MemorySocket(), { room: 'doc:1:gold', userId: 1, readOnly: false });
    await flushed(server);
    const room = server.rooms.get('doc:1:gold')!;
    bob.receive(rawPresence([[20, 1, { user: { id: 2 }, cursor: 3 }]]));
    alice.receive(rawPresence([[10, 1, { user: { id: 1 }, cursor: 5 }]]));
    await flushed(server);
    // A state with no user (or alice's) for bob's id, and then a removal of it: both dropped.
    alice.receive(rawPresence([[20, 5, { cursor: 99 }]]));
    alice.receive(rawPresence([[20, 6, { user: { id: 1 } }]]));
    alice.receive(rawPresence([[20, 7, null]]));
    await flushed(server);
    expect(alice.closed).toBe(false);
    expect(room.awareness.getStates().get(20)).toEqual({ user: { id: 2 }, cursor: 3 });
    // Alice's other tab may speak for her state (it relays what her first tab shows), and bob
    // still goes when his socket does.
    aliceTab.receive(rawPresence([[10, 2, { user: { id: 1 }, cursor: 6 }]]));
    await flushed(server);
    expect(room.awareness.getStates().get(10)).toEqual({ user: { id: 1 }, cursor: 6 });
    bob.close(1000, 'bye');
    await flushed(server);
    expect(room.awareness.getStates().has(20)).toBe(false);
  });

  it('never forgets its own presence id (its clock must keep rising for peers to listen)', () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    join(server, new MemorySocket());
    const room = server.rooms.get('doc:1:user:1')!;
    room.awareness.setLocalState({ server: { saving: 'delayed', queued: 1 } });
    room.awareness.setLocalState(null);
    for (let id = 1; id <= 1_100; id++) room.awareness.meta.set(id, { clock: 1, lastUpdated: 0 });
    room.forgetOldPresence(Date.now() + 10 * awarenessProtocol.outdatedTimeout);
    expect(room.awareness.meta.has(room.awareness.clientID)).toBe(true);
    expect(room.awareness.meta.size).toBe(1);
  });

  it('forgets presence ids long gone once it remembers many', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const sockets = Array.from({ length: 6 }, () => new MemorySocket());
    const conns = sockets.map((s) => join(server, s));
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    // Each socket shows 200 ids and takes them away: 1,200 remembered, none live.
    let next = 1;
    for (const conn of conns) {
      conn.receive(rawPresence(range(next, next + 199).map((id) => [id, 1, null] as const)));
      next += 200;
    }
    await flushed(server);
    expect(sockets.map((s) => s.closedWith)).toEqual(sockets.map(() => null));
    expect(room.awareness.meta.size).toBeGreaterThanOrEqual(1_200);
    room.forgetOldPresence(Date.now() + 10_000); // too recent: kept
    expect(room.awareness.meta.size).toBeGreaterThanOrEqual(1_200);
    room.forgetOldPresence(Date.now() + 2 * awarenessProtocol.outdatedTimeout + 1_000);
    expect(room.awareness.meta.size).toBeLessThan(10);
  });

  it('scans for presence ids to forget at most once a second, or sooner once they have doubled', () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    join(server, new MemorySocket());
    const room = server.rooms.get('doc:1:user:1')!;
    const goneLongAgo = (from: number, to: number) => {
      for (const id of range(from, to)) room.awareness.meta.set(id, { clock: 1, lastUpdated: 0 });
    };
    const base = room.awareness.meta.size; // (its own id, kept)
    const t = Date.now() + 10 * awarenessProtocol.outdatedTimeout;
    goneLongAgo(1, 1_100);
    room.forgetOldPresence(t);
    expect(room.awareness.meta.size).toBe(base);
    goneLongAgo(1, 1_100);
    room.forgetOldPresence(t + 500); // half a second after the last scan: not yet
    expect(room.awareness.meta.size).toBe(base + 1_100);
    room.forgetOldPresence(t + 1_001);
    expect(room.awareness.meta.size).toBe(base);
    goneLongAgo(1, 1_100);
    room.forgetOldPresence(t + 1_200);
    expect(room.awareness.meta.size).toBe(base + 1_100);
    goneLongAgo(1_101, 2_100); // twice what a room remembers before it forgets: at once
    room.forgetOldPresence(t + 1_300);
    expect(room.awareness.meta.size).toBe(base);
  });

  it('forgets long-gone presence ids at once when the room would otherwise refuse a new one for want of room', () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    join(server, new MemorySocket());
    const room = server.rooms.get('doc:1:user:1')!;
    const t = Date.now() + 10 * awarenessProtocol.outdatedTimeout;
    room.forgetOldPresence(t, true); // a scan just now: the next is a second away
    for (const id of range(1, MAX_ROOM_PRESENCE_IDS)) room.awareness.meta.set(id, { clock: 1, lastUpdated: 0 });
    expect(room.admitPresenceIds(5, 1, t + 10)).toBe('room'); // (it only counts)
    expect(room.forgetToMakeRoom(1, t + 10)).toBe(true);
    expect(room.awareness.meta.size).toBeLessThan(10);
    expect(room.admitPresenceIds(5, 1, t + 10)).toBeNull();
    expect(room.forgetToMakeRoom(1, t + 10)).toBe(false);
  });

  it('checks a presence message again after forgetting ids to make room: an entry skipped for its old clock is not let in unchecked', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const socket = new MemorySocket();
    const conn = join(server, socket);
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    // The room full of ids, among them id 5 with clock 10, scanned just now (the throttled scan
    // is a second away), and all of them gone long ago since.
    const now = Date.now();
    for (const id of range(1_000, 1_000 + MAX_ROOM_PRESENCE_IDS - 2)) room.awareness.meta.set(id, { clock: 1, lastUpdated: now });
    room.awareness.meta.set(5, { clock: 10, lastUpdated: now });
    room.forgetOldPresence(now, true);
    for (const m of room.awareness.meta.values()) m.lastUpdated = now - 10 * awarenessProtocol.outdatedTimeout;
    // Id 5 at clock 5 (skipped: older than what the room remembers), posing as the server and
    // as user 2; and a new id of its own, which takes the room past its bound.
    conn.receive(rawPresence([[5, 5, { server: { saving: 'delayed', queued: 9 }, user: { id: 2 } }], [7, 1, { user: { id: 1 } }]]));
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    expect(room.awareness.getStates().get(7)).toEqual({ user: { id: 1 } });
    expect(room.awareness.getStates().has(5)).toBe(false);
  });

  it('caps the presence ids one user shows a room over all their sockets, reconnecting or not', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const keeper = new MemorySocket(); // another user, who keeps the room open throughout
    join(server, keeper, { room: 'doc:1:user:1', userId: 2, readOnly: false });
    const sockets = Array.from({ length: 9 }, () => new MemorySocket());
    let next = 1;
    for (const socket of sockets) {
      const conn = join(server, socket); // the same user each time
      await flushed(server);
      conn.receive(rawPresence(range(next, next + 255).map((id) => [id, 1, null] as const)));
      next += 256;
      await flushed(server);
      conn.close(1000, 'gone'); // and comes back with a fresh socket
      await flushed(server);
    }
    // 8 × 256 = 2,048 ids; the ninth socket's would be past it.
    expect(sockets.slice(0, 8).map((s) => s.closedWith)).toEqual(sockets.slice(0, 8).map(() => 1000));
    expect(sockets[8]!.closedWith).toBe(CloseCode.rateLimited);
    expect(keeper.closedWith).toBeNull();
    expect(server.rooms.get('doc:1:user:1')!.awareness.meta.size).toBeLessThanOrEqual(MAX_PRESENCE_IDS_PER_USER + 1);
  });

  it('leaves unapplied, without closing its socket, a newcomer’s presence when other users have filled the room’s memory of ids', async () => {
    const errors: string[] = [];
    const server = new SyncServer({ store: new MemoryStore(), log: silent, observer: { error: (kind) => errors.push(kind) }, limits: { ...limits, maxAwarenessBytes: 64 * 1024 } });
    const socket = new MemorySocket();
    const conn = join(server, socket, { room: 'doc:1:user:1', userId: 9, readOnly: false });
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    // Filled by others just now (ids none of them can be forgotten for yet).
    const now = Date.now();
    for (const id of range(1_000, 1_000 + MAX_ROOM_PRESENCE_IDS)) room.awareness.meta.set(id, { clock: 1, lastUpdated: now });
    conn.receive(rawPresence([[7, 1, { user: { id: 9 } }]]));
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    expect(room.awareness.getStates().has(7)).toBe(false);
    expect(errors).toEqual(['presence_dropped']);
    // Its document sync goes on.
    const doc = new Y.Doc();
    addSpan(doc, { label: 'ORG', start: 0, end: 1, quote: 'x', author: 9 });
    conn.receive(updateMessage(Y.encodeStateAsUpdate(doc)));
    await flushed(server);
    expect(listSpans(room.doc)).toHaveLength(1);
  });

  it('counts presence states that come back after their removal, and closes a socket that shows too many ids', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    server.connect(new MemorySocket(), info()); // keeps the room loaded
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    const send = async (tab: awarenessProtocol.Awareness) => {
      conn.receive(ownPresence(tab));
      await flushed(server);
    };
    const tabs = Array.from({ length: MAX_AWARENESS_CLIENTS }, () => new awarenessProtocol.Awareness(new Y.Doc()));
    for (const tab of tabs) {
      tab.setLocalState({ here: true });
      await send(tab);
    }
    for (const tab of tabs) {
      tab.setLocalState(null); // gone...
      await send(tab);
      tab.setLocalState({ here: true }); // ...and back: still this socket's
      await send(tab);
    }
    expect(socket.closedWith).toBeNull();
    const one = new awarenessProtocol.Awareness(new Y.Doc());
    one.setLocalState({ here: true });
    await send(one);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
    expect(room.awareness.getStates().size).toBe(0); // this socket's states went with it
    // Ids shown only to be removed at once are not live, but the room remembers each of them.
    const other = new MemorySocket();
    const conn2 = server.connect(other, info());
    await flushed(server);
    for (let i = 0; i <= MAX_AWARENESS_IDS_INTRODUCED && other.closedWith === null; i++) {
      const tab = new awarenessProtocol.Awareness(new Y.Doc());
      tab.setLocalState(null);
      conn2.receive(ownPresence(tab));
      await flushed(server);
    }
    expect(other.closedWith).toBe(CloseCode.rateLimited);
  });

  it('does not count against a socket the presence ids it relayed that were removed since', async () => {
    // A browser relays its other tabs' presence (BroadcastChannel) before they connect: those
    // ids are first seen from its socket, and later removed by theirs, or by a timeout.
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits });
    const relay = new MemorySocket();
    const conn = server.connect(relay, info());
    const other = server.connect(new MemorySocket(), info());
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    for (let i = 0; i < MAX_AWARENESS_CLIENTS * 2; i++) {
      const tab = new awarenessProtocol.Awareness(new Y.Doc());
      tab.setLocalState({ user: `tab${i}` });
      conn.receive(ownPresence(tab));
      await flushed(server);
      awarenessProtocol.removeAwarenessStates(tab, [tab.clientID], 'closed');
      other.receive(ownPresence(tab));
      await flushed(server);
      tab.destroy();
    }
    expect(relay.closedWith).toBeNull();
    expect(room.awareness.getStates().size).toBe(0);
  });

  it('unloads every room it opened: 10,000 rooms opened and closed leave no memory or timer behind', async () => {
    // A store that keeps nothing, so that what the heap holds afterwards is the rooms' alone; it
    // counts the rooms let go of (whose bookkeeping a real store drops then).
    class CountingStore extends MemoryStore {
      appended = 0;
      released = 0;
      override async append(_room: string, updates: readonly Uint8Array[]): Promise<void> {
        this.appended += updates.length;
      }
      release(): void {
        this.released++;
      }
    }
    const store = new CountingStore();
    const { bus, followers } = followingBus();
    const server = new SyncServer({ store, log: silent, limits, bus });
    const update = updateMessage(spanUpdate('GPE'));
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc (vitest.config.ts does)');
    const cycle = async (first: number) => {
      const conns = Array.from({ length: 1000 }, (_, i) => server.connect(new MemorySocket(), info(`doc:${first + i}:user:1`)));
      for (const c of conns) c.receive(update);
      await flushed(server);
      for (const c of conns) c.closedByPeer();
      await flushed(server);
    };
    const memory = () => {
      gc();
      const { heapUsed, external } = process.memoryUsage();
      return heapUsed + external;
    };
    await cycle(1_000_000); // warm-up: code compiled, pools allocated
    const before = memory();
    const timersBefore = timers();
    for (let batch = 0; batch < 10; batch++) await cycle(batch * 1000 + 1);
    expect(server.rooms.size).toBe(0);
    expect(server.connections.size).toBe(0);
    expect(store.appended).toBe(11_000);
    expect(store.released).toBe(11_000); // the store's bookkeeping of each room, dropped
    expect(followers.size).toBe(0); // and the bus's
    // A room (doc, awareness, connection) takes kilobytes: 10,000 kept would be tens of MiB.
    // (The heap moves by a MiB or two either way between runs: compiled code, pools.)
    expect(memory() - before).toBeLessThan(500 * 10_000);
    expect(timers()).toBeLessThanOrEqual(timersBefore); // each awareness has an interval timer
  });

  it('sets aside a stored update that no longer decodes and loads the rest', async () => {
    const store = new MemoryStore();
    await store.append('doc:1:user:1', [spanUpdate('GPE'), new Uint8Array([9, 9, 9, 9]), spanUpdate('ORG', 5, 9)]);
    const server = new SyncServer({ store, log: silent, limits });
    const socket = new MemorySocket();
    join(server, socket);
    await flushed(server);
    expect(listSpans(socket.doc).map((s) => s.label).sort()).toEqual(['GPE', 'ORG']);
    expect(store.setAsideRows).toHaveLength(1);
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(2);
  });

  it('sets nothing aside when a row fails only in retrying content that waited on it, and loads the same again', async () => {
    const { rows, text } = waitingPoisonLog();
    const store = new MemoryStore();
    await store.append('doc:1:user:1', rows);
    for (let load = 1; load <= 2; load++) {
      const server = new SyncServer({ store, log: silent, limits });
      const socket = new MemorySocket();
      join(server, socket);
      await flushed(server);
      expect(server.rooms.get('doc:1:user:1')!.doc.getText('t').toString()).toBe(text);
      expect(socket.doc.getText('t').toString()).toBe(text);
      expect(store.setAsideRows).toEqual([]);
      expect(store.rooms.get('doc:1:user:1')).toHaveLength(4);
    }
  });

  it('still loads a room when setting a bad row aside fails', async () => {
    const store = new MemoryStore();
    await store.append('doc:1:user:1', [spanUpdate('GPE'), new Uint8Array([9, 9, 9, 9]), spanUpdate('ORG', 5, 9)]);
    store.setAside = async () => {
      throw new Error('invalid byte sequence for encoding "UTF8": 0x00');
    };
    const server = new SyncServer({ store, log: silent, limits });
    const socket = new MemorySocket();
    join(server, socket);
    await flushed(server);
    expect(socket.closedWith).toBeNull();
    expect(listSpans(socket.doc).map((s) => s.label).sort()).toEqual(['GPE', 'ORG']);
  });

  it('drops updates from a read-only socket and tells it once', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info('doc:1:user:1', true));
    await flushed(server);
    conn.receive(updateMessage(spanUpdate('GPE')));
    conn.receive(updateMessage(spanUpdate('ORG')));
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1') ?? []).toHaveLength(0);
    const authMessages = socket.received.filter((m) => m[0] === MessageKind.auth);
    expect(authMessages).toHaveLength(1);
  });

  it('drops a read-only socket’s updates unread, and tells it only when it tries to write', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const room = 'doc:1:user:1';
    const writer = new MemorySocket();
    const writerConn = server.connect(writer, info(room));
    await flushed(server);
    // The room holds a span that was deleted: every sync reply carries that deletion.
    const doc = new Y.Doc();
    const id = addSpan(doc, { label: 'GPE', start: 0, end: 4, quote: 'Rome', author: 1 });
    annotationsMap(doc).delete(id);
    writerConn.receive(updateMessage(Y.encodeStateAsUpdate(doc)));
    await flushed(server);
    const viewer = new MemorySocket();
    const viewerConn = server.connect(viewer, info(room, true));
    await flushed(server);
    const told = () => viewer.received.filter((m) => m[0] === MessageKind.auth).length;
    // A viewer's sync reply with nothing but the room's own delete set: not an attempt to write.
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, MessageKind.sync);
    syncProtocol.writeSyncStep2(reply, doc, Y.encodeStateVector(doc));
    viewerConn.receive(encoding.toUint8Array(reply));
    await flushed(server);
    expect(told()).toBe(0);
    // Bytes that do not decode as an update: dropped unread, the socket stays, and is told.
    viewerConn.receive(updateMessage(new Uint8Array([5, 200, 1, 9, 9, 9])));
    await flushed(server);
    expect(viewer.closedWith).toBeNull();
    expect(told()).toBe(1);
    expect(store.rooms.get(room)).toHaveLength(1);
  });

  it('logs a room that fails to load once, not once per socket waiting on it, and each kind at most once every 10 s', async () => {
    const store = new MemoryStore();
    store.failing = true;
    const lines: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const log = { info() {}, warn() {}, error: (event: string, fields: Record<string, unknown> = {}) => lines.push({ event, fields }) };
    const server = new SyncServer({ store, log, limits });
    const sockets = [new MemorySocket(), new MemorySocket(), new MemorySocket()];
    for (const socket of sockets) join(server, socket);
    await flushed(server);
    expect(sockets.map((s) => s.closedWith)).toEqual([CloseCode.tryAgainLater, CloseCode.tryAgainLater, CloseCode.tryAgainLater]);
    expect(lines).toEqual([{ event: 'sync_room_load_failed', fields: { room: 'doc:1:user:1', sockets: 3, error: 'Error: store unavailable' } }]);
    // Their clients try again, in this room and others: the same failure is not logged again yet.
    for (let i = 0; i < 5; i++) join(server, new MemorySocket(), info(`doc:${i + 2}:user:1`));
    await flushed(server);
    expect(lines).toHaveLength(1);
    expect(server.rooms.size).toBe(0);
    // The count of those left out, once the window ends (or the process exits).
    logLeftOutCounts();
    expect(lines.slice(1)).toEqual([{ event: 'sync_room_load_failed', fields: { error: 'Error (message withheld)', leftOut: 5 } }]);
  });

  it('keeps nothing of a socket that leaves while its room is still loading (a database away)', async () => {
    const store = new MemoryStore();
    store.load = () => new Promise(() => {}); // never answers
    const server = new SyncServer({ store, log: silent, limits });
    for (let i = 0; i < 50; i++) {
      const conn = server.connect(new MemorySocket(), info());
      conn.receive(updateMessage(new Uint8Array(100_000)));
      conn.closedByPeer();
    }
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    expect(server.stats()).toMatchObject({ sockets: 0, queuedBytes: 0 });
    expect(room.peers.size).toBe(0);
    expect(room.heldBytes).toBe(0);
  });

  it('counts the batch being stored as queued, and names what a close leaves unsaved', async () => {
    const store = new MemoryStore();
    store.append = () => new Promise(() => {}); // never answers
    const errors: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const log = { ...silent, error: (event: string, fields: Record<string, unknown>) => errors.push({ event, fields }) };
    const server = new SyncServer({ store, log, limits });
    const socket = new MemorySocket();
    const conn = join(server, socket);
    await flushed(server);
    conn.receive(updateMessage(spanUpdate('GPE')));
    conn.receive(updateMessage(spanUpdate('ORG')));
    await flushed(server);
    expect(server.stats().queued).toBe(2);
    await server.close(50);
    expect(errors).toContainEqual({ event: 'sync_unsaved_on_close', fields: { updates: 2, rooms: ['doc:1:user:1'] } });
  });

  it('refuses an update whose deleted ranges repeat or overlap (each walk of the doc repeated), and takes those Yjs writes, merged or not', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const writer = new MemorySocket();
    const conn = join(server, writer);
    server.connect(new MemorySocket(), info()); // (keeps the room open throughout)
    await flushed(server);
    // The writer's layer holds deleted entries, as a day's relabelling leaves.
    const doc = new Y.Doc();
    const ids = Array.from({ length: 50 }, (_, i) => addSpan(doc, { label: 'ORG', start: i, end: i + 1, quote: 'x', author: 1 }));
    const before = Y.encodeStateAsUpdate(doc);
    const edits: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => edits.push(u));
    for (const id of ids.slice(0, 40)) deleteAnnotation(doc, id);
    // Sound: the edits one by one, merged into one, and the whole doc (Yjs sorts and merges what it writes).
    conn.receive(updateMessage(before));
    conn.receive(updateMessage(edits[0]!));
    conn.receive(updateMessage(Y.mergeUpdates(edits.slice(1))));
    conn.receive(updateMessage(Y.encodeStateAsUpdate(doc)));
    await flushed(server);
    expect(writer.closedWith).toBeNull();
    expect(listSpans(server.rooms.get('doc:1:user:1')!.doc)).toHaveLength(10);
    const stored = store.rooms.get('doc:1:user:1')!.length;
    /** An update with `structs` (one new span, or none) and this client's range deleted `times` over. */
    const repeated = (times: number, withContent: boolean) => {
      const e = encoding.createEncoder();
      if (withContent) {
        const more = new Y.Doc();
        Y.applyUpdate(more, Y.encodeStateAsUpdate(doc));
        let update!: Uint8Array;
        more.on('update', (u: Uint8Array) => (update = u));
        addSpan(more, { label: 'GPE', start: 60, end: 61, quote: 'y', author: 1 });
        expect(update.at(-1)).toBe(0); // (the edit's delete set: no clients)
        encoding.writeUint8Array(e, update.subarray(0, -1));
      } else {
        encoding.writeVarUint(e, 0); // no structs
      }
      encoding.writeVarUint(e, 1);
      encoding.writeVarUint(e, doc.clientID);
      encoding.writeVarUint(e, times);
      for (let i = 0; i < times; i++) {
        encoding.writeVarUint(e, 0);
        encoding.writeVarUint(e, Y.getState(doc.store, doc.clientID));
      }
      const update = encoding.toUint8Array(e);
      expect(Y.decodeUpdate(update).ds.clients.get(doc.clientID)).toHaveLength(times); // (it decodes)
      return update;
    };
    for (const withContent of [false, true]) {
      const socket = new MemorySocket();
      const attacker = join(server, socket);
      await flushed(server);
      attacker.receive(updateMessage(repeated(10_000, withContent)));
      await flushed(server);
      expect(socket.closedWith, String(withContent)).toBe(CloseCode.malformed);
    }
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(stored);
    // Once is how Yjs writes it: taken (the new span, and everything of that client's deleted).
    const once = new MemorySocket();
    join(server, once).receive(updateMessage(repeated(1, true)));
    await flushed(server);
    expect(once.closedWith).toBeNull();
    expect(listSpans(server.rooms.get('doc:1:user:1')!.doc).map((span) => span.label)).toEqual(['GPE']);
  });

  it('handles none of the frames behind a malformed one, though its client closed the socket right after sending them', async () => {
    const store = new MemoryStore();
    const errors: string[] = [];
    const server = new SyncServer({ store, log: silent, limits, observer: { error: (kind) => errors.push(kind) } });
    const socket = new MemorySocket();
    const conn = join(server, socket);
    await flushed(server);
    conn.receive(new Uint8Array([99, 1, 2])); // no such message kind
    conn.receive(updateMessage(spanUpdate('BEHIND')));
    conn.closedByPeer();
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1') ?? []).toHaveLength(0);
    expect(errors.filter((kind) => kind === 'malformed')).toHaveLength(1);
  });

  it('stores nothing for a reconnecting client’s sync reply that holds only deletions the room has', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const first = new MemorySocket();
    const conn = join(server, first);
    await flushed(server);
    // Spans added and some deleted, sent as edits.
    const edits = new Y.Doc();
    edits.on('update', (u: Uint8Array) => conn.receive(updateMessage(u)));
    const ids = Array.from({ length: 6 }, (_, i) => addSpan(edits, { label: `L${i}`, start: i, end: i + 1, quote: 'x', author: 1 }));
    for (const id of ids.slice(0, 3)) deleteAnnotation(edits, id);
    await flushed(server);
    conn.closedByPeer();
    await flushed(server);
    const rows = store.rooms.get('doc:1:user:1')!.length;
    const appends = store.appendCalls;
    // It comes back with the same doc: its sync reply holds no structs the room lacks, and the
    // whole delete set, every deletion of which the room has.
    const again = new MemorySocket();
    Y.applyUpdate(again.doc, Y.encodeStateAsUpdate(edits));
    const back = join(server, again);
    await flushed(server);
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, MessageKind.sync);
    syncProtocol.writeSyncStep2(reply, edits, Y.encodeStateVector(server.rooms.get('doc:1:user:1')!.doc));
    back.receive(encoding.toUint8Array(reply));
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1')!.length).toBe(rows);
    expect(store.appendCalls).toBe(appends);
    // One that deletes what the room still has is stored as ever.
    deleteAnnotation(edits, ids[3]!);
    const more = encoding.createEncoder();
    encoding.writeVarUint(more, MessageKind.sync);
    syncProtocol.writeSyncStep2(more, edits, Y.encodeStateVector(server.rooms.get('doc:1:user:1')!.doc));
    back.receive(encoding.toUint8Array(more));
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1')!.length).toBe(rows + 1);
    expect(listSpans(server.rooms.get('doc:1:user:1')!.doc)).toHaveLength(2);
  });

  it('logs what kind of error a malformed frame threw, never what the frame said', async () => {
    const lines: string[] = [];
    const log = { info() {}, warn: (event: string, fields: unknown) => lines.push(JSON.stringify({ event, fields })), error() {} };
    const server = new SyncServer({ store: new MemoryStore(), log, limits });
    const socket = new MemorySocket();
    const conn = join(server, socket);
    await flushed(server);
    // A presence state whose JSON breaks off in the middle of someone's words.
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 1);
    encoding.writeVarUint(e, 5);
    encoding.writeVarUint(e, 1);
    encoding.writeVarString(e, '{"note":the patient said');
    conn.receive(awarenessMessage(encoding.toUint8Array(e)));
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.malformed);
    expect(lines.join('\n')).toContain('SyntaxError');
    expect(lines.join('\n')).not.toContain('patient');
  });

  it('counts as sent only the messages that went out to a socket', async () => {
    const out = new Map<string, number>();
    const observer = { messagesOut: (n: number, _bytes: number, label: string) => out.set(label, (out.get(label) ?? 0) + n) };
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, observer });
    const writer = join(server, new MemorySocket());
    join(server, new MemorySocket());
    const gone = new MemorySocket();
    join(server, gone);
    await flushed(server);
    gone.open = false; // its peer went away; the server has not heard yet
    writer.receive(updateMessage(spanUpdate('GPE')));
    await flushed(server);
    expect(out.get('update')).toBe(1);
  });

  it('closes a socket that exceeds its message rate', async () => {
    const server = new SyncServer({ store: new MemoryStore(), log: silent, limits: { ...limits, maxMessagesPerSecond: 5 } });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    const query = new Uint8Array([MessageKind.queryAwareness]);
    for (let i = 0; i < 20; i++) conn.receive(query);
    expect(socket.closedWith).toBe(CloseCode.rateLimited);
  });

  it('unloads a room once its last socket has gone and its writes are stored', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const socket = new MemorySocket();
    const conn = server.connect(socket, info());
    await flushed(server);
    conn.receive(updateMessage(spanUpdate('GPE')));
    conn.closedByPeer();
    expect(server.rooms.size).toBe(1); // the update is still being stored
    await flushed(server);
    expect(server.rooms.size).toBe(0);
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(1);
  });

  describe('with a bus that loses track of the room (its stream position trimmed away)', () => {
    /** A bus that records what the room publishes and lets the test call the room's reload. */
    function recordingBus() {
      const bus = {
        listener: null as BusListener | null,
        published: [] as Array<{ kind: string; data: Uint8Array }>,
        async join(_room: string, listener: BusListener) {
          bus.listener = listener;
        },
        leave() {},
        publish(_room: string, kind: string, data: Uint8Array) {
          bus.published.push({ kind, data });
        },
        async close() {},
      } satisfies SyncBus & Record<string, unknown>;
      return bus;
    }
    const spansIn = (updates: Array<{ kind: string; data: Uint8Array }>) => {
      const doc = new Y.Doc();
      for (const u of updates) if (u.kind === 'update') Y.applyUpdate(doc, u.data);
      return listSpans(doc).map((sp) => sp.label);
    };

    it('sends a peer nothing the bus brings while the room loads: its first answers hold it', async () => {
      const bus = recordingBus();
      const store = new MemoryStore();
      const release = holdLoads(store);
      const server = new SyncServer({ store, log: silent, limits, bus });
      const socket = new MemorySocket();
      join(server, socket);
      await tick();
      bus.listener!.message('update', spanUpdate('FROM-BUS'));
      const elsewhere = new awarenessProtocol.Awareness(new Y.Doc());
      elsewhere.setLocalState({ user: 'on another instance' });
      bus.listener!.message('awareness', awarenessProtocol.encodeAwarenessUpdate(elsewhere, [elsewhere.clientID]));
      await tick();
      expect(socket.received).toHaveLength(0);
      release();
      await flushed(server);
      const first = decoding.createDecoder(socket.received[0]!);
      expect([decoding.readVarUint(first), decoding.readVarUint(first)]).toEqual([MessageKind.sync, syncProtocol.messageYjsSyncStep1]);
      expect(listSpans(socket.doc).map((sp) => sp.label)).toEqual(['FROM-BUS']);
      const presence = socket.received.find((m) => m[0] === MessageKind.awareness);
      expect(presence).toBeDefined();
    });

    it('forgets presence ids shown on other instances once they are long gone, as it does its own peers’', async () => {
      const bus = recordingBus();
      const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, bus });
      join(server, new MemorySocket());
      await flushed(server);
      const room = server.rooms.get('doc:1:user:1')!;
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        // 1,100 page loads elsewhere, each shown and then gone.
        for (let id = 1; id <= 1_100; id++) {
          bus.listener!.message('awareness', presenceUpdate([[id, 1, { user: 'elsewhere' }]]));
          bus.listener!.message('awareness', presenceUpdate([[id, 2, null]]));
        }
        expect(room.awareness.meta.size).toBeGreaterThanOrEqual(1_100);
        vi.setSystemTime(Date.now() + 2 * awarenessProtocol.outdatedTimeout + 1_000);
        bus.listener!.message('awareness', presenceUpdate([[5_000, 1, { user: 'still here' }]]));
        expect(room.awareness.meta.size).toBeLessThan(10);
        expect(room.awareness.getStates().get(5_000)).toEqual({ user: 'still here' });
      } finally {
        vi.useRealTimers();
      }
    });

    it('goes on storing when something its flush calls throws (a bus that should not), and says so', async () => {
      const bus = recordingBus();
      const publish = bus.publish.bind(bus);
      let throws = 1;
      bus.publish = (room: string, kind: string, data: Uint8Array) => {
        if (kind === 'update' && throws-- > 0) throw new Error('bus broke its word');
        publish(room, kind, data);
      };
      const store = new MemoryStore();
      const errors: string[] = [];
      const logged: string[] = [];
      const log = { ...silent, error: (event: string) => void logged.push(event) };
      const server = new SyncServer({ store, log, limits, bus, observer: { error: (kind) => errors.push(kind) } });
      const reader = new MemorySocket();
      join(server, reader);
      const writer = new MemorySocket();
      const conn = join(server, writer, { ...info(), acks: true });
      await flushed(server);
      conn.receive(updateMessage(spanUpdate('FIRST')));
      await new Promise((r) => setTimeout(r, 300)); // (the loop started again, 100 ms on)
      conn.receive(updateMessage(spanUpdate('SECOND', 5, 9)));
      await flushed(server);
      expect(store.rooms.get('doc:1:user:1')).toHaveLength(2);
      // Its sender is told both are stored (the first too, whose flush threw after storing it).
      const told = writer.received.flatMap((m) => {
        const d = decoding.createDecoder(m);
        return decoding.readVarUint(d) === MessageKind.stored ? [decoding.readVarUint(d)] : [];
      });
      expect(told.at(-1)).toBe(2);
      // And the other instances get both: the first published again once the loop failed.
      expect(spansIn(bus.published).sort()).toEqual(['FIRST', 'SECOND']);
      // The first, stored before the throw and not sent then, comes with the room's reload.
      expect(listSpans(reader.doc).map((sp) => sp.label).sort()).toEqual(['FIRST', 'SECOND']);
      expect(errors).toContain('flush_failed');
      expect(logged).toContain('sync_flush_failed');
    });

    it('drops a presence state nested too deeply that another instance passed on, and keeps the rest of its update', async () => {
      const bus = recordingBus();
      const errors: string[] = [];
      const logged: Array<[string, unknown]> = [];
      const log = { ...silent, error: (event: string, fields?: unknown) => void logged.push([event, fields]) };
      const server = new SyncServer({ store: new MemoryStore(), log, limits, bus, observer: { error: (kind) => errors.push(kind) } });
      join(server, new MemorySocket());
      await flushed(server);
      const room = server.rooms.get('doc:1:user:1')!;
      const deep = `{"a":${'['.repeat(5_000)}${']'.repeat(5_000)}}`;
      bus.listener!.message('awareness', writePresenceEntries([
        { id: 7001, clock: 1, state: deep },
        { id: 7002, clock: 1, state: JSON.stringify({ user: { id: 2, name: 'bob' }, selection: { anchor: [1, [2, [3]]] } }) },
      ]));
      bus.listener!.message('awareness', writePresenceEntries([{ id: 7003, clock: 1, state: `{"a":${'['.repeat(40)}${']'.repeat(40)}}` }]));
      expect(room.awareness.getStates().has(7001)).toBe(false);
      expect(room.awareness.getStates().has(7003)).toBe(false);
      expect(room.awareness.getStates().get(7002)).toEqual({ user: { id: 2, name: 'bob' }, selection: { anchor: [1, [2, [3]]] } });
      expect(logged.filter(([event]) => event === 'sync_bus_message_rejected')).toHaveLength(2);
      expect(errors.filter((kind) => kind === 'bus_failed')).toHaveLength(2);
      // A newcomer is greeted, with the state that was kept.
      const late = new MemorySocket();
      join(server, late);
      await flushed(server);
      expect(late.closedWith).toBeNull();
      const greeting = late.received.find((m) => m[0] === MessageKind.awareness)!;
      const decoder = decoding.createDecoder(greeting);
      decoding.readVarUint(decoder);
      const shown = readPresenceEntries(decoding.readVarUint8Array(decoder)).map((e) => e.id);
      expect(shown).toContain(7002);
      expect(shown).not.toContain(7001);
    });

    it('lets a client that moved to another instance keep its presence when its old socket here is found dead', async () => {
      const bus = recordingBus();
      const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, bus });
      const stale = new MemorySocket();
      const staleConn = join(server, stale);
      const watcher = new MemorySocket();
      join(server, watcher);
      await flushed(server);
      const room = server.rooms.get('doc:1:user:1')!;
      const tab = new awarenessProtocol.Awareness(new Y.Doc());
      tab.setLocalState({ user: 'alice' });
      staleConn.receive(ownPresence(tab));
      await flushed(server);
      expect(room.awareness.getStates().get(tab.clientID)).toEqual({ user: 'alice' });

      // The client reconnects through another instance, which relays its renewed state.
      tab.setLocalState({ user: 'alice', moved: true });
      bus.listener!.message('awareness', awarenessProtocol.encodeAwarenessUpdate(tab, [tab.clientID]));
      const published = bus.published.length;
      staleConn.closedByPeer(); // the half-open socket here is noticed at last
      await flushed(server);
      expect(room.awareness.getStates().get(tab.clientID)).toEqual({ user: 'alice', moved: true });
      expect(bus.published.slice(published).filter((p) => p.kind === 'awareness')).toHaveLength(0);

      // A socket here that still holds its own state removes it when it goes, as before.
      const other = new awarenessProtocol.Awareness(new Y.Doc());
      other.setLocalState({ user: 'dana' });
      const danaConn = join(server, new MemorySocket());
      danaConn.receive(ownPresence(other));
      await flushed(server);
      danaConn.closedByPeer();
      await flushed(server);
      expect(room.awareness.getStates().has(other.clientID)).toBe(false);
    });

    it('still publishes a batch that a reload read back from the store before the batch was applied', async () => {
      const bus = recordingBus();
      class ReloadOnAppend extends MemoryStore {
        override async append(room: string, updates: readonly Uint8Array[]): Promise<void> {
          await super.append(room, updates);
          // The bus reloads right now, with the rows committed and the batch not yet applied.
          bus.listener!.reload();
          for (let i = 0; i < 5; i++) await tick();
        }
      }
      const server = new SyncServer({ store: new ReloadOnAppend(), log: silent, limits, bus });
      const a = new MemorySocket();
      const b = new MemorySocket();
      const conn = join(server, a);
      join(server, b);
      await flushed(server);
      conn.receive(updateMessage(spanUpdate('PERSON')));
      // (Each append here takes a few extra ticks: allow more than flushed()'s default.)
      await flushed(server, 1000);
      expect(listSpans(b.doc).map((sp) => sp.label)).toEqual(['PERSON']);
      expect(spansIn(bus.published)).toEqual(['PERSON']);
    });

    it('publishes a peer’s update that waited on one from another instance, once that one arrives', async () => {
      const bus = recordingBus();
      const server = new SyncServer({ store: new MemoryStore(), log: silent, limits, bus });
      const a = new MemorySocket();
      const conn = join(server, a);
      await flushed(server);
      // Another instance's client typed "a"; this instance's peer, who had it, typed "b" after it.
      const writer = new Y.Doc();
      writer.getText('t').insert(0, 'a');
      const first = Y.encodeStateAsUpdate(writer);
      const before = Y.encodeStateVector(writer);
      writer.getText('t').insert(1, 'b');
      const second = Y.encodeStateAsUpdate(writer, before);
      conn.receive(updateMessage(second)); // stored; Yjs holds it until "a" is there
      await flushed(server);
      bus.listener!.message('update', first);
      await flushed(server);
      expect(server.rooms.get('doc:1:user:1')!.doc.getText('t').toString()).toBe('ab');
      // What this instance published lets another instance that has "a" get "b" too.
      const remote = new Y.Doc();
      Y.applyUpdate(remote, first);
      for (const u of bus.published) if (u.kind === 'update') Y.applyUpdate(remote, u.data);
      expect(remote.getText('t').toString()).toBe('ab');
    });

    it('says saving is delayed while a reload hangs with updates waiting behind it', async () => {
      const bus = recordingBus();
      let release!: () => void;
      class HangingLoads extends MemoryStore {
        hang = false;
        override async load(room: string): Promise<StoredUpdate[]> {
          if (this.hang) await new Promise<void>((r) => (release = r));
          return super.load(room);
        }
      }
      const store = new HangingLoads();
      const server = new SyncServer({ store, log: silent, limits, bus, storeDelayNoticeMs: 50 });
      const reader = new MemorySocket();
      const w = join(server, new MemorySocket());
      join(server, reader);
      await flushed(server);
      store.hang = true;
      bus.listener!.reload();
      await flushed(server);
      w.receive(updateMessage(spanUpdate('PERSON')));
      await new Promise((r) => setTimeout(r, 150));
      const room = server.rooms.get('doc:1:user:1')!;
      expect(room.awareness.getLocalState()).toMatchObject({ server: { saving: 'delayed', queued: 1 } });
      w.receive(updateMessage(spanUpdate('ORG'))); // the count follows what waits
      await new Promise((r) => setTimeout(r, 150));
      expect(room.awareness.getLocalState()).toMatchObject({ server: { saving: 'delayed', queued: 2 } });
      store.hang = false;
      release();
      await flushed(server);
      expect(listSpans(reader.doc).map((sp) => sp.label).sort()).toEqual(['ORG', 'PERSON']);
      expect(room.awareness.getLocalState()).toBeNull();
    });

    it('tells the store a reload is one (the room is open: not compacted as if just opened)', async () => {
      const bus = recordingBus();
      const loads: Array<boolean | undefined> = [];
      class RecordingLoads extends MemoryStore {
        override async load(room: string, options?: { reloading?: boolean }): Promise<StoredUpdate[]> {
          loads.push(options?.reloading);
          return super.load(room);
        }
      }
      const server = new SyncServer({ store: new RecordingLoads(), log: silent, limits, bus });
      join(server, new MemorySocket());
      await flushed(server);
      bus.listener!.reload();
      await flushed(server);
      expect(loads).toEqual([false, true]);
    });

    it('retries a reload until the store answers', async () => {
      const bus = recordingBus();
      const store = new MemoryStore();
      const server = new SyncServer({ store, log: silent, limits, bus });
      const a = new MemorySocket();
      join(server, a);
      await flushed(server);
      store.failing = true;
      // Another instance stored an update whose stream entry was trimmed before this one read it.
      store.rooms.set('doc:1:user:1', [{ id: 'other-1', data: spanUpdate('ORG') }]);
      bus.listener!.reload();
      await new Promise((r) => setTimeout(r, 150));
      expect(listSpans(a.doc)).toEqual([]);
      store.failing = false;
      for (let i = 0; i < 100 && listSpans(a.doc).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(listSpans(a.doc).map((sp) => sp.label)).toEqual(['ORG']);
      expect(server.rooms.get('doc:1:user:1')?.busy).toBe(false);
    });
  });
});

describe('telling a client its edits are stored (?acks=1)', () => {
  /** The counts of the stored messages `socket` received, in order. */
  const storedCounts = (socket: MemorySocket) =>
    socket.received.flatMap((m) => {
      const d = decoding.createDecoder(m);
      return decoding.readVarUint(d) === MessageKind.stored ? [decoding.readVarUint(d)] : [];
    });
  /** A sync step 2 carrying `update` (what a client answers the server's step 1 with). */
  const step2Message = (update: Uint8Array) => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MessageKind.sync);
    encoding.writeVarUint(e, syncProtocol.messageYjsSyncStep2);
    encoding.writeVarUint8Array(e, update);
    return encoding.toUint8Array(e);
  };

  it('counts the document frames stored, only once none waits to be, and only to a client that asked', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const asked = new MemorySocket();
    const other = new MemorySocket();
    const conn = join(server, asked, { ...info(), acks: true });
    const otherConn = join(server, other);
    await flushed(server);
    // 0 with the greeting, before the answer to the client's step 1: this server tells.
    expect(storedCounts(asked)).toEqual([0]);
    const kinds = asked.received.map((m) => messageLabel(m));
    expect(kinds.indexOf('stored')).toBeGreaterThan(-1);
    expect(kinds.indexOf('stored')).toBeLessThan(kinds.indexOf('sync_step2'));
    // An empty step 2 (a new client's) holds nothing to store: counted at once.
    conn.receive(step2Message(Y.encodeStateAsUpdate(new Y.Doc())));
    await flushed(server);
    expect(storedCounts(asked)).toEqual([0, 1]);

    // Each append hangs until let go of, one at a time.
    const gates: Array<() => void> = [];
    const append = store.append.bind(store);
    store.append = async (room, updates) => {
      await new Promise<void>((r) => gates.push(r));
      return append(room, updates);
    };
    const appendWaiting = async () => {
      for (let i = 0; i < 100 && gates.length === 0; i++) await tick();
      expect(gates).toHaveLength(1);
    };
    conn.receive(updateMessage(spanUpdate('PERSON')));
    await appendWaiting();
    // Behind it, in the next batch: another edit of this socket's and another socket's, then a
    // frame with nothing to store, not counted as stored before the edit ahead of it is.
    conn.receive(updateMessage(spanUpdate('ORG')));
    otherConn.receive(updateMessage(spanUpdate('GPE')));
    conn.receive(step2Message(Y.encodeStateAsUpdate(new Y.Doc())));
    await new Promise((r) => setTimeout(r, 20));
    expect(storedCounts(asked)).toEqual([0, 1]);

    // The first stored: one of this socket's still waits, so nothing is said.
    gates.shift()!();
    await appendWaiting();
    expect(store.rooms.get('doc:1:user:1')!.length).toBe(1);
    expect(storedCounts(asked)).toEqual([0, 1]);

    gates.shift()!();
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1')!.length).toBe(3);
    expect(storedCounts(asked)).toEqual([0, 1, 4]);
    expect(storedCounts(other)).toEqual([]);
  });

  it('greets a peer with what waits to be stored counted as held: a client reconnecting while the store is away does not queue its edits again, and hears they are stored only once they are', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const first = new MemorySocket();
    const before = join(server, first, { ...info(), acks: true });
    await flushed(server);
    store.failing = true;
    const client = new Y.Doc(); // the page's doc, across both sockets
    let edit!: Uint8Array;
    client.once('update', (u: Uint8Array) => (edit = u));
    addSpan(client, { label: 'PERSON', start: 0, end: 4, quote: 'text', author: 1 });
    before.receive(updateMessage(edit));
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    expect(room.pendingCount).toBe(1);
    before.closedByPeer(); // its socket drops; the page connects again
    const second = new MemorySocket();
    const after = join(server, second, { ...info(), acks: true });
    await flushed(server);
    // The page answers the server's step 1 with what the server lacks, as y-protocols does.
    const greeting = second.received.find((m) => m[0] === MessageKind.sync && m[1] === syncProtocol.messageYjsSyncStep1)!;
    const d = decoding.createDecoder(greeting);
    decoding.readVarUint(d);
    decoding.readVarUint(d);
    after.receive(step2Message(Y.encodeStateAsUpdate(client, decoding.readVarUint8Array(d))));
    await flushed(server);
    expect(storedCounts(second)).toEqual([0]); // not yet: what it left out is not stored
    store.failing = false;
    await vi.waitFor(() => expect(room.busy).toBe(false), { timeout: 15_000, interval: 20 }); // (the retry waits up to 5 s)
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(1); // the edit once
    expect(storedCounts(second)).toEqual([0, 1]);
    expect(listSpans(second.doc).map((sp) => sp.label)).toEqual(['PERSON']);
  });

  it('spares a sender the echo of its updates when the only other entry in their batch is another peer’s place in the line', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const writer = new MemorySocket();
    const w = join(server, writer, { ...info(), acks: true });
    await flushed(server);
    store.failing = true;
    w.receive(updateMessage(spanUpdate('PERSON')));
    await flushed(server);
    const other = new MemorySocket();
    join(server, other, { ...info(), acks: true }).receive(step2Message(Y.encodeStateAsUpdate(new Y.Doc()))); // nothing to store: a place behind it
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    expect(room.pendingCount).toBe(2);
    const updatesTo = (socket: MemorySocket) => socket.received.filter((m) => messageLabel(m) === 'update').length;
    const before = updatesTo(writer);
    store.failing = false;
    await vi.waitFor(() => expect(room.busy).toBe(false), { timeout: 15_000, interval: 20 }); // (the retry waits up to 5 s)
    expect(updatesTo(other)).toBe(1);
    expect(updatesTo(writer)).toBe(before);
  });

  it('counts as held only what joins on to the doc, or to what is queued ahead of it', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const writer = join(server, new MemorySocket());
    await flushed(server);
    const client = new Y.Doc();
    const edits: Uint8Array[] = [];
    client.on('update', (u: Uint8Array) => edits.push(u));
    for (const label of ['A', 'B', 'C']) addSpan(client, { label, start: 0, end: 4, quote: 'text', author: 1 });
    const clockAfter = (n: number) => Y.decodeStateVector(Y.encodeStateVectorFromUpdate(Y.mergeUpdates(edits.slice(0, n)))).get(client.clientID);
    writer.receive(updateMessage(edits[0]!));
    await flushed(server);
    const room = server.rooms.get('doc:1:user:1')!;
    const held = () => Y.decodeStateVector(room.stateVectorWithQueued()).get(client.clientID);
    expect(held()).toBe(clockAfter(1));
    store.failing = true;
    writer.receive(updateMessage(edits[2]!)); // past a gap: not held
    await flushed(server);
    expect(held()).toBe(clockAfter(1));
    writer.receive(updateMessage(edits[1]!)); // fills it: both are
    await flushed(server);
    expect(held()).toBe(clockAfter(3));
    store.failing = false;
  });

  it('goes on storing and sending when telling one peer throws', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    let thrown = 0;
    const broken = new (class extends MemorySocket {
      override send(data: Uint8Array) {
        if (data[0] === MessageKind.stored && data[1] !== 0) {
          thrown++; // (after the greeting)
          throw new Error('socket gone bad');
        }
        return super.send(data);
      }
    })();
    const reader = new MemorySocket();
    const conn = join(server, broken, { ...info(), acks: true });
    join(server, reader);
    await flushed(server);
    conn.receive(updateMessage(spanUpdate('PERSON')));
    await flushed(server);
    conn.receive(updateMessage(spanUpdate('ORG')));
    await flushed(server);
    expect(listSpans(reader.doc).map((sp) => sp.label).sort()).toEqual(['ORG', 'PERSON']);
    expect(store.rooms.get('doc:1:user:1')!.length).toBe(2);
    expect(server.rooms.get('doc:1:user:1')!.busy).toBe(false);
    expect(thrown).toBe(2);
  });

  it('says nothing of a failed store until it has been stored, nor of a read-only client’s dropped edits', async () => {
    const store = new MemoryStore();
    const server = new SyncServer({ store, log: silent, limits });
    const writer = new MemorySocket();
    const viewer = new MemorySocket();
    const conn = join(server, writer, { ...info(), acks: true });
    const viewerConn = join(server, viewer, { ...info('doc:1:user:1', true), acks: true });
    await flushed(server);
    store.failing = true;
    conn.receive(updateMessage(spanUpdate('PERSON')));
    viewerConn.receive(updateMessage(spanUpdate('ORG')));
    await new Promise((r) => setTimeout(r, 100));
    expect(storedCounts(writer)).toEqual([0]);
    store.failing = false;
    for (let i = 0; i < 100 && storedCounts(writer).length === 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(storedCounts(writer)).toEqual([0, 1]);
    expect(storedCounts(viewer)).toEqual([0]);
  });
});

describe('SyncServer metrics', () => {
  /** A server whose observer is the /metrics registry's, and a reader of one sample. */
  function measured(store: SyncStore = new MemoryStore(), bus?: SyncBus) {
    const metrics = createSyncMetrics(() => ({ rooms: 0, sockets: 0, queued: 0, queuedBytes: 0 }));
    const server = new SyncServer({ store, log: silent, limits, observer: metrics.observer, bus });
    const sample = async (name: string) => {
      const text = await metrics.registry.metrics();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    return { server, sample };
  }

  it('has every error kind at 0 from the start, so the first of each is an increase', async () => {
    const { sample } = measured();
    expect(await sample('spanwise_sync_errors_total{kind="store_failed"}')).toBe(0);
    expect(await sample('spanwise_sync_errors_total{kind="upgrade_failed"}')).toBe(0);
    expect(await sample('spanwise_sync_messages_out_total{kind="update"}')).toBe(0);
  });

  it('times a fan-out only when the update went out to someone', async () => {
    const store = new MemoryStore();
    const { server, sample } = measured(store);
    const alone = server.connect(new MemorySocket(), info());
    await flushed(server);
    const gpe = spanUpdate('GPE');
    alone.receive(updateMessage(gpe));
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(1);
    expect(await sample('spanwise_sync_fanout_seconds_count')).toBe(0);
    // The same update again: stored (the log keeps what came), sent to nobody new.
    server.connect(new MemorySocket(), info());
    await flushed(server);
    alone.receive(updateMessage(gpe));
    await flushed(server);
    expect(store.rooms.get('doc:1:user:1')).toHaveLength(2);
    expect(await sample('spanwise_sync_fanout_seconds_count')).toBe(0);
    alone.receive(updateMessage(spanUpdate('ORG', 5, 9)));
    await flushed(server);
    expect(await sample('spanwise_sync_fanout_seconds_count')).toBe(1);
  });

  it('times a failed store attempt, not only those that succeed', async () => {
    const store = new MemoryStore();
    const { server, sample } = measured(store);
    const w = server.connect(new MemorySocket(), info());
    await flushed(server);
    store.failing = true;
    w.receive(updateMessage(spanUpdate('GPE')));
    await new Promise((r) => setTimeout(r, 50));
    expect(await sample('spanwise_sync_store_failed_seconds_count')).toBe(1);
    expect(await sample('spanwise_sync_errors_total{kind="store_failed"}')).toBe(1);
    expect(await sample('spanwise_sync_store_seconds_count')).toBe(0);
    store.failing = false;
    await new Promise((r) => setTimeout(r, 300));
    expect(await sample('spanwise_sync_store_seconds_count')).toBe(1);
  });

  it('counts a load that fails because the bus cannot follow the room, and one set-aside that fails', async () => {
    const bus = {
      async join() {
        throw new Error('Redis is away');
      },
      leave() {},
      publish() {},
      async close() {},
    } satisfies SyncBus;
    const { server, sample } = measured(new MemoryStore(), bus);
    const socket = new MemorySocket();
    server.connect(socket, info());
    await flushed(server);
    expect(socket.closedWith).toBe(CloseCode.tryAgainLater);
    expect(await sample('spanwise_sync_errors_total{kind="load_failed"}')).toBe(1);

    const store = new MemoryStore();
    await store.append('doc:1:user:1', [spanUpdate('GPE'), new Uint8Array([9, 9, 9, 9])]);
    store.setAside = async () => {
      throw new Error('the database went away');
    };
    const other = measured(store);
    other.server.connect(new MemorySocket(), info());
    await flushed(other.server);
    // Counted as set aside only once it is (here it stays in the log, and loading skips it).
    expect(await other.sample('spanwise_sync_errors_total{kind="set_aside"}')).toBe(0);
    expect(await other.sample('spanwise_sync_errors_total{kind="set_aside_failed"}')).toBe(1);
  });
});
