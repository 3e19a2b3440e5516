/**
 * The sync protocol's constants, imported by server and client alike.
 * Message kinds are those of the y-websocket protocol; close codes are ours (4000-4999 are
 * application codes), except 1009, the WebSocket standard's "message too big".
 */
export const PROTOCOL_VERSION = 1;

export const MessageKind = {
  sync: 0,
  awareness: 1,
  auth: 2,
  queryAwareness: 3,
  /**
   * Ours, sent only to a client that asks for it (`/sync/<room>?acks=1`): a count n, saying
   * that the first n document frames (sync step 2s and updates) this socket sent are stored,
   * or held nothing to store. Sent once the socket has nothing left waiting to be stored, and
   * with n = 0 after the greeting (sync step 1 and presence), before the answer to the client's
   * step 1: it says the server will tell, and the client knows before it has synced.
   */
  stored: 100,
} as const;

export const CloseCode = {
  /** No valid session cookie. */
  unauthenticated: 4401,
  /** Authenticated, but this user may not open this room. */
  forbidden: 4403,
  /** The room name is not a room, or names a document/project that does not exist. */
  unknownRoom: 4404,
  /** A frame that does not decode or whose update does not apply. */
  malformed: 4400,
  /** A frame larger than the configured maximum (WebSocket standard code). */
  tooBig: 1009,
  /** Too many messages in too short a time, or too many sockets open at once. */
  rateLimited: 4429,
  /** The user's access to the room changed (a new role): reconnect to get the new rights. */
  accessChanged: 4408,
  /**
   * The session is another user's than the page that opened the socket names (`?user=`): the
   * browser was signed in as someone else in another tab. The page learns who is signed in.
   */
  otherUser: 4409,
  /** The server is shutting down; reconnect later. */
  goingAway: 1001,
  /** The room could not be loaded (the database is unreachable, say); reconnect later. */
  tryAgainLater: 1013,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close codes after which a client should not reconnect on its own. */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.unauthenticated,
  CloseCode.otherUser,
  CloseCode.forbidden,
  CloseCode.unknownRoom,
]);
