/**
 * The sync service: hands each socket to its room, loads rooms on first use and unloads them
 * when their last socket has gone and their writes are stored. Transport-agnostic: an adapter
 * authenticates, then calls `connect()` with a SyncSocket and feeds it frames.
 *
 * @example
 *   const sync = new SyncServer({ store, log, limits });
 *   const conn = sync.connect(socket, { room: 'doc:1:user:2', userId: 2, readOnly: false });
 *   ws.on('message', (d) => conn.receive(d));
 */
import { CloseCode } from '@spanwise/shared';
import { Backlog, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_BYTES_PER_ROOM, DEFAULT_MAX_WAITING_FRAME_BYTES, socketFrameBound } from './backlog.ts';
import { Connection, type ConnectionLimits } from './connection.ts';
import { Room, type RoomPeer } from './room.ts';
import { errorKind } from './error-text.ts';
import { logThrottle } from '../log.ts';
import type { ConnectionInfo, SyncBus, SyncLogger, SyncObserver, SyncSocket, SyncStore } from './types.ts';

export interface SyncServerOptions {
  store: SyncStore;
  log: SyncLogger;
  limits: ConnectionLimits;
  /** Carries updates between instances when several run (Redis); null for one instance. */
  bus?: SyncBus | null;
  observer?: SyncObserver;
  /** A store that has not answered after this long is announced to peers as delayed (default 2 s). */
  storeDelayNoticeMs?: number;
}

export class SyncServer {
  readonly rooms = new Map<string, Room>();
  readonly connections = new Set<Connection>();
  readonly backlog: Backlog;
  readonly #loadFailures = logThrottle(10_000, { leftOut: (error, leftOut) => this.options.log.error('sync_room_load_failed', { error, leftOut }) });

  constructor(private readonly options: SyncServerOptions) {
    const frames = options.limits.maxWaitingFrameBytes ?? DEFAULT_MAX_WAITING_FRAME_BYTES;
    this.backlog = new Backlog({
      perRoom: options.limits.maxQueuedBytesPerRoom ?? DEFAULT_MAX_QUEUED_BYTES_PER_ROOM,
      total: options.limits.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
      frames,
      // A quarter of it (config.ts keeps that to at least what one socket may have waiting).
      framesPerUser: Math.min(frames, Math.max(frames / 4, socketFrameBound(options.limits.maxMessageBytes))),
    });
  }

  connect(socket: SyncSocket, info: ConnectionInfo): Connection {
    const room = this.#room(info.room);
    const conn = new Connection(socket, info, room, this.options.limits, this.options.log, this.options.observer ?? {}, (c) =>
      this.#closed(c),
    );
    this.connections.add(conn);
    return conn;
  }

  #room(name: string): Room {
    const existing = this.rooms.get(name);
    if (existing) return existing;
    const room = new Room(name, {
      store: this.options.store,
      bus: this.options.bus ?? null,
      backlog: this.backlog,
      log: this.options.log,
      observer: this.options.observer ?? {},
      storeDelayNoticeMs: this.options.storeDelayNoticeMs ?? 2_000,
      onIdle: (r) => this.#unloadIfIdle(r),
      onBroken: (r, blame) => this.#letGo(r, blame),
      storedAfterBreaking: (r, updates) => {
        const fresh = this.rooms.get(r.name);
        if (fresh && fresh !== r) for (const update of updates) fresh.storedByPredecessor(update);
      },
    });
    this.rooms.set(name, room);
    // A room that failed to load is dropped so the next connection tries afresh, and destroyed
    // (its doc, and its awareness' timer) so that failures during an outage leave nothing behind.
    // Logged once per load, not per socket that waited on it, and each kind of failure at most
    // once every 10 s (with how many were left out): during an outage every client retries.
    room.loaded.catch((err: unknown) => {
      const pass = this.#loadFailures(String((err as { code?: unknown } | null)?.code ?? errorKind(err)));
      if (pass) this.options.log.error('sync_room_load_failed', { room: name, sockets: room.peers.size, error: String(err), ...pass });
      this.#forget(room);
    });
    return room;
  }

  #closed(conn: Connection): void {
    this.connections.delete(conn);
    this.#unloadIfIdle(conn.room);
  }

  /**
   * A room whose doc Yjs left unusable: the next socket gets a fresh one, loaded from the store
   * (which sets the update to blame aside), and this one's sockets are told to reconnect; but
   * the one whose update it was (`blame`, when known) is closed as having sent what the server
   * cannot take (4400): a client waits for its person then, instead of sending it again at once.
   * It stores what it still has queued, then goes (or goes once its load settles).
   */
  #letGo(room: Room, blame?: RoomPeer): void {
    if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
    this.#lettingGo.add(room);
    // It stays on the bus, listed, until it is destroyed: what it still stores is published
    // (should this instance die first, the others reload the room).
    for (const conn of [...this.connections]) {
      if (conn.room !== room) continue;
      if (conn === blame) conn.close(CloseCode.malformed, 'an update of yours left the room unusable: not sent again');
      else conn.close(CloseCode.tryAgainLater, 'the room is reloading: reconnect');
    }
    this.#unloadIfIdle(room);
  }

  /** Rooms let go of (broken) that still store what they had queued. */
  readonly #lettingGo = new Set<Room>();

  #unloadIfIdle(room: Room): void {
    const lettingGo = this.#lettingGo.has(room);
    if (!room.idle || (this.rooms.get(room.name) !== room && !lettingGo)) return;
    // Unload only after loading settled, so a late load cannot touch a destroyed doc.
    room.loaded.then(
      () => {
        if (room.idle) this.#forget(room);
      },
      () => {},
    );
  }

  /**
   * Drops a room loaded here, or one let go of, and destroys it — releasing its name in the
   * store only if no fresh room of that name is loaded, whose bookkeeping it would be.
   */
  #forget(room: Room): void {
    if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
    else if (!this.#lettingGo.delete(room)) return; // (already forgotten)
    room.destroy(!this.rooms.has(room.name));
  }

  /** What counts this server's events (metrics), for the transport's own refusals. */
  get observer(): SyncObserver {
    return this.options.observer ?? {};
  }

  /** Figures for monitoring: rooms loaded, sockets open, updates (and bytes) received but not yet stored. */
  stats(): { rooms: number; sockets: number; queued: number; queuedBytes: number } {
    let queued = 0;
    for (const room of this.#allRooms()) queued += room.pendingCount;
    return { rooms: this.rooms.size, sockets: this.connections.size, queued, queuedBytes: this.backlog.bytes };
  }

  /** Closes every socket, then waits (up to `timeoutMs`) until every queued update is stored. */
  async close(timeoutMs = 10_000): Promise<void> {
    for (const conn of [...this.connections]) conn.close(CloseCode.goingAway, 'server shutting down');
    const deadline = performance.now() + timeoutMs;
    while (this.#allRooms().some((r) => !r.idle) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const unsaved = this.#allRooms().filter((r) => r.pendingCount > 0);
    if (unsaved.length > 0) {
      this.options.log.error('sync_unsaved_on_close', {
        updates: unsaved.reduce((n, r) => n + r.pendingCount, 0),
        rooms: unsaved.slice(0, 100).map((r) => r.name),
      });
    }
    await this.options.bus?.close(this.#allRooms().every((r) => r.idle));
  }

  /** Rooms loaded, and those let go of that still store what they had queued. */
  #allRooms(): Room[] {
    return [...this.rooms.values(), ...this.#lettingGo];
  }
}
