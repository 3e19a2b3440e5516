/**
 * One room: a Y.Doc and its awareness, loaded from the store before it answers anything.
 *
 * Incoming updates are validated, queued, stored in one transaction per tick (group commit),
 * and only then applied, broadcast and published to other instances: a peer never receives an
 * update the store does not hold. While the store fails, or takes longer than storeDelayNoticeMs
 * to answer (a database behind a network that drops packets never fails at all), updates stay
 * queued in order and the room tells its peers through the server's awareness state
 * (`{ server: { saving: 'delayed' } }`).
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as encoding from 'lib0/encoding';
import { MessageKind } from '@spanwise/shared';
import { readPresenceEntries, writePresenceEntries } from '@spanwise/shared/presence-entries';
import { queuedBytes, type Backlog } from './backlog.ts';
import { errorKind } from './error-text.ts';
import { messageLabel } from './message-label.ts';
import { MAX_PRESENCE_DEPTH, nestsDeeperThan } from './presence-depth.ts';
import type { BusListener, BusMessageKind, StoredUpdate, SyncBus, SyncLogger, SyncObserver, SyncStore } from './types.ts';

export interface RoomPeer {
  /** Whether it went to the peer. */
  send(data: Uint8Array): boolean;
  /** `count` of the updates it queued (enqueue) are stored. */
  stored?(count: number): void;
  /** Whose socket it is (for the log). */
  readonly info?: { readonly userId: number };
}

export interface RoomDeps {
  store: SyncStore;
  bus: SyncBus | null;
  /** Bounds the bytes waiting to be stored, here and across the server. */
  backlog: Backlog;
  log: SyncLogger;
  observer: SyncObserver;
  /** A store that has not answered after this long is announced as delayed, as a failed one is. */
  storeDelayNoticeMs: number;
  onIdle(room: Room): void;
  /**
   * Yjs failed part-way through applying an update and left the doc unusable (see docBroken):
   * the server lets the room go and has its peers reconnect to a fresh one, loaded from the store.
   * `blame`: the peer whose updates alone did it (a batch of its own), told not to send them again.
   */
  onBroken(room: Room, blame?: RoomPeer): void;
  /**
   * A room let go of stored `updates` after all: a fresh room of its name may have loaded
   * before they were, and this instance's bus does not bring back its own.
   */
  storedAfterBreaking(room: Room, updates: readonly Uint8Array[]): void;
}

/** Awareness state the server itself publishes in a room. */
export interface ServerAwareness {
  server: { saving: 'delayed'; queued: number };
}

/** Presence ids a room remembers before it forgets those long gone (see forgetOldPresence). */
const PRESENCE_MEMORY = 1_024;
/** A room remembers at most this many presence ids: past it, new ones are refused. */
export const MAX_ROOM_PRESENCE_IDS = 20_000;
/**
 * New presence ids one user may show a room within PRESENCE_WINDOW_MS, over all their sockets:
 * a socket's own cap starts again when it reconnects. (A page shows one id per open layer.)
 */
export const MAX_PRESENCE_IDS_PER_USER = 2_048;
/** How long ids are remembered at least: a removed state's id is forgotten two timeouts later. */
const PRESENCE_WINDOW_MS = 2 * awarenessProtocol.outdatedTimeout;
/** A scan for ids to forget runs at most once this often (or sooner once the ids have doubled). */
const PRESENCE_SCAN_MS = 1_000;
/** Rows one failed load sets aside ahead of the next (see #setAsideLaterBreakers). */
const MAX_BREAKERS_PER_LOAD = 16;
/** Rows those scratch passes apply in all, at most (a pass applies the room's whole log). */
const LOOK_AHEAD_ROWS = 200_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/**
 * Updates stored (and then applied) in one batch at most. Those of one tick are far fewer;
 * what queued during a long outage goes in batches, so that neither one transaction nor one
 * apply holds the event loop for long.
 */
export const MAX_BATCH_UPDATES = 1_000;
/** Origins that are not peers: loading from the store, another instance, a peer leaving. */
const FROM_STORE = Symbol('store');
const FROM_BUS = Symbol('bus');
/** A room of the same name, let go of, that stored it after this one loaded (see storedAfterBreaking). */
const FROM_PREDECESSOR = Symbol('predecessor');
export const PEER_LEFT = Symbol('peer-left');
/** A batch from several peers: broadcast to everyone (a peer ignores its own echo). */
const BATCH = Symbol('batch');

/**
 * Whether Yjs left the doc mid-transaction. Some updates decode, and even integrate, but make
 * Yjs' transaction cleanup throw (a crafted one can): the cleanup list is then never cleared, and
 * the doc emits no 'update' again — a room that stores what it receives and sends nothing on.
 */
function docBroken(doc: Y.Doc): boolean {
  const internals = doc as unknown as { _transaction: unknown; _transactionCleanups: unknown[] };
  return internals._transaction !== null || internals._transactionCleanups.length > 0;
}

/**
 * What applying a stored row did: whether it decoded, what it threw (or null), whether content
 * waited before it, whether it left the doc unusable.
 */
interface RowOutcome {
  decoded: boolean;
  error: unknown;
  waiting: boolean;
  broken: boolean;
}

/** Applies a stored row to `doc` as loading does (a row that does not decode is not applied). */
function applyRow(doc: Y.Doc, data: Uint8Array, origin?: unknown): RowOutcome {
  const waiting = doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
  let decoded = false;
  let error: unknown = null;
  try {
    Y.decodeUpdate(data);
    decoded = true;
    Y.applyUpdate(doc, data, origin);
  } catch (err) {
    error = err;
  }
  return { decoded, error, waiting, broken: docBroken(doc) };
}

/**
 * Whether loading sets a row aside: it left the doc unusable, or it failed other than in
 * retrying content that waited (then it is not to blame: see #applyStored).
 */
function setAsideByLoad({ decoded, error, waiting, broken }: RowOutcome): boolean {
  return broken || (error !== null && !(waiting && decoded));
}

/** A stored update left the doc unusable while loading: the load fails, and the next is clean. */
class BrokenByStoredUpdate extends Error {}

function updateMessage(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageKind.sync);
  syncProtocol.writeUpdate(encoder, update);
  return encoding.toUint8Array(encoder);
}

/** An update received and not yet stored. */
interface QueuedUpdate {
  /** Null: nothing to store, only a place in the line (see waitTurn). */
  update: Uint8Array | null;
  origin: RoomPeer;
  receivedAt: number;
  /** Its runs of structs, each [client, first clock, clock past the last] (see structRuns). */
  runs: ReadonlyArray<readonly [number, number, number]>;
  /** What it is counted as toward the backlog's bounds (queuedBytes). */
  held: number;
}

/** What a doc's Yjs holds back (its v2 updates, and what each client's structs wait for), as a batch began. */
interface HeldBack {
  structs: Uint8Array | null;
  missing: ReadonlyMap<number, number> | null;
  ds: Uint8Array | null;
}

/**
 * Whether what Yjs held back before a batch (it tries it again inside the batch's transaction)
 * is all of clients the batch writes itself: then the batch's sender answers for what broke the
 * doc, whichever of its updates it was. Content of anyone else's held back (another peer's, sent
 * before what it waits for), or that cannot be read, blames no one.
 */
function onlyOwnHeldBack(held: HeldBack, batch: readonly QueuedUpdate[]): boolean {
  if (!held.structs && !held.ds) return true;
  const own = new Set(batch.flatMap((b) => b.runs.map(([client]) => client)));
  const heldClients: number[] = [];
  for (const update of [held.structs, held.ds]) {
    if (!update) continue;
    try {
      // (Yjs keeps what it holds back in its v2 encoding.)
      const { structs, ds } = Y.decodeUpdateV2(update);
      heldClients.push(...structs.map((struct) => struct.id.client), ...ds.clients.keys());
    } catch {
      return false;
    }
  }
  return heldClients.length > 0 && heldClients.every((client) => own.has(client));
}

/**
 * Whether a batch may let through content Yjs held back (`missing`: for each client, the clock
 * it waits for): one of its runs holds such a clock, or deletes wait (`ds`), which any batch may
 * answer. Not every batch in a room that holds something back for good (behind a set-aside row).
 */
function releasesHeldBack(held: HeldBack, batch: readonly QueuedUpdate[]): boolean {
  if (held.ds) return true;
  if (!held.missing) return false;
  for (const { runs } of batch) {
    for (const [client, from, to] of runs) {
      const clock = held.missing.get(client);
      if (clock !== undefined && from <= clock && clock < to) return true;
    }
  }
  return false;
}

/**
 * A presence update from another instance without its states nested too deeply (see
 * MAX_PRESENCE_DEPTH): `update` itself when it has none, null when it has nothing else. A state
 * with no more brackets than the depth allowed cannot nest deeper, and is not parsed.
 */
function withoutDeepPresence(update: Uint8Array): Uint8Array | null {
  const entries = readPresenceEntries(update);
  const kept = entries.filter(({ state }) => {
    let brackets = 0;
    for (let i = 0; i < state.length && brackets <= MAX_PRESENCE_DEPTH; i++) {
      const c = state.charCodeAt(i);
      if (c === 0x5b || c === 0x7b) brackets++; // [ {
    }
    return brackets <= MAX_PRESENCE_DEPTH || !nestsDeeperThan(JSON.parse(state));
  });
  if (kept.length === entries.length) return update;
  return kept.length > 0 ? writePresenceEntries(kept) : null;
}

/** An update's runs of structs with no gap, each [client, first clock, clock past the last]. */
export function structRuns(structs: ReadonlyArray<Y.Item | Y.GC | Y.Skip>): Array<[number, number, number]> {
  const runs: Array<[number, number, number]> = [];
  let run: [number, number, number] | null = null;
  for (const struct of structs) {
    if (struct instanceof Y.Skip) {
      run = null; // (a gap: what follows is not known to join what came before)
      continue;
    }
    const { client, clock } = struct.id;
    if (run && run[0] === client && run[2] === clock) run[2] = clock + struct.length;
    else {
      run = [client, clock, clock + struct.length];
      runs.push(run);
    }
  }
  return runs;
}

export class Room {
  readonly doc = new Y.Doc({ gc: true });
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  /** Each peer with the awareness client ids it controls. */
  readonly peers = new Map<RoomPeer, Set<number>>();
  /** The other way round: the peer that controls each id (kept with `peers`, by #hold). */
  readonly #holders = new Map<number, RoomPeer>();
  readonly loaded: Promise<void>;
  #pending: QueuedUpdate[] = [];
  /** The batch the store is writing now. */
  #storing: QueuedUpdate[] = [];
  /** The batch stored in the flush under way whose senders have not been told yet (see #flushFailed). */
  #unreported: QueuedUpdate[] | null = null;
  /** Counts the changes to what is queued or being stored (for stateVectorWithQueued's copy). */
  #queueChanges = 0;
  #heldVector: { queue: number; doc: string; vector: Uint8Array } | null = null;
  #heldBytes = 0;
  #flushing = false;
  /** Peers the doc's updates went out to, counted while a stored batch is applied (for fanOut). */
  #sentOn = 0;
  /** The bus lost track of the room: reload from the store at the next point between batches. */
  #reloadWanted = false;
  #destroyed = false;
  /** The doc is unusable (docBroken): what is queued is still stored, nothing is applied or sent. */
  #broken = false;
  /** What the bus calls with this room's messages (and, leaving, whether it still does). */
  readonly #busListener: BusListener = {
    message: (kind, data) => this.#fromBus(kind, data),
    reload: () => this.#requestReload(),
  };
  /** After the first load, reloads (the bus lost track) are broadcast like any remote update. */
  #loadedOnce = false;
  #presenceScannedAt = -Infinity;
  #presenceAfterScan = 0;
  /** New presence ids each user has shown the room, counted from `since`. */
  readonly #presenceShownBy = new Map<number, { count: number; since: number }>();
  #shownByScannedAt = -Infinity;

  constructor(
    readonly name: string,
    private readonly deps: RoomDeps,
  ) {
    // The server holds no awareness state of its own unless saving is delayed.
    this.awareness.setLocalState(null);
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === FROM_STORE) return; // loading: peers get it through sync step 2
      // What the doc integrated, as Yjs encodes it: a peer never receives what this server
      // could not apply, nor what the room already had (a reconnecting client's whole delete
      // set, say), and does receive what an update let through that was waiting on it.
      // Nothing may throw out of here: Yjs emits this inside its transaction cleanup, and a
      // throw would leave the doc's cleanup list uncleared, so no later update would go out.
      try {
        this.#sentOn += this.broadcast(updateMessage(update), origin);
      } catch (err) {
        this.deps.observer.error?.('broadcast_failed');
        this.deps.log.error('sync_broadcast_failed', { room: this.name, error: String(err) });
      }
    });
    this.awareness.on('update', ({ added, updated, removed }: AwarenessChange, origin: unknown) => {
      const changed = added.concat(updated, removed);
      // Each live state belongs to the socket that last set it (a state that comes back after it
      // was removed counts as updated, not added); a removed one to nobody, whoever removed it
      // (its socket, another that relayed it, a timeout, another instance). One another instance
      // set (or renewed) belongs to a socket there: a client that moved instances while its old
      // socket here was half-open is not removed everywhere when that socket is found dead. A
      // socket's states are removed when it goes, and their number is capped (connection.ts).
      const peer = this.peers.has(origin as RoomPeer) ? (origin as RoomPeer) : null;
      for (const id of removed) this.#sizePresence(id, 0);
      for (const id of added.concat(updated)) this.#sizePresence(id, JSON.stringify(this.awareness.states.get(id) ?? null).length);
      for (const id of removed) this.#hold(id, null);
      if (peer || origin === FROM_BUS) for (const id of added.concat(updated)) this.#hold(id, peer);
      const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed);
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MessageKind.awareness);
      encoding.writeVarUint8Array(encoder, update);
      this.broadcast(encoding.toUint8Array(encoder), null);
      if (peer || origin === PEER_LEFT) this.deps.bus?.publish(this.name, 'awareness', update);
    });
    this.loaded = this.#load();
  }

  /** The length of each presence state's JSON text, and their sum: what the room's presence holds. */
  readonly #presenceSizes = new Map<number, number>();
  #presenceBytes = 0;

  #sizePresence(id: number, size: number): void {
    this.#presenceBytes += size - (this.#presenceSizes.get(id) ?? 0);
    if (size > 0) this.#presenceSizes.set(id, size);
    else this.#presenceSizes.delete(id);
  }

  /** The length of presence id `id`'s state as JSON text (0 without one). */
  presenceSize(id: number): number {
    return this.#presenceSizes.get(id) ?? 0;
  }

  /** The length of every presence state in the room as JSON text, together. */
  get presenceBytes(): number {
    return this.#presenceBytes;
  }

  /** Makes `peer` (or no one here) the holder of presence id `id`, in `#holders` and in `peers`. */
  #hold(id: number, peer: RoomPeer | null): void {
    const before = this.#holders.get(id);
    if (before === peer) return;
    if (before) this.peers.get(before)?.delete(id);
    if (peer) {
      this.peers.get(peer)?.add(id);
      this.#holders.set(id, peer);
    } else {
      this.#holders.delete(id);
    }
  }

  /** The peer here that controls presence id `id`, if any. */
  holderOf(id: number): RoomPeer | undefined {
    return this.#holders.get(id);
  }

  /** Takes `peer` out of the room; returns the presence ids it controlled (to be removed). */
  removePeer(peer: RoomPeer): Set<number> | undefined {
    const controlled = this.peers.get(peer);
    this.peers.delete(peer);
    for (const id of controlled ?? []) if (this.#holders.get(id) === peer) this.#holders.delete(id);
    return controlled;
  }

  /** Updates received and not yet stored: queued, and the batch being stored. */
  get pendingCount(): number {
    return this.#pending.length + this.#storing.length;
  }

  /**
   * The doc's state vector with what waits to be stored on top of it (applied only once
   * stored). A peer greeted with it does not send again what is queued: a client reconnecting
   * while the database is away would otherwise queue every edit it has not seen stored once
   * more, each time. What it claims is stored before anything the peer sends next (the queue
   * goes in order), so a peer told its next frames are stored knows these are too.
   */
  stateVectorWithQueued(): Uint8Array {
    const own = Y.encodeStateVector(this.doc);
    if (this.pendingCount === 0) return own;
    // Kept while neither the queue nor the doc changes: peers reconnecting one after another
    // during an outage would each walk a queue of up to some hundred thousand entries.
    const docKey = own.join(',');
    if (this.#heldVector?.queue === this.#queueChanges && this.#heldVector.doc === docKey) return this.#heldVector.vector;
    const vector = Y.decodeStateVector(own);
    const runsOf = new Map<number, Array<readonly [number, number]>>();
    for (const { runs } of [...this.#storing, ...this.#pending]) {
      for (const [client, from, to] of runs) {
        const list = runsOf.get(client);
        if (list) list.push([from, to]);
        else runsOf.set(client, [[from, to]]);
      }
    }
    for (const [client, runs] of runsOf) {
      // A run counts once what comes before it is there: in the doc, or queued.
      let clock = vector.get(client) ?? 0;
      for (const [from, to] of runs.sort((a, b) => a[0] - b[0])) if (from <= clock && to > clock) clock = to;
      if (clock > 0) vector.set(client, clock);
    }
    const encoded = Y.encodeStateVector(vector);
    this.#heldVector = { queue: this.#queueChanges, doc: docKey, vector: encoded };
    return encoded;
  }

  /**
   * Drops y-protocols' memory of presence ids whose state went more than two timeouts ago,
   * once it remembers many: it keeps a clock for every id it was ever shown, so that an older
   * message cannot bring a state back; after that long none is still in flight. Run before
   * applying a presence message.
   */
  forgetOldPresence(now = Date.now(), force = false): void {
    const meta = this.awareness.meta;
    if (meta.size <= PRESENCE_MEMORY) return;
    // A scan reads every id remembered: not at every message (a flood of empty presence
    // messages would make each cost the whole memory), at most once a second, or sooner once
    // the memory has doubled since the last, so its cost per id stays bounded.
    if (!force && now - this.#presenceScannedAt < PRESENCE_SCAN_MS && meta.size < 2 * Math.max(this.#presenceAfterScan, PRESENCE_MEMORY)) return;
    const states = this.awareness.states;
    for (const [id, m] of meta) {
      // Never its own: its clock must go on rising, or peers would ignore its next notice.
      if (id === this.awareness.clientID) continue;
      if (!states.has(id) && now - m.lastUpdated > PRESENCE_WINDOW_MS) meta.delete(id);
    }
    this.#presenceScannedAt = now;
    this.#presenceAfterScan = meta.size;
  }

  /**
   * Before `count` new presence ids would take the room past what it remembers at most: forgets
   * those gone long enough at once (which a throttled scan may not have done yet). Returns
   * whether it did: a presence message checked before must then be checked again, against what
   * is left.
   */
  forgetToMakeRoom(count: number, now = Date.now()): boolean {
    if (count === 0 || this.awareness.meta.size + count <= MAX_ROOM_PRESENCE_IDS) return false;
    this.forgetOldPresence(now, true);
    return true;
  }

  /**
   * Counts `count` presence ids that `userId` is the first to show this room; null when admitted,
   * else (counting nothing) what it is past: `user`, what one user may show it in a while, or
   * `room`, what the room remembers at most (see forgetToMakeRoom).
   */
  admitPresenceIds(userId: number, count: number, now = Date.now()): 'user' | 'room' | null {
    if (count === 0) return null;
    if (this.awareness.meta.size + count > MAX_ROOM_PRESENCE_IDS) return 'room';
    let shown = this.#presenceShownBy.get(userId);
    if (!shown && this.#presenceShownBy.size >= PRESENCE_MEMORY && now - this.#shownByScannedAt >= PRESENCE_SCAN_MS) {
      // A room open for days sees many users come and go: forget those whose window has passed
      // (at most once a second: a burst of newcomers must not each scan them all).
      this.#shownByScannedAt = now;
      for (const [id, s] of this.#presenceShownBy) if (now - s.since > PRESENCE_WINDOW_MS) this.#presenceShownBy.delete(id);
    }
    if (!shown || now - shown.since > PRESENCE_WINDOW_MS) {
      shown = { count: 0, since: now };
      this.#presenceShownBy.set(userId, shown);
    }
    if (shown.count + count > MAX_PRESENCE_IDS_PER_USER) return 'user';
    shown.count += count;
    return null;
  }

  /** Bytes held here: updates waiting to be stored, and peers' frames waiting their turn. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Holds `bytes` waiting here; false (holding nothing) past the room's or the server's bound. */
  hold(bytes: number): boolean {
    if (!this.deps.backlog.take(bytes, this.#heldBytes)) return false;
    this.#heldBytes += bytes;
    return true;
  }

  letGo(bytes: number): void {
    this.#heldBytes -= bytes;
    this.deps.backlog.give(bytes);
  }

  /** Holds a waiting frame that stores nothing from `userId`'s socket; null, or the bound it would pass. */
  holdFrame(bytes: number, userId: number): 'user' | 'server' | null {
    return this.deps.backlog.takeFrame(bytes, userId);
  }

  letGoFrame(bytes: number, userId: number): void {
    this.deps.backlog.giveFrame(bytes, userId);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  async #load(): Promise<void> {
    const bus = this.deps.bus;
    try {
      if (bus) await bus.join(this.name, this.#busListener);
      await this.#applyStored();
    } catch (err) {
      bus?.leave(this.name, this.#busListener);
      this.deps.observer.error?.('load_failed');
      throw err;
    }
  }

  async #applyStored(): Promise<void> {
    const rows = await this.deps.store.load(this.name, { reloading: this.#loadedOnce });
    /** Rows this load moved out of the log (the next load will not have them). */
    const movedAside = new Set<StoredUpdate['id']>();
    for (const row of rows) {
      // Broken meanwhile (by what the bus brought while this waited): no row is to blame, and
      // the room is being let go of.
      if (this.#destroyed || this.#broken) return;
      // Content that waits on something missing is tried again inside a later row's apply: if
      // that throws, the later row is not to blame (it may well be sound, and what its author
      // wrote next builds on it), so nothing is set aside then; compaction, off the event loop,
      // sets aside the waiting row that failed where it can show which (merge-log.mjs).
      const outcome = applyRow(this.doc, row.data, this.#loadedOnce ? FROM_BUS : FROM_STORE);
      const { error, broken, waiting } = outcome;
      // Unusable on a first load, which is to fail: nothing the bus brings is applied meanwhile
      // (this room is let go of once the load fails; its sockets are told to come back).
      if (broken && !this.#loadedOnce) this.#broken = true;
      if (error === null && !broken) continue;
      if (!setAsideByLoad(outcome)) {
        this.deps.observer.error?.('apply_failed');
        this.deps.log.error('sync_stored_update_failed', { room: this.name, updateId: row.id, whileWaiting: true, error: errorKind(error) });
        continue;
      }
      // One bad row must not cost the room the rest of its history. (The whole error is kept
      // with the row, in the database; the log only names its kind.) One that left the doc
      // unusable goes too, waiting content or not: nothing could be loaded past it.
      const moved = await this.#setAside(row, error, broken ? { broke: true, whileWaiting: waiting } : {});
      if (moved) movedAside.add(row.id);
      if (broken) {
        // Loaded again without it: a first load fails (its sockets are told to try again), a
        // reload lets the room go (and the fresh room's first load comes here).
        if (this.#loadedOnce) {
          this.#break('reload');
          return;
        }
        if (moved) await this.#setAsideLaterBreakers(rows, movedAside);
        throw new BrokenByStoredUpdate(`stored update ${row.id} left the document unusable`);
      }
    }
    this.#loadedOnce = true;
  }

  /**
   * Moves a stored row out of the room's log (kept, with its error, in the database), logged
   * and counted. True if it moved; false if it was gone (replaced meanwhile: compacted by another
   * instance, say; the next load reads anew) or could not be moved (left in the log: loading
   * skips it again next time, or, if it leaves the doc unusable, fails until it can be moved).
   */
  async #setAside(row: StoredUpdate, error: unknown, fields: Record<string, unknown>): Promise<boolean> {
    const logged = { room: this.name, updateId: row.id, error: errorKind(error), ...fields };
    try {
      const moved = await this.deps.store.setAside(this.name, row.id, String(error ?? 'left the document unusable'), row.version);
      if (moved) {
        this.deps.log.error('sync_update_set_aside', logged);
        this.deps.observer.error?.('set_aside');
      } else {
        this.deps.log.warn('sync_update_set_aside_gone', logged);
      }
      return moved;
    } catch (setAsideErr) {
      this.deps.observer.error?.('set_aside_failed');
      this.deps.log.error('sync_set_aside_failed', { room: this.name, updateId: row.id, error: String(setAsideErr) });
      return false;
    }
  }

  /**
   * A first load found a row that leaves the doc unusable (set aside, with the others it moved:
   * `movedAside`): its sockets are told to try again, and each further such row would cost them
   * another failed load (and a longer wait). So the rows the next load will read are applied
   * again on scratch docs, judged as it would judge them, and each row it would set aside is set
   * aside now, a pass at a time (up to MAX_BREAKERS_PER_LOAD rows, and LOOK_AHEAD_ROWS rows
   * applied in all: a pass holds the event loop as long as a load does, and yields between
   * passes), so the next load is whole.
   */
  async #setAsideLaterBreakers(rows: readonly StoredUpdate[], movedAside: Set<StoredUpdate['id']>): Promise<void> {
    let budget = LOOK_AHEAD_ROWS;
    for (let found = 0; found < MAX_BREAKERS_PER_LOAD && budget >= rows.length && !this.#destroyed; found++) {
      budget -= rows.length;
      await new Promise((r) => setImmediate(r));
      const scratch = new Y.Doc({ gc: true });
      let breaker: { row: StoredUpdate; outcome: RowOutcome } | null = null;
      for (const row of rows) {
        if (movedAside.has(row.id)) continue;
        const outcome = applyRow(scratch, row.data);
        if (!outcome.decoded) continue; // (the load sets it aside, unapplied)
        // As the load judges it: one that throws while content waits (and leaves the doc
        // whole) stays; one that throws otherwise the next load would set aside, so this pass
        // has gone wrong from it and starts again without it.
        if (setAsideByLoad(outcome)) {
          breaker = { row, outcome };
          break;
        }
      }
      try {
        scratch.destroy();
      } catch {
        // (A doc Yjs left mid-transaction: it is dropped all the same.)
      }
      if (!breaker) return;
      const { broken, waiting, error } = breaker.outcome;
      const fields = broken ? { broke: true, whileWaiting: waiting, foundAhead: true } : { foundAhead: true };
      if (!(await this.#setAside(breaker.row, error, fields))) return;
      movedAside.add(breaker.row.id);
    }
  }

  /** The doc is unusable: stop applying, and have the server let the room go (see onBroken). */
  #break(where: 'update' | 'bus' | 'reload' | 'predecessor', blame?: RoomPeer): void {
    if (this.#broken) return;
    this.#broken = true;
    this.deps.observer.error?.('room_broken');
    this.deps.log.error('sync_room_broken', { room: this.name, where, ...(blame?.info ? { userId: blame.info.userId } : {}) });
    this.deps.onBroken(this, blame);
  }

  /**
   * An update a room of this name let go of stored after this one began loading: applied as the
   * bus's are, and sent on to the peers.
   */
  storedByPredecessor(update: Uint8Array): void {
    this.#applyFrom('predecessor', () => {
      Y.decodeUpdate(update);
      Y.applyUpdate(this.doc, update, FROM_PREDECESSOR);
    });
  }

  #fromBus(kind: BusMessageKind, data: Uint8Array): void {
    this.#applyFrom('bus', () => {
      if (kind === 'update') {
        Y.decodeUpdate(data);
        Y.applyUpdate(this.doc, data, FROM_BUS);
      } else {
        // Ids shown on other instances are remembered here too: forgotten as a peer's are.
        this.forgetOldPresence();
        const update = withoutDeepPresence(data);
        if (update !== data) {
          // Every instance refuses such a state from its own sockets: only one of an older
          // version (a rolling deploy) could pass it on. Kept, it would break every greeting.
          this.deps.log.error('sync_bus_message_rejected', { room: this.name, kind, error: 'presence state nested too deeply' });
          this.deps.observer.error?.('bus_failed');
        }
        if (update) awarenessProtocol.applyAwarenessUpdate(this.awareness, update, FROM_BUS);
      }
    }, kind);
  }

  /** Applies what came from elsewhere than a peer: what it throws is logged and counted, and a doc it left unusable lets the room go. */
  #applyFrom(from: 'bus' | 'predecessor', apply: () => void, kind?: BusMessageKind): void {
    if (this.#destroyed || this.#broken) return;
    try {
      apply();
    } catch (err) {
      if (from === 'bus') {
        this.deps.log.error('sync_bus_message_rejected', { room: this.name, kind, error: errorKind(err) });
        this.deps.observer.error?.('bus_failed');
      } else {
        this.deps.observer.error?.('apply_failed');
        this.deps.log.error('sync_apply_failed', { room: this.name, from, error: errorKind(err) });
      }
    }
    if (docBroken(this.doc)) this.#break(from);
  }

  /**
   * Queues a validated update, with its runs of structs (structRuns); it is stored with
   * everything else queued by then (in batches of at most MAX_BATCH_UPDATES). False (and not
   * queued) when the room or the server holds too much waiting to be stored.
   */
  enqueue(update: Uint8Array, origin: RoomPeer, runs: QueuedUpdate['runs']): boolean {
    return this.#queue(update, origin, runs);
  }

  /**
   * A place in the line for a frame of `origin`'s with nothing to store, reported stored once
   * everything queued ahead of it is (see stateVectorWithQueued). False past the bounds.
   */
  waitTurn(origin: RoomPeer): boolean {
    return this.#queue(null, origin, []);
  }

  #queue(update: Uint8Array | null, origin: RoomPeer, runs: QueuedUpdate['runs']): boolean {
    const held = queuedBytes(update?.byteLength ?? 0, runs.length);
    if (!this.hold(held)) return false;
    this.#pending.push({ update, origin, receivedAt: performance.now(), runs, held });
    this.#queueChanges++;
    this.#kick();
    return true;
  }

  /**
   * The bus lost track of the room: reload from the store, in the flush loop between batches,
   * retried until the store answers (while the room has peers to tell).
   */
  #requestReload(): void {
    this.#reloadWanted = true;
    // After the first load (a room that fails to load is dropped, and nothing is missed then).
    this.loaded.then(
      () => this.#kick(),
      () => {},
    );
  }

  #kick(): void {
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(() => void this.#flush().catch((err: unknown) => this.#flushFailed(err)));
    }
  }

  /**
   * The flush loop threw (something it calls that should not: an observer, the bus, a socket's
   * close): logged and counted, and the loop started again, reloading the room first, rather
   * than the room left never storing again (and the process ended by an unhandled rejection).
   */
  #flushFailed(err: unknown): void {
    this.deps.observer.error?.('flush_failed');
    this.deps.log.error('sync_flush_failed', { room: this.name, error: errorKind(err) });
    this.#storing = [];
    this.#flushing = false;
    // A batch stored when it threw (its bytes let go of already): its senders told it is stored.
    const stored = this.#unreported;
    this.#unreported = null;
    if (stored) {
      // Published again, whole (what went out before it threw too: an update twice is one).
      for (const { update } of stored) {
        if (!update) continue;
        try {
          this.deps.bus?.publish(this.name, 'update', update);
        } catch {
          break; // (the bus, again: the other instances catch up at their next reload)
        }
      }
      try {
        this.#reportStored(stored);
      } catch {
        // (each peer's report is guarded there; nothing more to do)
      }
    }
    if (this.#destroyed) return;
    // What it stored may not have been applied and sent on: the room reads it back from the store.
    this.#reloadWanted = true;
    if (this.#pending.length > 0 || this.peers.size > 0) setTimeout(() => this.#kick(), RETRY_MIN_MS);
    else this.deps.onIdle(this);
  }

  async #flush(): Promise<void> {
    let delay = RETRY_MIN_MS;
    let delayed = false;
    const retryLater = async () => {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    };
    const announceDelay = (queued: number) => {
      if (this.#destroyed) return;
      delayed = true;
      this.awareness.setLocalState({ server: { saving: 'delayed', queued } } satisfies ServerAwareness);
    };
    /**
     * Awaits the store; from the notice delay on, while updates wait, tells the peers saving is
     * delayed and how many wait (checked again every notice delay until the store answers).
     */
    const noticeIfSlow = async <T>(work: Promise<T>, what: 'append' | 'reload', queued: () => number): Promise<T> => {
      const started = performance.now();
      let told = -1;
      const check = setInterval(() => {
        const waiting = queued();
        if (this.#destroyed || waiting === 0 || waiting === told) return;
        if (told < 0) this.deps.log.warn('sync_store_slow', { room: this.name, waiting: what, waitedMs: Math.round(performance.now() - started) });
        told = waiting;
        announceDelay(waiting);
      }, this.deps.storeDelayNoticeMs);
      check.unref();
      try {
        return await work;
      } finally {
        clearInterval(check);
      }
    };
    const reloading = () => this.#reloadWanted && !this.#destroyed && this.peers.size > 0;
    while (this.#pending.length > 0 || reloading()) {
      if (reloading()) {
        this.#reloadWanted = false;
        try {
          // Updates queued meanwhile wait for the reload.
          await noticeIfSlow(this.#applyStored(), 'reload', () => this.#pending.length);
        } catch (err) {
          this.#reloadWanted = true;
          this.deps.observer.error?.('reload_failed');
          this.deps.log.warn('sync_reload_failed', { room: this.name, retryInMs: delay, error: String(err) });
          // Queued updates are tried too (and announce the delay if they fail); then wait.
          if (this.#pending.length === 0) {
            await retryLater();
            continue;
          }
        }
      }
      if (this.#pending.length === 0) continue;
      const batch = this.#pending.length > MAX_BATCH_UPDATES ? this.#pending.splice(0, MAX_BATCH_UPDATES) : this.#pending;
      if (batch === this.#pending) this.#pending = [];
      const updates = batch.flatMap((b) => (b.update ? [b.update] : []));
      const started = performance.now();
      this.#storing = batch;
      this.#queueChanges++;
      try {
        if (updates.length > 0) await noticeIfSlow(this.deps.store.append(this.name, updates), 'append', () => batch.length + this.#pending.length);
      } catch (err) {
        // Keep the batch, in order, ahead of anything that arrived meanwhile, and try again.
        this.#pending = batch.concat(this.#pending);
        this.#storing = [];
        this.#queueChanges++;
        this.deps.observer.storeFailed?.((performance.now() - started) / 1000);
        this.deps.observer.error?.('store_failed');
        this.deps.log.warn('sync_store_failed', { room: this.name, queued: this.#pending.length, retryInMs: delay, error: String(err) });
        announceDelay(this.#pending.length);
        await retryLater();
        continue;
      }
      this.#storing = [];
      this.#queueChanges++;
      // Let go of before anything that could throw (see #flushFailed).
      this.letGo(batch.reduce((n, b) => n + b.held, 0));
      this.#unreported = batch;
      if (updates.length > 0) this.deps.observer.updatesStored?.(updates.length, (performance.now() - started) / 1000);
      // Stored, so it goes on to the other instances as received. Not what this doc integrates:
      // an update Yjs holds until one from another instance arrives is integrated under the
      // bus's origin, and would never be published. Another instance applies what it can.
      for (const update of updates) this.deps.bus?.publish(this.name, 'update', update);
      if (delayed) {
        delayed = false;
        delay = RETRY_MIN_MS;
        this.deps.log.info('sync_store_recovered', { room: this.name });
        if (!this.#destroyed) this.awareness.setLocalState(null);
      }
      if (this.#destroyed || this.#broken) {
        if (this.#broken) {
          try {
            this.deps.storedAfterBreaking(this, updates);
          } catch (err) {
            // (Nothing may throw out of the flush loop, which has stored and must report it.)
            this.deps.log.error('sync_handover_failed', { room: this.name, error: errorKind(err) });
          }
        }
        this.#unreported = null;
        this.#reportStored(batch);
        continue;
      }
      // Stored: applied in one transaction, so one 'update' event sends the batch on, one
      // message per peer however many updates it holds; its sender is spared the echo when
      // there is one. An update that throws is kept in the store (loading sets it aside); the
      // rest of the batch, and what that one integrated before throwing, still go out. One that
      // makes Yjs' own cleanup throw leaves the doc unusable: the room is let go of, and its
      // peers reconnect to a fresh one, whose load sets that update aside.
      // (Over the entries that hold an update: a place in the line held for another peer must not
      // make its sender get its own updates back.)
      const senders = batch.filter((b) => b.update);
      const sender = senders.length > 0 && senders.every((b) => b.origin === senders[0]!.origin) ? senders[0]!.origin : BATCH;
      const applyFailed = (err: unknown) => {
        this.deps.observer.error?.('apply_failed');
        this.deps.log.error('sync_apply_failed', { room: this.name, error: errorKind(err) });
      };
      this.#sentOn = 0;
      // Yjs tries again, inside this transaction, what it held back waiting for other content:
      // what breaks it then need not be this batch's (see onlyOwnHeldBack); and what the batch
      // lets through goes out in the same update, which the sender then gets too (it need not
      // hold what it released: a sync reply that fills a gap, say).
      const pending = this.doc.store.pendingStructs;
      const heldBack: HeldBack = { structs: pending?.update ?? null, missing: pending?.missing ?? null, ds: this.doc.store.pendingDs };
      const origin = releasesHeldBack(heldBack, batch) ? BATCH : sender;
      try {
        this.doc.transact(() => {
          for (const { update } of batch) {
            if (!update) continue;
            try {
              Y.applyUpdate(this.doc, update, origin);
            } catch (err) {
              applyFailed(err);
            }
          }
        }, origin);
      } catch (err) {
        applyFailed(err); // (thrown by Yjs' own cleanup: see docBroken)
      }
      if (docBroken(this.doc)) {
        // A batch of one peer's updates, with nothing of anyone else's held back: that peer sent
        // what broke it (told not to send it again, or it would break the fresh room too as soon
        // as it reconnected).
        this.#break('update', sender !== BATCH && onlyOwnHeldBack(heldBack, batch) ? sender : undefined);
        this.#unreported = null;
        this.#reportStored(batch);
        continue;
      }
      // Timed only when it went out to someone: not an update the room already had, nor one
      // to a room where its sender is alone.
      if (this.#sentOn > 0) {
        const sentAt = performance.now();
        for (const { update, receivedAt } of batch) if (update) this.deps.observer.fanOut?.((sentAt - receivedAt) / 1000);
      }
      this.#unreported = null;
      this.#reportStored(batch); // (after the others have it: what they wait for goes first)
    }
    this.#flushing = false;
    if (this.peers.size === 0) this.deps.onIdle(this);
  }

  /**
   * Tells each peer how many of its updates in `batch` are stored, a run of one peer's at a
   * time (usually one run). A peer that throws must not keep the others from hearing, nor stop
   * the room (this runs in its flush loop).
   */
  #reportStored(batch: ReadonlyArray<{ origin: RoomPeer }>): void {
    let run = 0;
    for (let i = 0; i < batch.length; i++) {
      run++;
      const origin = batch[i]!.origin;
      if (batch[i + 1]?.origin === origin) continue;
      try {
        origin.stored?.(run);
      } catch (err) {
        this.deps.observer.error?.('broadcast_failed');
        this.deps.log.warn('sync_send_failed', { room: this.name, userId: origin.info?.userId, error: String(err) });
      }
      run = 0;
    }
  }

  /** Whether updates are queued or being stored. */
  get busy(): boolean {
    return this.#flushing || this.#pending.length > 0;
  }

  /** Whether the room may be unloaded: no peers and nothing left to store. */
  get idle(): boolean {
    return this.peers.size === 0 && !this.busy;
  }

  /** Sends `message` to every peer but `except`; returns how many it went to. */
  broadcast(message: Uint8Array, except: unknown): number {
    let sent = 0;
    for (const peer of this.peers.keys()) {
      if (peer === except) continue;
      try {
        if (peer.send(message)) sent++;
      } catch (err) {
        // One peer's broken socket must not keep the message from the others.
        this.deps.observer.error?.('broadcast_failed');
        this.deps.log.warn('sync_send_failed', { room: this.name, userId: peer.info?.userId, error: String(err) });
      }
    }
    if (sent > 0) this.deps.observer.messagesOut?.(sent, message.byteLength, messageLabel(message));
    return sent;
  }

  /**
   * `release`: let the store forget the room's bookkeeping — not when a fresh room of the same
   * name is loaded (this one was let go of while broken), whose it would be.
   */
  destroy(release = true): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // (Left as this room: a fresh one of the same name may follow it on the bus by now.)
    this.deps.bus?.leave(this.name, this.#busListener);
    if (release) this.deps.store.release?.(this.name);
    this.awareness.destroy();
    this.doc.destroy();
  }
}

interface AwarenessChange {
  added: number[];
  updated: number[];
  removed: number[];
}
