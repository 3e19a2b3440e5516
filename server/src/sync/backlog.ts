/**
 * Bytes received and not yet stored, across the server and per room: a room waits on its
 * store (slow, or away) and keeps what its peers send meanwhile, so without a bound one writer,
 * or a long outage, could fill the process's memory. Past either bound a writer's next update
 * is refused: its socket is closed with 1013 and the client, which keeps every edit it made,
 * sends them again when it reconnects. Nothing stored or acknowledged is dropped.
 *
 * @example
 *   const backlog = new Backlog({ perRoom: 64 * 2 ** 20, total: 256 * 2 ** 20 });
 *   if (!backlog.take(update.byteLength, roomBytes)) refuse();
 *   // ... once stored:
 *   backlog.give(update.byteLength);
 */
/** The default bounds (MAX_QUEUED_BYTES_PER_ROOM and MAX_QUEUED_BYTES). */
export const DEFAULT_MAX_QUEUED_BYTES_PER_ROOM = 64 * 1024 * 1024;
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024;

export interface BacklogLimits {
  /** Bytes one room may hold waiting (its queued updates, and its sockets' unread frames). */
  perRoom: number;
  /** Bytes every room together may hold waiting. */
  total: number;
}

export class Backlog {
  #bytes = 0;

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
}
