/**
 * Bytes received and not yet stored, across the server and per room: a room waits on its
 * store (slow, or away) and keeps what its peers send meanwhile, so without a bound one writer,
 * or a long outage, could fill the process's memory. Past either bound a writer's next update
 * is refused: its socket is closed with 1013 and the client, which keeps every edit it made,
 * sends them again when it reconnects. Nothing stored or acknowledged is dropped.
 *
 * @example
 *   const backlog = new Backlog({ perRoom: 64 * 2 ** 20, total: 256 * 2 ** 20, frames: 64 * 2 ** 20, framesPerUser: 16 * 2 ** 20 });
 *   const held = queuedBytes(update.byteLength, runs.length);
 *   if (!backlog.take(held, roomBytes)) refuse();
 *   // ... once stored:
 *   backlog.give(held);
 */
/** The default bounds (MAX_QUEUED_BYTES_PER_ROOM and MAX_QUEUED_BYTES). */
export const DEFAULT_MAX_QUEUED_BYTES_PER_ROOM = 64 * 1024 * 1024;
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024;
/**
 * The default bound on frames that store nothing waiting their turn across the server
 * (MAX_WAITING_FRAME_BYTES): they wait only behind a room's load, for milliseconds as a rule.
 */
export const DEFAULT_MAX_WAITING_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * What a queued update or a waiting frame costs beyond its bytes (its entry, its buffer's
 * header, its runs of structs, its turn on the socket's chain: ~420 bytes in Node 20), counted
 * with them toward every bound: else a flood of the smallest updates (a few bytes each) would
 * hold some 50 times what the bounds allow.
 */
export const ENTRY_OVERHEAD_BYTES = 480;

/**
 * What each run of structs a queued update keeps costs on top (an array of three numbers and
 * its place in the list: ~80 bytes in Node 20). An update's runs are as many as its stretches
 * without a gap: one or a few as a rule, but a 4 MiB update written as alternating one-clock
 * gaps and structs has a million, which would hold some 20 times its counted bytes.
 */
export const RUN_BYTES = 80;

/** What a queued update is counted as toward the bounds: its bytes, its entry, its runs of structs. */
export function queuedBytes(updateBytes: number, runs: number): number {
  return updateBytes + ENTRY_OVERHEAD_BYTES + runs * RUN_BYTES;
}

/**
 * How many frames' bookkeeping a socket's bound on waiting frames allows beside twice the
 * largest message: a page's greeting is several small frames (its sync step 1 and reply,
 * presence), each counted with ENTRY_OVERHEAD_BYTES, and a bound of bytes alone refused it
 * (1013) while its room loaded whenever MAX_MESSAGE_BYTES was small (1 KiB: three frames).
 */
export const WAITING_FRAMES_PER_SOCKET = 32;

/** Bytes of frames one socket may have waiting their turn (behind its room's load, say), bookkeeping and all. */
export function socketFrameBound(maxMessageBytes: number): number {
  return 2 * maxMessageBytes + WAITING_FRAMES_PER_SOCKET * ENTRY_OVERHEAD_BYTES;
}

export interface BacklogLimits {
  /** Bytes one room may hold waiting (its queued updates, and its sockets' unread frames). */
  perRoom: number;
  /** Bytes every room together may hold waiting. */
  total: number;
  /**
   * Bytes of frames that store nothing (sync requests, presence, a viewer's edits, which are
   * dropped) every socket together may have waiting their turn. Each socket's own bound (twice
   * the largest message) times the sockets a user may open would otherwise leave no bound at
   * all on what a few users could make the server hold while a room loads slowly.
   */
  frames: number;
  /**
   * …of which one user's sockets may have this many waiting: one user alone cannot fill the
   * bound, which would get other users' sockets refused.
   */
  framesPerUser: number;
}

export class Backlog {
  #bytes = 0;
  #frameBytes = 0;
  readonly #framesOf = new Map<number, number>();

  constructor(readonly limits: BacklogLimits) {}

  /** Bytes waiting now, across the server. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Takes `bytes` for a room already holding `roomBytes`; false (taking nothing) past a bound. */
  take(bytes: number, roomBytes: number): boolean {
    if (roomBytes + bytes > this.limits.perRoom || this.#bytes + bytes > this.limits.total) return false;
    this.#bytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#bytes = Math.max(0, this.#bytes - bytes);
  }

  /** Bytes of frames that store nothing waiting now, across the server. */
  get frameBytes(): number {
    return this.#frameBytes;
  }

  /**
   * Takes `bytes` of a frame that stores nothing from a socket of `userId`; null, or (taking
   * nothing) the bound it would pass: the user's share, or the server's.
   */
  takeFrame(bytes: number, userId: number): 'user' | 'server' | null {
    const theirs = this.#framesOf.get(userId) ?? 0;
    if (theirs + bytes > this.limits.framesPerUser) return 'user';
    if (this.#frameBytes + bytes > this.limits.frames) return 'server';
    this.#frameBytes += bytes;
    this.#framesOf.set(userId, theirs + bytes);
    return null;
  }

  giveFrame(bytes: number, userId: number): void {
    this.#frameBytes = Math.max(0, this.#frameBytes - bytes);
    const left = (this.#framesOf.get(userId) ?? 0) - bytes;
    if (left > 0) this.#framesOf.set(userId, left);
    else this.#framesOf.delete(userId);
  }
}
