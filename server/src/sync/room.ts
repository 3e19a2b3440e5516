/**
 * One room: a Y.Doc and its awareness, loaded from the store before it answers anything.
 *
 * Incoming updates are validated, queued, stored in one transaction per tick (group commit),
 * and only then applied and broadcast: a peer never receives an update the store does not hold.
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as encoding from 'lib0/encoding';
import { MessageKind } from '@spanwise/shared';
import type { SyncLogger, SyncStore } from './types.ts';

export interface RoomPeer {
  send(data: Uint8Array): void;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export class Room {
  readonly doc = new Y.Doc({ gc: true });
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  /** Each peer with the awareness client ids it controls. */
  readonly peers = new Map<RoomPeer, Set<number>>();
  readonly loaded: Promise<void>;
  #pending: Array<{ update: Uint8Array; origin: RoomPeer }> = [];
  #flushing = false;
  #destroyed = false;

  constructor(
    readonly name: string,
    private readonly store: SyncStore,
    private readonly log: SyncLogger,
    private readonly onIdle: (room: Room) => void,
  ) {
    // The server holds no awareness state of its own.
    this.awareness.setLocalState(null);
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === this) return; // loading from the store: peers get it through sync step 2
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MessageKind.sync);
      syncProtocol.writeUpdate(encoder, update);
      this.broadcast(encoding.toUint8Array(encoder), origin);
    });
    this.awareness.on('update', ({ added, updated, removed }: AwarenessChange, origin: unknown) => {
      const changed = added.concat(updated, removed);
      const controlled = origin instanceof Object ? this.peers.get(origin as RoomPeer) : undefined;
      if (controlled) {
        for (const id of added) controlled.add(id);
        for (const id of removed) controlled.delete(id);
      }
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MessageKind.awareness);
      encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed));
      this.broadcast(encoding.toUint8Array(encoder), null);
    });
    this.loaded = this.#load();
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  async #load(): Promise<void> {
    const rows = await this.store.load(this.name);
    for (const row of rows) {
      try {
        Y.decodeUpdate(row.data);
        Y.applyUpdate(this.doc, row.data, this);
      } catch (err) {
        // One bad row must not cost the room the rest of its history.
        this.log.error('sync_update_set_aside', { room: this.name, updateId: row.id, error: String(err) });
        await this.store.setAside(this.name, row.id, String(err));
      }
    }
  }

  /** Queues a validated update; it is stored with everything else queued this tick. */
  enqueue(update: Uint8Array, origin: RoomPeer): void {
    this.#pending.push({ update, origin });
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(() => void this.#flush());
    }
  }

  async #flush(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      try {
        await this.store.append(
          this.name,
          batch.map((b) => b.update),
        );
        delay = RETRY_MIN_MS;
      } catch (err) {
        // Keep the batch, in order, ahead of anything that arrived meanwhile, and try again.
        this.#pending = batch.concat(this.#pending);
        this.log.warn('sync_store_failed', { room: this.name, queued: this.#pending.length, retryInMs: delay, error: String(err) });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        continue;
      }
      for (const { update, origin } of batch) {
        try {
          Y.applyUpdate(this.doc, update, origin);
        } catch (err) {
          this.log.error('sync_apply_failed', { room: this.name, error: String(err) });
        }
      }
    }
    this.#flushing = false;
    if (this.peers.size === 0) this.onIdle(this);
  }

  /** Whether the room may be unloaded: no peers and nothing left to store. */
  get idle(): boolean {
    return this.peers.size === 0 && !this.#flushing && this.#pending.length === 0;
  }

  broadcast(message: Uint8Array, except: unknown): void {
    for (const peer of this.peers.keys()) {
      if (peer !== except) peer.send(message);
    }
  }

  destroy(): void {
    this.#destroyed = true;
    this.awareness.destroy();
    this.doc.destroy();
  }
}

interface AwarenessChange {
  added: number[];
  updated: number[];
  removed: number[];
}
