/**
 * One socket in one room: decodes y-websocket messages, validates them, and answers.
 * Any message that does not decode closes this socket only (CloseCode.malformed).
 */
import * as Y from 'yjs';
import * as authProtocol from 'y-protocols/auth';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { CloseCode, MessageKind } from '@spanwise/shared';
import { errorKind } from './error-text.ts';
import { messageLabel } from './message-label.ts';
import { readPresenceEntries, writePresenceEntries, type PresenceEntry } from '@spanwise/shared/presence-entries';
import { MAX_PRESENCE_DEPTH, nestsDeeperThan } from './presence-depth.ts';
import { ENTRY_OVERHEAD_BYTES, socketFrameBound } from './backlog.ts';
import { PEER_LEFT, structRuns, type Room, type RoomPeer } from './room.ts';
import type { ConnectionInfo, SyncLogger, SyncObserver, SyncSocket } from './types.ts';

export interface ConnectionLimits {
  maxMessageBytes: number;
  maxMessagesPerSecond: number;
  /** Largest awareness update (presence, selection) one message may carry. */
  maxAwarenessBytes: number;
  /** Bytes received and not yet stored one room may hold (default 64 MiB; see Backlog). */
  maxQueuedBytesPerRoom?: number;
  /** ...and every room together (default 256 MiB). */
  maxQueuedBytes?: number;
  /** Bytes of frames that store nothing every socket together may have waiting (default 64 MiB). */
  maxWaitingFrameBytes?: number;
}

/**
 * Presence (awareness) states one socket may hold live in its room: a provider has one per doc
 * (and relays its other tabs' for a moment), so a socket that holds more is filling the room.
 */
export const MAX_AWARENESS_CLIENTS = 16;
/**
 * Presence one room may hold, as JSON text, in messages of the largest size (maxAwarenessBytes),
 * and one user's sockets in it (USER_PRESENCE_MESSAGES); one socket's live states together may
 * hold one such message. Each greeting and each presence query sends the room's presence whole:
 * without a bound, one user's sockets (each with its states of up to the largest size) could make
 * every such answer tens of megabytes. A page's presence is a few hundred bytes.
 */
export const ROOM_PRESENCE_MESSAGES = 16;
export const USER_PRESENCE_MESSAGES = 4;
/**
 * Presence ids one socket may be the first to show its room, over its life, live or not: the
 * room remembers every id it has seen (y-protocols keeps their clocks for good).
 */
export const MAX_AWARENESS_IDS_INTRODUCED = 256;
/**
 * Sync requests (step 1) one socket may send at once; one more may follow every STEP1_EVERY_MS.
 * A client sends one when it connects (y-websocket's optional resync, one per interval).
 */
export const STEP1_BURST = 4;
const STEP1_EVERY_MS = 5_000;

/** At most `capacity` at once, refilled at `perMs` a millisecond (on the monotonic clock). */
export class TokenBucket {
  #tokens: number;
  #refilledAt = performance.now();

  constructor(
    private readonly capacity: number,
    private readonly perMs: number,
  ) {
    this.#tokens = capacity;
  }

  /** Takes one if there is one. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whether it has refilled to capacity (nothing taken lately counts any more). */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.capacity;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.capacity, this.#tokens + (now - this.#refilledAt) * this.perMs);
    this.#refilledAt = now;
  }
}

/** An update's deleted ranges, by client, as Y.decodeUpdate reads them. */
type DeleteSet = ReturnType<typeof Y.decodeUpdate>['ds'];

/**
 * Whether each client's deleted ranges in `ds` are in order, not overlapping and not empty, as
 * Yjs writes them (it sorts and merges every delete set it encodes). Yjs and deletedAlready walk
 * the doc's structs in each range as they find it: the same range repeated 100,000 times in a
 * 300 KB frame held the event loop half a second, 1.3 million times 5 s, for the writer's own
 * layer of 2,000 deleted entries. In order, the walks cost no more than the ranges and the
 * structs they cover.
 */
export function orderedDeleteSet(ds: DeleteSet): boolean {
  for (const ranges of ds.clients.values()) {
    let end = 0;
    for (const { clock, len } of ranges) {
      if (!(len >= 1) || clock < end) return false;
      end = clock + len;
    }
  }
  return true;
}

/**
 * Whether `doc` has deleted already everything `ds` deletes: every range within content it holds
 * (below its state for that client), and each struct there deleted. Not while it holds content
 * or deletions waiting for others (those would be applied with it).
 */
function deletedAlready(doc: Y.Doc, ds: DeleteSet): boolean {
  if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) return false;
  for (const [client, ranges] of ds.clients) {
    const structs = doc.store.clients.get(client);
    if (!structs) return false;
    const state = Y.getState(doc.store, client);
    for (const { clock, len } of ranges) {
      if (clock + len > state) return false;
      for (let i = Y.findIndexSS(structs, clock); i < structs.length && structs[i]!.id.clock < clock + len; i++) {
        if (!structs[i]!.deleted) return false;
      }
    }
  }
  return true;
}

class ProtocolError extends Error {}
class TooBig extends Error {}

/**
 * What applying a presence (awareness) update would do, worked out entry by entry under
 * y-protocols' own rule (applyAwarenessUpdate) without applying it: how many ids the room would
 * remember afresh, and how many live states the socket would then hold (its `controlled` ones,
 * plus those the update sets, less those it removes). Entries y-protocols would ignore (an older
 * or equal clock: a client echoing the states it was sent) count for nothing. Entries a peer may
 * not set are listed in `drop`, by position, and count for nothing either: a state that speaks
 * for the server (clients read `server` as its notices) or shows another user (`user.id` is who
 * the others see, `user.name` the name they see it under where the page cannot look the id
 * up: both must be the socket's own user's), or one for an id a socket of another user here
 * holds (`heldByOther`: it would take that user's presence over, and keep it showing after
 * they left). They are
 * dropped, not refused: a provider passes on every state it learns, from its own server or from
 * its other tabs (which may be on another instance, and ahead of this one), so a socket relays
 * others' states without any fault of its own. Throws on a malformed update.
 */
function presenceOutcome(
  entries: readonly PresenceEntry[],
  awareness: awarenessProtocol.Awareness,
  controlled: ReadonlySet<number>,
  userId: number,
  userName: string | undefined,
  heldByOther: (id: number) => boolean,
): { introduced: number; live: ReadonlySet<number>; sizes: ReadonlyMap<number, number>; drop: ReadonlySet<number>; refused: string | null } {
  /** Each id's clock and whether it has a state, as the update has left them so far. */
  const seen = new Map<number, { clock: number; has: boolean }>();
  /** The length of each state it sets as JSON text, as the room writes it (0: removed). */
  const sizes = new Map<number, number>();
  const live = new Set(controlled);
  const drop = new Set<number>();
  let introduced = 0;
  for (const [i, { id, clock, state: text }] of entries.entries()) {
    const state: unknown = JSON.parse(text);
    const before = seen.get(id) ?? { clock: awareness.meta.get(id)?.clock ?? 0, has: awareness.states.has(id) };
    if (!(before.clock < clock || (before.clock === clock && state === null && before.has))) continue;
    // (After the echoes are skipped: a page that echoes a state the room holds is not at fault.)
    if (nestsDeeperThan(state, MAX_PRESENCE_DEPTH)) return { introduced, live, sizes, drop, refused: 'presence state nested too deeply' };
    // The server's own id carries only its notices: a peer that would set a state for it is
    // refused, and a removal of it is dropped (with a clock near 2^53 it would leave the
    // server's own clock unable to rise, and its later notices ignored). Providers echo every
    // change they see, the server's included, with its clock: such an echo is skipped above.
    if (id === awareness.clientID) {
      if (state !== null) return { introduced, live, sizes, drop, refused: 'presence for the server’s own id' };
      drop.add(i);
      continue;
    }
    // Set or removed (a client that timed that user out relays the removal; their own socket
    // removes it when it goes).
    if (!controlled.has(id) && heldByOther(id)) {
      drop.add(i);
      continue;
    }
    if (state !== null && typeof state === 'object') {
      const user = (state as { user?: unknown }).user;
      // (A state without a user id is shown by no page.)
      const foreign = typeof user === 'object' && user !== null && 'id' in user && (user.id !== userId || (userName !== undefined && 'name' in user && user.name !== userName));
      if ('server' in state || foreign) {
        drop.add(i);
        continue;
      }
    }
    if (!awareness.meta.has(id) && !seen.has(id)) introduced++;
    seen.set(id, { clock, has: state !== null });
    // As the room will hold and send it, not as sent: "1e20" is written out in full, 21 digits.
    sizes.set(id, state === null ? 0 : JSON.stringify(state).length);
    if (state === null) live.delete(id);
    else live.add(id);
  }
  return { introduced, live, sizes, drop, refused: null };
}

/** Our word to a client that asked (`?acks=1`): its first `count` document frames are stored. */
function storedMessage(count: number): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageKind.stored);
  encoding.writeVarUint(encoder, count);
  return encoding.toUint8Array(encoder);
}

/** A frame waiting its turn; `stores`: held against the room's backlog (else the frames' bound). */
interface WaitingFrame {
  data: Uint8Array;
  stores: boolean;
}

export class Connection implements RoomPeer {
  #chain: Promise<void>;
  /** No more frames are sent (either side closed). */
  #closed = false;
  /** The server closed this socket: frames still queued are discarded. */
  #refused = false;
  #toldReadOnly = false;
  /** Sent its first message: broadcasts reach it from then on. */
  #greeted = false;
  /** Bytes of this socket's frames not yet handled (waiting for the room's load, say). */
  #waitingBytes = 0;
  /** Those frames, in order, each with the bytes it holds against the room's backlog. */
  #frames: WaitingFrame[] = [];
  /** Presence ids this socket was the first to show the room. */
  #introduced = 0;
  /** Document frames (sync step 2s and updates) handled from this writer, */
  #documentFrames = 0;
  /** of which the updates queued in the room and not yet stored, */
  #unstored = 0;
  /** and the count last told the client (MessageKind.stored, when it asked). */
  #toldStored = 0;
  /** Messages: maxMessagesPerSecond, in bursts of twice that. */
  readonly #messages: TokenBucket;
  /** Sync requests (step 1). */
  readonly #syncRequests = new TokenBucket(STEP1_BURST, 1 / STEP1_EVERY_MS);
  /**
   * Presence queries, each answered with every state the room shows: as costly for a 1-byte
   * message as a sync request. Stock clients never send one on the socket (only to their other
   * tabs), so the same few at once, then one every 5 s.
   */
  readonly #presenceQueries = new TokenBucket(STEP1_BURST, 1 / STEP1_EVERY_MS);

  constructor(
    private readonly socket: SyncSocket,
    readonly info: ConnectionInfo,
    readonly room: Room,
    private readonly limits: ConnectionLimits,
    private readonly log: SyncLogger,
    private readonly observer: SyncObserver,
    private readonly onClosed: (conn: Connection) => void,
  ) {
    this.#messages = new TokenBucket(limits.maxMessagesPerSecond * 2, limits.maxMessagesPerSecond / 1000);
    room.peers.set(this, new Set());
    // Nothing is sent or read before the room has loaded: messages wait on this chain.
    this.#chain = room.loaded
      .then(
        () => this.#greet(),
        () => {
          // (Logged by the sync server, once per load.)
          // Also when the peer left meanwhile: its queued frames must not reach the dropped room.
          this.#refused = true;
          this.close(CloseCode.tryAgainLater, 'the room could not be loaded');
        },
      )
      // The chain never rejects: every frame queued on it runs, and lets go of its bytes.
      .catch((err) => {
        this.observer.error?.('greet_failed');
        this.log.error('sync_greet_failed', { room: room.name, userId: info.userId, error: String(err) });
        this.#refused = true;
        this.close(CloseCode.tryAgainLater, 'the server could not answer');
      });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends to this peer once it has been greeted: what the room broadcasts while it loads (from the bus) is in the state it answers with. */
  send(data: Uint8Array): boolean {
    return !this.#closed && this.#greeted && this.socket.send(data);
  }

  /** Sends this peer a message of its own (not a broadcast), counted. */
  #reply(data: Uint8Array): void {
    if (this.send(data)) this.observer.messagesOut?.(1, data.byteLength, messageLabel(data));
  }

  /** Feeds one binary frame from the peer. */
  receive(data: Uint8Array): void {
    if (this.#closed) return;
    const label = messageLabel(data);
    this.observer.messageIn?.(data.byteLength, label);
    if (data.byteLength > this.limits.maxMessageBytes) {
      return this.#refuse('too_big', CloseCode.tooBig, 'message too big');
    }
    if (!this.#messages.take()) {
      return this.#refuse('rate_limited', CloseCode.rateLimited, 'too many messages');
    }
    // Every frame waits its turn (behind the room's load, say): per socket, at most twice the
    // largest message and some frames' bookkeeping (socketFrameBound). A document update from a
    // writer is also held against the room's and the server's backlog, as the room's queued
    // updates are; other frames (sync step 1, presence, a viewer's dropped edits) store nothing,
    // so a full backlog never refuses them: they are held against a bound of their own across
    // the server.
    const frameBytes = data.byteLength + ENTRY_OVERHEAD_BYTES;
    if (this.#waitingBytes + frameBytes > socketFrameBound(this.limits.maxMessageBytes)) return this.#backlogFull('socket');
    const carriesUpdate = label === 'update' || label === 'sync_step2'; // what gets stored
    const stores = !this.info.readOnly && carriesUpdate;
    if (stores) {
      if (!this.room.hold(frameBytes)) return this.#backlogFull('room');
    } else {
      const past = this.room.holdFrame(frameBytes, this.info.userId);
      if (past) return this.#backlogFull(past === 'user' ? 'user' : 'frames');
    }
    this.#waitingBytes += frameBytes;
    this.#frames.push({ data, stores });
    this.#chain = this.#chain.then(() => {
      const frame = this.#frames.shift();
      if (!frame) return; // let go of already (refused before it came up)
      this.#letGoOf(frame);
      if (this.#refused) return;
      try {
        this.#handle(frame.data);
      } catch (err) {
        if (err instanceof TooBig) {
          return this.#refuse('too_big', CloseCode.tooBig, err.message);
        }
        this.observer.error?.('malformed');
        // Our own refusals say why; anything else thrown reading the frame may quote it.
        const error = err instanceof ProtocolError ? err.message : errorKind(err);
        this.log.warn('sync_malformed_message', { room: this.room.name, userId: this.info.userId, error });
        this.close(CloseCode.malformed, 'malformed message');
      }
    });
  }

  /** A frame the protocol does not allow (text, say): closes this socket. */
  reject(reason: string): void {
    this.observer.error?.('malformed');
    this.log.warn('sync_malformed_message', { room: this.room.name, userId: this.info.userId, error: reason });
    this.close(CloseCode.malformed, reason);
  }

  close(code: number, reason: string): void {
    // Refused however the socket went: frames its client sent before closing it, still waiting
    // their turn behind this one, are not handled either.
    this.#refused = true;
    this.#dropWaiting();
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.socket.close(code, reason);
    } finally {
      this.#detach();
    }
  }

  /**
   * The transport reports the socket gone. Frames it delivered before closing are still
   * handled (a client may send its last edit and leave at once); then the peer is detached.
   */
  closedByPeer(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#greeted) {
      // Its room has not loaded (and may not for long, with the database away): nothing of it
      // is kept meanwhile. Its client still holds what it sent, and sends it on reconnecting.
      this.#refused = true;
      this.#dropWaiting();
      this.#detach();
      return;
    }
    this.#chain = this.#chain.then(() => this.#detach());
  }

  /** Lets go of the frames waiting their turn, unread (this socket is refused). */
  #dropWaiting(): void {
    for (const frame of this.#frames) this.#letGoOf(frame);
    this.#frames = [];
  }

  #letGoOf(frame: WaitingFrame): void {
    const bytes = frame.data.byteLength + ENTRY_OVERHEAD_BYTES;
    this.#waitingBytes -= bytes;
    if (frame.stores) this.room.letGo(bytes);
    else this.room.letGoFrame(bytes, this.info.userId);
  }

  #detach(): void {
    const controlled = this.room.removePeer(this);
    if (controlled && controlled.size > 0 && !this.room.destroyed) {
      awarenessProtocol.removeAwarenessStates(this.room.awareness, [...controlled], PEER_LEFT);
    }
    this.onClosed(this);
  }

  /**
   * Too much waits: in this room or the server, to be stored (`room`); this socket's own frames
   * behind its room's load (`socket`); frames that store nothing, this user's share of them
   * (`user`) or the server's bound (`frames`). This writer tries again later.
   */
  #backlogFull(where: 'room' | 'socket' | 'user' | 'frames'): void {
    this.observer.error?.('backlog_full');
    this.log.warn('sync_backlog_full', {
      room: this.room.name,
      userId: this.info.userId,
      where,
      waitingBytes: where === 'room' ? this.room.heldBytes : this.#waitingBytes,
    });
    this.close(
      CloseCode.tryAgainLater,
      where === 'room'
        ? 'saving is behind: try again later'
        : where === 'frames'
          ? 'the server is busy: try again later'
          : 'too much sent before the room loaded: try again later',
    );
  }

  #greet(): void {
    if (this.#closed) return;
    this.#greeted = true;
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageKind.sync);
    // (What is queued counts as held: the peer need not send it again.)
    encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep1);
    encoding.writeVarUint8Array(encoder, this.room.stateVectorWithQueued());
    this.#reply(encoding.toUint8Array(encoder));
    const states = this.room.awareness.getStates();
    if (states.size > 0) this.#reply(this.#awarenessMessage([...states.keys()]));
    // A count of 0 says this server tells (one that does not would never say, and the page
    // falls back on what it can see: its sync). Before any answer to the peer's step 1, which
    // waits behind this greeting on the chain: the page must know before its 'sync'.
    if (this.info.acks) this.#reply(storedMessage(0));
  }

  #awarenessMessage(clients: number[]): Uint8Array {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageKind.awareness);
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.room.awareness, clients));
    return encoding.toUint8Array(encoder);
  }

  #handle(data: Uint8Array): void {
    const decoder = decoding.createDecoder(data);
    const kind = decoding.readVarUint(decoder);
    switch (kind) {
      case MessageKind.sync:
        return this.#handleSync(decoder);
      case MessageKind.awareness: {
        const update = decoding.readVarUint8Array(decoder);
        if (update.byteLength > this.limits.maxAwarenessBytes) throw new TooBig('awareness update too big');
        // Checked before applying: y-protocols keeps an entry (its clock) for every id it is
        // shown, even one shown with no state, until the room goes. Past the caps, nothing of
        // the message is applied.
        // Forgotten first: what the check reads must be what y-protocols then applies against.
        this.room.forgetOldPresence();
        const entries = readPresenceEntries(update);
        const check = () =>
          presenceOutcome(entries, this.room.awareness, this.room.peers.get(this) ?? new Set(), this.info.userId, this.info.userName, (id) => this.#heldByOtherUser(id));
        let outcome = check();
        // Near the room's bound, ids long gone are forgotten at once: checked again then (an
        // entry skipped for an old clock that is now forgotten would otherwise go in unchecked).
        if (!outcome.refused && this.room.forgetToMakeRoom(outcome.introduced)) outcome = check();
        const { introduced, live, sizes, drop, refused } = outcome;
        if (refused) throw new ProtocolError(refused);
        // A socket past its own bound is no page: closed. Past the user's share or the room's, a
        // message that would hold more is left unapplied (its socket still syncs the document;
        // its presence shows once there is room: a page sends it again every 15 s).
        let own = 0;
        for (const id of live) own += sizes.get(id) ?? this.room.presenceSize(id);
        if (own > this.limits.maxAwarenessBytes) return this.#refuse('too_big', CloseCode.tooBig, 'too much presence');
        let growth = 0;
        for (const [id, size] of sizes) growth += size - this.room.presenceSize(id);
        if (growth > 0) {
          let users = own;
          for (const [peer, ids] of this.room.peers) {
            if (peer === this || peer.info?.userId !== this.info.userId) continue;
            for (const id of ids) users += this.room.presenceSize(id);
          }
          const past =
            users > USER_PRESENCE_MESSAGES * this.limits.maxAwarenessBytes
              ? 'user'
              : this.room.presenceBytes + growth > ROOM_PRESENCE_MESSAGES * this.limits.maxAwarenessBytes
                ? 'room'
                : null;
          if (past) return this.#presenceDropped({ past, roomBytes: this.room.presenceBytes });
        }
        if (this.#introduced + introduced > MAX_AWARENESS_IDS_INTRODUCED || live.size > MAX_AWARENESS_CLIENTS) {
          return this.#refuse('rate_limited', CloseCode.rateLimited, 'too many presence ids on one socket');
        }
        // (Last: it counts what it admits.) A user past their own share is closed as a socket
        // past its own is; a room that others have filled leaves this message unapplied, as
        // the byte bounds above do, without closing a socket that did nothing wrong.
        const past = this.room.admitPresenceIds(this.info.userId, introduced);
        if (past === 'user') return this.#refuse('rate_limited', CloseCode.rateLimited, 'too many presence ids from one user');
        if (past === 'room') return this.#presenceDropped({ past: 'room_ids', roomIds: this.room.awareness.meta.size });
        this.#introduced += introduced;
        if (drop.size === entries.length) return;
        const allowed = drop.size > 0 ? writePresenceEntries(entries.filter((_, i) => !drop.has(i))) : update;
        awarenessProtocol.applyAwarenessUpdate(this.room.awareness, allowed, this);
        return;
      }
      case MessageKind.queryAwareness:
        if (!this.#presenceQueries.take()) {
          this.#refuse('rate_limited', CloseCode.rateLimited, 'too many presence queries');
          return;
        }
        this.#reply(this.#awarenessMessage([...this.room.awareness.getStates().keys()]));
        return;
      case MessageKind.auth:
        return; // clients do not send auth messages; ignore rather than fail
      default:
        throw new ProtocolError(`unknown message kind ${kind}`);
    }
  }

  #handleSync(decoder: decoding.Decoder): void {
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case syncProtocol.messageYjsSyncStep1: {
        // Each answer encodes what the room holds past the peer's state: a whole document for
        // a 4-byte request. A client asks once per connection; past a few, that is a flood.
        if (!this.#syncRequests.take()) {
          this.#refuse('rate_limited', CloseCode.rateLimited, 'too many sync requests');
          return;
        }
        const stateVector = decoding.readVarUint8Array(decoder);
        Y.decodeStateVector(stateVector); // throws on garbage
        const encoder = encoding.createEncoder();
        encoding.writeVarUint(encoder, MessageKind.sync);
        syncProtocol.writeSyncStep2(encoder, this.room.doc, stateVector);
        this.#reply(encoding.toUint8Array(encoder));
        return;
      }
      case syncProtocol.messageYjsSyncStep2:
      case syncProtocol.messageYjsUpdate: {
        const update = decoding.readVarUint8Array(decoder);
        if (this.info.readOnly) {
          // Dropped unread (decoding a large update costs time a viewer should not get to
          // spend). Told when it tries to write: a live update does; a sync reply only when it
          // holds content (its first number counts the clients it has structs of), not when it
          // is no more than the delete set every reply carries whole.
          if (type === syncProtocol.messageYjsUpdate || decoding.readVarUint(decoding.createDecoder(update)) > 0) this.#tellReadOnly();
          return;
        }
        const { structs, ds } = Y.decodeUpdate(update); // throws unless the whole update decodes
        if (!orderedDeleteSet(ds)) throw new ProtocolError('deleted ranges out of order, overlapping or empty');
        this.#documentFrames++;
        // Nothing to store (a new client's empty step 2, or one reconnecting whose deletions the
        // doc has every one of: a step 2 carries the whole delete set): told so at once, unless updates
        // wait to be stored. Then it takes its place behind them: the greeting counted them as
        // held, so the peer left them out of its step 2 and must not hear it is all stored first.
        if (structs.length === 0 && (ds.clients.size === 0 || deletedAlready(this.room.doc, ds))) {
          if (this.room.pendingCount === 0) this.#tellStored();
          else if (this.room.waitTurn(this)) this.#unstored++;
          else this.#backlogFull('room');
          return;
        }
        // Queued as a copy: the update is a view into the frame (ws's read buffer, or a frame
        // padded past the update), which would stay in memory while it waits, uncounted.
        if (!this.room.enqueue(update.slice(), this, structRuns(structs))) return this.#backlogFull('room');
        this.#unstored++;
        return;
      }
      default:
        throw new ProtocolError(`unknown sync message type ${type}`);
    }
  }

  /** The room stored `count` of the updates this socket queued. */
  stored(count: number): void {
    this.#unstored -= count;
    this.#tellStored();
  }

  /**
   * Tells a client that asked (`?acks=1`) how many of its document frames are stored, once none
   * waits to be: it knows then that what it sent is safe, and stops warning its user.
   */
  #tellStored(): void {
    if (!this.info.acks || this.#unstored > 0 || this.#documentFrames === this.#toldStored) return;
    this.#toldStored = this.#documentFrames;
    this.#reply(storedMessage(this.#documentFrames));
  }

  /**
   * Whether presence id `id` is another user's: a socket of theirs in this room holds it (set
   * it last), or, held by no socket here (set by another instance's), its live state says so.
   * Otherwise any socket could take over, or remove, the presence of someone on another
   * instance, and their own client would adopt that state and send it on as theirs.
   */
  #heldByOtherUser(id: number): boolean {
    const holder = this.room.holderOf(id);
    if (holder !== undefined) return holder !== this && !(holder instanceof Connection && holder.info.userId === this.info.userId);
    const user = (this.room.awareness.states.get(id) as { user?: { id?: unknown } } | undefined)?.user;
    return typeof user?.id === 'number' && user.id !== this.info.userId;
  }

  /** Closes this socket for going past a limit: counted, and logged with whose it was. */
  /** A presence message left unapplied, its socket open (the room's or the user's bound). */
  #presenceDropped(fields: Record<string, unknown>): void {
    this.observer.error?.('presence_dropped');
    this.log.warn('sync_presence_dropped', { room: this.room.name, userId: this.info.userId, ...fields });
  }

  #refuse(kind: 'too_big' | 'rate_limited', code: number, reason: string): void {
    this.observer.error?.(kind);
    this.log.warn('sync_socket_refused', { room: this.room.name, userId: this.info.userId, code, reason });
    this.close(code, reason);
  }

  #tellReadOnly(): void {
    if (this.#toldReadOnly) return;
    this.#toldReadOnly = true;
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageKind.auth);
    authProtocol.writePermissionDenied(encoder, 'read-only: your changes to this layer are not saved');
    this.#reply(encoding.toUint8Array(encoder));
  }
}
