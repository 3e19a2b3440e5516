/**
 * The WebSocket edge of sync: authenticates the upgrade request with the session cookie,
 * decides room access, then hands the socket to the transport-agnostic SyncServer.
 *
 * The decision is made before the upgrade completes. A refused socket is still upgraded, only
 * to be closed at once with a close code from shared/protocol.ts (4401, 4403, 4404) that the
 * browser can read, so the client stops reconnecting and says why. No room is loaded and no
 * document state is sent to it.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { parse as parseCookie } from 'hono/utils/cookie';
import { CloseCode, parseRoom } from '@spanwise/shared';
import { logThrottle, type Logger } from '../../log.ts';
import { TokenBucket, type Connection } from '../connection.ts';
import type { SyncServer } from '../sync-server.ts';
import type { ConnectionInfo } from '../types.ts';
import { hostAllowed, isLoopbackName } from '../../http/allowed-hosts.ts';
import { GrantMemory, type Grant } from './grant-memory.ts';
import { ReaderWatch } from './reader-watch.ts';

export const SYNC_PATH = '/sync/';

type Access = { ok: true; readOnly: boolean } | { ok: false; reason: 'unknown' | 'forbidden' };

export interface SyncAuth {
  userForToken(token: string | undefined): Promise<{ id: number; username: string } | null>;
  roomAccess(userId: number, room: string): Promise<Access>;
  /** Bulk forms for the periodic re-check: a few queries however many sockets are open. */
  usersForTokens(tokens: string[]): Promise<Map<string, { id: number }>>;
  roomAccessMany(requests: ReadonlyArray<{ userId: number; room: string }>): Promise<Access[]>;
  /** Subscribes to membership changes made on this instance. */
  onChange?(listener: (userId: number) => void): () => void;
}

export interface WsOptions {
  sessionCookie: string;
  /** Names answered for besides IP addresses and localhost (see http/allowed-hosts.ts). */
  allowedHosts: readonly string[];
  /** Served over HTTPS (SECURE_COOKIES): a browser's Origin must be https too. */
  httpsOnly: boolean;
  maxMessageBytes: number;
  /** How often to ping; a socket that missed the previous pong is terminated. */
  pingIntervalMs: number;
  /** How often every open socket's session and room access are checked again. */
  accessRecheckMs: number;
  maxSocketsPerUser: number;
  /** Sockets one user may open a second, past twice maxSocketsPerUser (32 at least) at once. */
  socketOpensPerSecond: number;
  /**
   * A socket with more than maxBufferedBytes waiting to go out for longer than maxBufferedMs,
   * without falling below what waited when it went over, is dropped rather than buffered for
   * further: a peer that reads slower than its room writes (a dead one is caught by ping). One
   * that is catching up (a large first sync on a slow link, say) is left alone, up to four times
   * the limit.
   */
  maxBufferedBytes: number;
  maxBufferedMs: number;
  /** How long deciding a socket's access may take before a recent grant stands in for it. */
  accessTimeoutMs: number;
  /**
   * How old a grant (this session may open this room) may be to stand in when the database
   * cannot answer (down, or not answering within accessTimeoutMs); 0: never.
   */
  accessCacheMs: number;
}

interface Live {
  ws: WebSocket;
  conn: Connection;
  token: string | undefined;
}

/** `userId`: whose attempt it was, once the session is known (for the log). */
type Refusal = { ok: false; code: number; reason: string; userId?: number };
/** `since`: the grants' version when the decision began; a member change after it means asking again. */
type Decision = { ok: true; info: ConnectionInfo; token: string | undefined; since: number } | Refusal;

/** Grants remembered for when the database cannot answer (the oldest go first). */
const MAX_REMEMBERED_GRANTS = 10_000;

/**
 * Sockets one user may open: twice their cap at once (32 at least), then `socketOpensPerSecond`.
 * Each costs an access check and a greeting with every presence state the room shows, and a
 * fresh socket starts with fresh allowances for sync requests: closing and opening again must
 * not be a way round them.
 */
const MIN_OPENS_AT_ONCE = 32;
/** Users whose opening allowance is remembered; past it, those refilled to the full are forgotten. */
const MAX_OPEN_ALLOWANCES = 10_000;

const TOO_MANY_SOCKETS = 'too many layers open at once';

/** How long a refused socket's client has to answer the close before it is cut off. */
const REFUSED_CLOSE_WAIT_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the database within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Answers an upgrade with `status` and lets the socket go once that is written, as ws does: the
 * server keeps a socket's reading side open after its own end, and a client that never closes
 * its side would keep it (and a shutdown waiting for it) for good.
 */
function refuseUpgrade(socket: Duplex, status: string): void {
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
}

/**
 * A room name from an upgrade's path, for a log line: as it is when it names a room, else (the
 * path of a request nobody has vouched for yet, up to the URL's length) its start.
 */
export function roomForLog(room: string): string {
  if (parseRoom(room)) return room;
  return room.length > 80 ? `${room.slice(0, 80)}…` : room;
}

/**
 * Cross-site WebSocket hijacking guard: a browser's Origin must match the Host it connects to,
 * and, served over HTTPS, be https (but on localhost): a page on the same name over plain http
 * (which anyone on the way can write) is another origin, though a browser may send it the
 * session's cookie.
 */
function sameOrigin(req: IncomingMessage, httpsOnly: boolean): boolean {
  const origin = req.headers.origin;
  if (!origin) return true; // not a browser
  try {
    const url = new URL(origin);
    // (A page of this machine's own over plain http is no stranger's: development with SECURE_COOKIES on.)
    return url.host === req.headers.host && (url.protocol === 'https:' || ((!httpsOnly || isLoopbackName(url.hostname)) && url.protocol === 'http:'));
  } catch {
    return false;
  }
}

export function attachSync(server: Server, sync: SyncServer, auth: SyncAuth, log: Logger, options: WsOptions) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes });
  /**
   * The payload of the ping each socket has yet to answer (null: it answered). A pong counts only
   * with it: ws reports pongs nobody asked for, and a client that stops reading (holding what
   * was sent to it in the server's memory) could keep its socket with them.
   */
  const unanswered = new WeakMap<WebSocket, Buffer | null>();
  const live = new Set<Live>();
  /** Open sockets per user, for the per-user cap. */
  const perUser = new Map<number, number>();
  const socketsOf = (userId: number) => perUser.get(userId) ?? 0;
  const countSocket = (userId: number, delta: 1 | -1) => {
    const n = socketsOf(userId) + delta;
    if (n > 0) perUser.set(userId, n);
    else perUser.delete(userId);
  };

  /** Takes one from `key`'s allowance in `buckets` (made as `make` says); false when it is spent. */
  function takeFrom<K>(buckets: Map<K, TokenBucket>, key: K, make: () => TokenBucket): boolean {
    let allowance = buckets.get(key);
    if (!allowance) {
      if (buckets.size >= MAX_OPEN_ALLOWANCES) {
        for (const [k, a] of buckets) if (a.full) buckets.delete(k);
        if (buckets.size >= MAX_OPEN_ALLOWANCES) buckets.clear(); // (all busy: a fresh start for all)
      }
      allowance = make();
      buckets.set(key, allowance);
    }
    return allowance.take();
  }
  const opensAtOnce = Math.max(2 * options.maxSocketsPerUser, MIN_OPENS_AT_ONCE);
  const opens = new Map<number, TokenBucket>();
  /** Takes one of `userId`'s socket openings; false when they have opened too many lately. */
  const mayOpen = (userId: number) => takeFrom(opens, userId, () => new TokenBucket(opensAtOnce, options.socketOpensPerSecond / 1_000));
  /**
   * Each user's questions to the database about a room to open, twice their openings: a refused
   * attempt (its room forbidden, or past the socket cap) costs them, and trying again and again
   * must not be a way to spend the database's time. (Counted once the session is known: keyed by
   * what the client sends, a made-up cookie would get an allowance of its own each time.)
   */
  const asks = new Map<number, TokenBucket>();
  const mayAsk = (userId: number) => takeFrom(asks, userId, () => new TokenBucket(2 * opensAtOnce, (2 * options.socketOpensPerSecond) / 1_000));

  /** Grants kept for when the database cannot answer: a client whose socket dropped gets back in. */
  const grants = new GrantMemory(MAX_REMEMBERED_GRANTS);

  /** Asks the database whether this session may open the room. */
  async function ask(token: string | undefined, room: string, expectedUser: string | null): Promise<Grant | Refusal> {
    const since = grants.version;
    const refuse = (refusal: Refusal) => {
      if (token) grants.forget({ room, token });
      return refusal;
    };
    const user = await auth.userForToken(token);
    if (!user) return refuse({ ok: false, code: CloseCode.unauthenticated, reason: 'sign in first' });
    // Before the room's access: whether the new user may open the last one's layer is beside the point.
    if (expectedUser !== null && expectedUser !== String(user.id)) return { ...otherUser, userId: user.id };
    if (!mayAsk(user.id)) {
      sync.observer.error?.('too_many_opens');
      return { ok: false, code: CloseCode.rateLimited, reason: 'too many attempts to open layers lately: try again in a moment', userId: user.id };
    }
    const access = await auth.roomAccess(user.id, room);
    if (!access.ok) {
      return refuse(
        access.reason === 'unknown'
          ? { ok: false, code: CloseCode.unknownRoom, reason: 'no such room', userId: user.id }
          : { ok: false, code: CloseCode.forbidden, reason: 'you may not open this room', userId: user.id },
      );
    }
    const grant: Grant = { ok: true, userId: user.id, userName: user.username, readOnly: access.readOnly };
    if (token && options.accessCacheMs > 0) grants.remember(room, token, grant, since);
    return grant;
  }

  /**
   * The page names whose view it is (`?user=<id>`): a tab that missed a sign-out and now sends
   * the next user's cookie must not write what it holds of the last user's layer under the new
   * session. It is told so, and learns who is signed in now.
   */
  const otherUser: Refusal = { ok: false, code: CloseCode.otherUser, reason: 'signed in as someone else in this browser' };

  async function decide(req: IncomingMessage, room: string, expectedUser: string | null): Promise<Decision> {
    const since = grants.version;
    if (!sameOrigin(req, options.httpsOnly)) return { ok: false, code: CloseCode.forbidden, reason: 'cross-origin request' };
    const token = parseCookie(req.headers.cookie ?? '', options.sessionCookie)[options.sessionCookie];
    let answer: Grant | Refusal;
    try {
      answer = await withTimeout(ask(token, room, expectedUser), options.accessTimeoutMs);
    } catch (err) {
      const recent = token ? grants.recall(room, token, options.accessCacheMs) : undefined;
      if (!recent) throw err;
      // (`ask` checks the page's user; a recalled grant is checked here.)
      if (expectedUser !== null && expectedUser !== String(recent.grant.userId)) return { ...otherUser, userId: recent.grant.userId };
      log.warn('sync_access_from_cache', { room, userId: recent.grant.userId, ageMs: Math.round(performance.now() - recent.at), error: String(err) });
      answer = recent.grant;
    }
    if (!answer.ok) return answer;
    // The cap first: a tab refused for it (retrying now and then) spends none of the openings.
    if (socketsOf(answer.userId) >= options.maxSocketsPerUser) {
      return { ok: false, code: CloseCode.rateLimited, reason: TOO_MANY_SOCKETS, userId: answer.userId };
    }
    if (!mayOpen(answer.userId)) {
      sync.observer.error?.('too_many_opens');
      return { ok: false, code: CloseCode.rateLimited, reason: 'too many layers opened lately: try again in a moment', userId: answer.userId };
    }
    return { ok: true, info: { room, userId: answer.userId, userName: answer.userName, readOnly: answer.readOnly }, token, since };
  }

  /** Closes an open socket whose session or access is no longer what it was opened with. */
  function revoke(l: Live, code: number, reason: string): void {
    if (l.conn.closed) return; // (closed meanwhile, while the database answered)
    log.info('sync_access_revoked', { room: l.conn.info.room, userId: l.conn.info.userId, code, reason });
    l.conn.close(code, reason);
  }

  /**
   * Checks open sockets' sessions and access again, closing those whose session or access is
   * gone or changed, and the remembered grants likewise (all of them, or one user's). Each
   * question to the database has the access timeout, twice over (it asks about many at once):
   * a sweep that hung would hold back every later periodic one.
   */
  async function sweep(userId?: number, memberChanged = userId !== undefined): Promise<void> {
    if (memberChanged) grants.changed(); // answers in flight may be stale
    const sockets = [...live].filter((l) => (userId === undefined || l.conn.info.userId === userId) && !l.conn.closed);
    const kept = grants.of(userId);
    if (sockets.length === 0 && kept.length === 0) return;
    const asked = performance.now();
    try {
      const tokens = new Set([...sockets.flatMap((l) => (l.token ? [l.token] : [])), ...kept.map((r) => r.token)]);
      const users = await withTimeout(auth.usersForTokens([...tokens]), 2 * options.accessTimeoutMs);
      const signedIn = sockets.filter((l) => {
        if (l.token && users.has(l.token)) return true;
        revoke(l, CloseCode.unauthenticated, 'your session ended');
        return false;
      });
      const stillSignedIn = kept.filter((r) => {
        if (users.get(r.token)?.id === r.grant.userId) return true;
        grants.forget(r);
        return false;
      });
      const access = await withTimeout(auth.roomAccessMany([
        ...signedIn.map((l) => ({ userId: l.conn.info.userId, room: l.conn.info.room })),
        ...stillSignedIn.map((r) => ({ userId: r.grant.userId, room: r.room })),
      ]), 2 * options.accessTimeoutMs);
      signedIn.forEach((l, i) => {
        const a = access[i]!;
        if (!a.ok && a.reason === 'unknown') revoke(l, CloseCode.unknownRoom, 'the room no longer exists');
        else if (!a.ok) revoke(l, CloseCode.forbidden, 'you no longer have access to this room');
        else if (a.readOnly !== l.conn.info.readOnly) revoke(l, CloseCode.accessChanged, 'your access changed: reconnect');
      });
      stillSignedIn.forEach((r, i) => {
        const a = access[signedIn.length + i]!;
        if (!a.ok || a.readOnly !== r.grant.readOnly) grants.forget(r);
        else grants.confirm(r, asked);
      });
    } catch (err) {
      // The database may be away: keep the sockets and grants; the next sweep decides.
      sync.observer.error?.('access_recheck_failed');
      log.warn('sync_recheck_failed', { sockets: sockets.length, error: String(err) });
    }
  }

  let sweeping = false;
  const recheckTimer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweep().finally(() => (sweeping = false));
  }, options.accessRecheckMs);
  recheckTimer.unref();
  const unsubscribe = auth.onChange?.((userId) => void sweep(userId));

  let closing = false;
  const upgradeFailures = logThrottle(60_000, { leftOut: (error, leftOut) => log.error('sync_upgrade_failed', { error, leftOut }) });

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (closing) {
      refuseUpgrade(socket, '503 Service Unavailable');
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // '//a:b', say: Node's parser takes it, URL does not. Thrown here, it would end the process.
      refuseUpgrade(socket, '400 Bad Request');
      return;
    }
    if (!url.pathname.startsWith(SYNC_PATH)) {
      refuseUpgrade(socket, '404 Not Found');
      return;
    }
    // DNS rebinding: a page on another name that now resolves here (its Origin and Host agree).
    if (!hostAllowed(req.headers.host, options.allowedHosts)) {
      refuseUpgrade(socket, '421 Misdirected Request');
      return;
    }
    let room: string;
    try {
      room = decodeURIComponent(url.pathname.slice(SYNC_PATH.length));
    } catch {
      room = '';
    }
    decide(req, room, url.searchParams.get('user')).then(
      (decision) => {
        wss.handleUpgrade(req, socket, head, (ws) => {
          // First, for every socket, refused ones too: ws reads frames during a close handshake,
          // and a broken one is emitted as 'error', which with no listener ends the process.
          const userId = decision.ok ? decision.info.userId : decision.userId;
          ws.on('error', (err) => {
            // ws itself closes a socket whose frame is past maxPayload (1009): counted as ours are.
            if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') sync.observer.error?.('too_big');
            log.warn('sync_socket_error', { room: roomForLog(room), userId, error: err.message });
          });
          if (closing) {
            ws.close(CloseCode.goingAway, 'server shutting down');
            return;
          }
          // The cap again, where sockets are counted: decisions that finished together may all
          // have passed it in decide().
          const refusal: Decision | null = !decision.ok
            ? decision
            : socketsOf(decision.info.userId) >= options.maxSocketsPerUser
              ? { ok: false, code: CloseCode.rateLimited, reason: TOO_MANY_SOCKETS }
              : null;
          if (refusal && !refusal.ok) {
            if (refusal.reason === TOO_MANY_SOCKETS) sync.observer.error?.('too_many_sockets');
            log.info('sync_refused', { room: roomForLog(room), userId, code: refusal.code });
            ws.close(refusal.code, refusal.reason);
            // A client that never answers the close would hold the socket for ws' 30 s.
            setTimeout(() => ws.terminate(), REFUSED_CLOSE_WAIT_MS).unref();
            return;
          }
          if (!decision.ok) return;
          try {
            // The page asks to be told when its edits are stored (MessageKind.stored).
            serve(ws, { ...decision.info, acks: url.searchParams.get('acks') === '1' }, decision.token);
            // A member change while this was decided: the answer may predate it, so ask again
            // (without counting as a change itself, or concurrent upgrades would chase each other).
            if (grants.version !== decision.since) void sweep(decision.info.userId, false);
          } catch (err) {
            // Thrown in ws's callback it would end the process: this socket goes instead.
            sync.observer.error?.('serve_failed');
            log.error('sync_serve_failed', { room, userId, error: String(err) });
            ws.terminate();
          }
        });
      },
      (err) => {
        // The database away, say: every client retrying would log a line each, so one line a
        // minute for each kind of error says how many were left out.
        sync.observer.error?.('upgrade_failed');
        // Keyed by the error's text (a timeout, a refused connection), at most 100 kinds.
        const pass = upgradeFailures(String(err).slice(0, 200));
        if (pass) log.error('sync_upgrade_failed', { room: roomForLog(room), error: String(err), ...pass });
        refuseUpgrade(socket, '503 Service Unavailable');
      },
    );
  }

  function serve(ws: WebSocket, info: ConnectionInfo, token: string | undefined): void {
    ws.binaryType = 'nodebuffer';
    let behind = false;
    const reader = new ReaderWatch(options.maxBufferedBytes, options.maxBufferedMs);
    const conn = sync.connect(
      {
        send: (data) => {
          if (ws.readyState !== ws.OPEN || behind) return false;
          if (reader.tooFarBehind(ws.bufferedAmount)) {
            // Dropped, not closed: a close would wait on a peer that does not read, holding what
            // it buffered. Its client reconnects and catches up by state vector. After this
            // broadcast, not inside it: leaving the room sends the others its presence removal.
            behind = true;
            sync.observer.error?.('peer_dropped');
            log.warn('sync_peer_too_far_behind', { room: info.room, userId: info.userId, bufferedBytes: ws.bufferedAmount });
            queueMicrotask(() => {
              conn.close(CloseCode.tryAgainLater, 'too far behind: reconnect');
              ws.terminate();
            });
            return false;
          }
          ws.send(data);
          return true;
        },
        close: (code, reason) => ws.close(code, reason),
      },
      info,
    );
    const entry: Live = { ws, conn, token };
    live.add(entry);
    countSocket(info.userId, 1);
    // First after connecting: whatever happens next, the socket's end detaches it from its room.
    ws.on('close', (code) => {
      if (live.delete(entry)) countSocket(info.userId, -1);
      conn.closedByPeer();
      log.info('sync_disconnected', { room: info.room, userId: info.userId, code });
    });
    log.info('sync_connected', { room: info.room, userId: info.userId, readOnly: info.readOnly });
    unanswered.set(ws, null);
    ws.on('pong', (data) => {
      const expected = unanswered.get(ws);
      if (expected && expected.equals(data)) unanswered.set(ws, null);
    });
    ws.on('message', (data, isBinary) => (isBinary ? conn.receive(toBytes(data)) : conn.reject('text frames are not part of the protocol')));
  }

  const ping = setInterval(() => {
    for (const ws of wss.clients) {
      if (unanswered.get(ws)) {
        ws.terminate();
        continue;
      }
      const payload = randomBytes(8);
      unanswered.set(ws, payload);
      ws.ping(payload);
    }
  }, options.pingIntervalMs);
  ping.unref();

  server.on('upgrade', onUpgrade);
  return {
    /**
     * Takes no new sockets (shutting down): upgrades get 503, and decisions still in flight
     * end in a 1001 close, so clients go to another instance instead of opening rooms here
     * while the server waits for its rooms to empty.
     */
    stopAccepting(): void {
      closing = true;
    },
    close(): void {
      clearInterval(ping);
      clearInterval(recheckTimer);
      unsubscribe?.();
      server.off('upgrade', onUpgrade);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
