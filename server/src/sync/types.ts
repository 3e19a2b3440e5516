/**
 * The sync core's two seams: the socket it talks through and the store it persists to.
 * Neither knows Hono, `ws` or Kysely; adapters/ provides the real ones, tests in-memory ones.
 */

/** A connected peer, as the sync core sees it. */
export interface SyncSocket {
  send(data: Uint8Array): void;
  close(code: number, reason: string): void;
}

export interface StoredUpdate {
  /** The store's id for the row, so a bad one can be set aside. */
  id: string;
  data: Uint8Array;
}

/** Where rooms' update logs live. */
export interface SyncStore {
  /** Every stored update of a room (a snapshot first, if one exists), oldest first. */
  load(room: string): Promise<StoredUpdate[]>;
  /** Stores updates atomically: all of them or none (one transaction: group commit). */
  append(room: string, updates: readonly Uint8Array[]): Promise<void>;
  /** Moves a stored update that no longer decodes out of the room's log, keeping it. */
  setAside(room: string, id: string, error: string): Promise<void>;
}

export interface SyncLogger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export interface ConnectionInfo {
  room: string;
  userId: number;
  /** Updates from a read-only socket are dropped; the client is told once. */
  readOnly: boolean;
}
