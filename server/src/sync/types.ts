/**
 * The sync core's seams: the socket it talks through, the store it persists to, the bus that
 * carries updates between server instances, and the observer that counts what happens.
 * None of them knows Hono, `ws`, Kysely or Redis; adapters/ provides the real ones, tests
 * in-memory ones.
 */

/** A connected peer, as the sync core sees it. */
export interface SyncSocket {
  /** Whether the frame went out (false: the socket is not open, or it is dropping its peer). */
  send(data: Uint8Array): boolean;
  close(code: number, reason: string): void;
}

export interface StoredUpdate {
  /** The store's id for the row, so a bad one can be set aside. */
  id: string;
  data: Uint8Array;
  /**
   * Which row of that id it is (PostgreSQL's xmin), where the store can tell: a compaction may
   * give the id to its snapshot, and only the row read may be set aside.
   */
  version?: string;
}

/** Where rooms' update logs live. */
export interface SyncStore {
  /**
   * Every stored update of a room (a snapshot among them, if one exists), in the order stored.
   * `reloading`: the room is open here already (loaded again: the bus lost track of it).
   */
  load(room: string, options?: { reloading?: boolean }): Promise<StoredUpdate[]>;
  /** Stores updates atomically: all of them or none (one transaction: group commit). */
  append(room: string, updates: readonly Uint8Array[]): Promise<void>;
  /**
   * Moves a stored row that no longer decodes or applies out of the room's log, keeping it;
   * with `version`, only that very row (an update or a snapshot), else only an update of that
   * id. Resolves whether it moved one (false: the row was replaced or moved meanwhile).
   */
  setAside(room: string, id: string, error: string, version?: string): Promise<boolean>;
  /** The room was unloaded here: drop any per-room bookkeeping. */
  release?(room: string): void;
}

export type BusMessageKind = 'update' | 'awareness';

/** What a room hears from other instances. */
export interface BusListener {
  message(kind: BusMessageKind, data: Uint8Array): void;
  /** The bus lost track of the room (its position was trimmed away): reload from the store. */
  reload(): void;
}

/**
 * Carries rooms' updates between server instances (at least once; duplicates are harmless to
 * Yjs). `join` fixes the room's position before the room loads from the store, so nothing
 * published after the load began is missed.
 */
export interface SyncBus {
  join(room: string, listener: BusListener): Promise<void>;
  /**
   * Stops following `room`; with `listener`, only if that is still whom the room's messages go
   * to (a room let go of while broken leaves after a fresh one of the same name has joined).
   * The room stays listed (reloaded by the others should this instance die) while any listener
   * that joined it has not left.
   */
  leave(room: string, listener?: BusListener): void;
  /** Publishes after the update is stored; never throws (the bus retries on its own). */
  publish(room: string, kind: BusMessageKind, data: Uint8Array): void;
  /** `settled`: every update received was stored, so all there is to publish has been. */
  close(settled?: boolean): Promise<void>;
}

/**
 * What a y-websocket message is, by its first bytes: a sync step 1 (a state vector), a sync
 * step 2 or update (document changes), awareness (presence), a query for awareness, auth, our
 * word that a client's edits are stored (MessageKind.stored), or something else (which does not
 * decode).
 */
export const MESSAGE_LABELS = ['sync_step1', 'sync_step2', 'update', 'awareness', 'query_awareness', 'auth', 'stored', 'unknown'] as const;
export type MessageLabel = (typeof MESSAGE_LABELS)[number];

/** What the sync core counts as an error, each also logged where it happens. */
export const SYNC_ERROR_KINDS = [
  'malformed',
  'store_failed',
  'set_aside',
  'set_aside_failed',
  'rate_limited',
  'too_big',
  'too_many_sockets',
  'too_many_opens',
  'load_failed',
  'greet_failed',
  'apply_failed',
  'room_broken',
  'broadcast_failed',
  'peer_dropped',
  'bus_failed',
  'bus_publish_failed',
  'reload_failed',
  'compaction_failed',
  'backlog_full',
  'presence_dropped',
  'upgrade_failed',
  'serve_failed',
  'access_recheck_failed',
  'flush_failed',
] as const;
export type SyncErrorKind = (typeof SYNC_ERROR_KINDS)[number];

/** Counts and times what the sync core does; every method optional. */
export interface SyncObserver {
  messageIn?(bytes: number, kind: MessageLabel): void;
  /** `count` messages of `bytes` each were sent (a broadcast reports once, not per peer). */
  messagesOut?(count: number, bytes: number, kind: MessageLabel): void;
  updatesStored?(count: number, seconds: number): void;
  /** A store attempt failed after `seconds` (its updates stay queued, and are tried again). */
  storeFailed?(seconds: number): void;
  fanOut?(seconds: number): void;
  error?(kind: SyncErrorKind): void;
}

export interface SyncLogger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export interface ConnectionInfo {
  room: string;
  userId: number;
  /** The user's username, where the socket's session is known: a presence state showing a user must carry it as `user.name`. */
  userName?: string;
  /** Updates from a read-only socket are dropped; the client is told once. */
  readOnly: boolean;
  /** The client asked to be told when what it sent is stored (MessageKind.stored). */
  acks?: boolean;
}
