import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode } from '@spanwise/shared';
import { MemoryStore } from '../memory-store.ts';
import { SyncServer } from '../sync-server.ts';
import { logLeftOutCounts, type Logger } from '../../log.ts';
import type { SyncObserver } from '../types.ts';
import { attachSync, roomForLog, type SyncAuth } from './ws-upgrade.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const ROOM = 'doc:1:user:1';

/** Auth over two maps, which can stop answering: `failing` throws, `hanging` never settles. */
function fakeAuth() {
  const sessions = new Map<string, number>([
    ['tok-1', 1],
    ['tok-2', 2],
  ]);
  const allowed = new Set<string>([`1 ${ROOM}`, `2 ${ROOM}`]);
  let notify: (userId: number) => void = () => {};
  /** `late`: a room access answer, once made, waits for this before it is given. */
  const state = { failing: false, hanging: false, late: null as Promise<void> | null };
  const gate = async () => {
    if (state.hanging) await new Promise(() => {});
    if (state.failing) throw new Error('connection refused');
  };
  /** Rooms deleted: asking about them answers 'unknown'. */
  const gone = new Set<string>();
  const access = (userId: number, room: string) =>
    gone.has(room)
      ? ({ ok: false, reason: 'unknown' } as const)
      : allowed.has(`${userId} ${room}`)
        ? ({ ok: true, readOnly: false } as const)
        : ({ ok: false, reason: 'forbidden' } as const);
  const auth: SyncAuth = {
    async userForToken(token) {
      await gate();
      const id = token ? sessions.get(token) : undefined;
      return id === undefined ? null : { id, username: `user${id}` };
    },
    async roomAccess(userId, room) {
      await gate();
      const answer = access(userId, room);
      await state.late;
      return answer;
    },
    async usersForTokens(tokens) {
      await gate();
      return new Map(tokens.flatMap((t) => (sessions.has(t) ? [[t, { id: sessions.get(t)! }] as const] : [])));
    },
    async roomAccessMany(requests) {
      await gate();
      return requests.map((r) => access(r.userId, r.room));
    },
    onChange(listener) {
      notify = listener;
      return () => {};
    },
  };
  return { auth, state, sessions, allowed, gone, changed: (userId: number) => notify(userId) };
}

describe('roomForLog', () => {
  it('names at most the start of a path that is not a room', () => {
    expect(roomForLog(ROOM)).toBe(ROOM);
    expect(roomForLog('x'.repeat(16_000))).toBe(`${'x'.repeat(80)}…`);
  });
});

describe('sync upgrade (fake auth that answers, fails or hangs on demand)', () => {
  let http: Server | null = null;
  let detach: (() => void) | null = null;
  afterEach(async () => {
    detach?.();
    await new Promise((r) => http?.close(r));
    http = null;
  });

  async function start({ accessCacheMs = 60_000, accessRecheckMs = 60_000, log = silent as Logger, observer = {} as SyncObserver, maxSocketsPerUser = 10 } = {}) {
    const fake = fakeAuth();
    const sync = new SyncServer({ store: new MemoryStore(), log, observer, limits: { maxMessageBytes: 1 << 20, maxMessagesPerSecond: 100, maxAwarenessBytes: 1 << 16 } });
    http = createServer();
    const ws = attachSync(http, sync, fake.auth, log, {
      sessionCookie: 'sid',
      allowedHosts: [],
      httpsOnly: false,
      maxMessageBytes: 1 << 20,
      pingIntervalMs: 60_000,
      accessRecheckMs,
      maxSocketsPerUser,
      socketOpensPerSecond: 1,
      maxBufferedBytes: 1 << 20,
      maxBufferedMs: 10_000,
      accessTimeoutMs: 100,
      accessCacheMs,
    });
    detach = () => ws.close();
    const stopAccepting = () => ws.stopAccepting();
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
    const url = `ws://127.0.0.1:${(http!.address() as AddressInfo).port}/sync/${ROOM}`;
    /** Opens a socket as `token`: resolves 'open' with the socket, or the HTTP refusal. */
    const open = (token: string, query = '') =>
      new Promise<{ ws: WebSocket; closed: Promise<number> } | string>((resolve) => {
        const socket = new WebSocket(url + query, { headers: { cookie: `sid=${token}` } });
        const closed = new Promise<number>((r) => socket.on('close', (code) => r(code)));
        socket.on('open', () => resolve({ ws: socket, closed }));
        socket.on('error', (err) => resolve(err.message));
      });
    return { ...fake, open, stopAccepting, port: (http!.address() as AddressInfo).port };
  }

  /** Sends raw bytes on a fresh TCP connection; resolves with what came back until it closed. */
  const raw = (port: number, bytes: Buffer, giveUpMs = 1_000) =>
    new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
      let got = '';
      socket.on('data', (d) => (got += d.toString('latin1')));
      socket.on('error', () => {});
      socket.on('close', () => resolve(got));
      setTimeout(() => socket.destroy(), giveUpMs);
    });
  const upgradeRequest = (target: string, cookie = '') =>
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}\r\n`;

  it('answers an upgrade to an address that does not parse with 400, and stays up', async () => {
    const { open, port } = await start();
    for (const target of ['//a:b', '//[', '//x:99999/sync/doc']) {
      expect(await raw(port, Buffer.from(upgradeRequest(target), 'latin1'))).toMatch(/^HTTP\/1.1 400/);
    }
    const still = await open('tok-1');
    expect(typeof still).toBe('object');
    if (typeof still === 'object') still.ws.terminate();
  });

  it('lets go of a refused upgrade’s socket once its answer is written, though the client keeps its side open', async () => {
    const { port, stopAccepting } = await start();
    const sockets = () => new Promise<number>((resolve, reject) => http!.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    /** Sends `request` from a client that never ends its side; resolves the answer once the server holds no socket. */
    const halfOpen = async (request: string) => {
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => socket.write(request));
      socket.on('error', () => {});
      let got = '';
      socket.on('data', (d) => (got += d.toString('latin1')));
      try {
        await vi.waitFor(async () => expect(got.includes('\r\n\r\n') && (await sockets()) === 0).toBe(true), { timeout: 2_000 });
      } finally {
        socket.destroy();
      }
      return got;
    };
    expect(await halfOpen(upgradeRequest('/not-sync'))).toMatch(/^HTTP\/1.1 404/);
    expect(await halfOpen(upgradeRequest('//a:b'))).toMatch(/^HTTP\/1.1 400/);
    stopAccepting();
    expect(await halfOpen(upgradeRequest(`/sync/${ROOM}`))).toMatch(/^HTTP\/1.1 503/);
  });

  it('survives a broken frame on a socket it refused (no session), sent with the request', async () => {
    const { open, port } = await start();
    // FIN + reserved bits + text opcode, unmasked: a protocol error for ws's reader.
    const broken = Buffer.from([0xf1, 0x00]);
    const answer = await raw(port, Buffer.concat([Buffer.from(upgradeRequest(`/sync/${ROOM}`), 'latin1'), broken]));
    expect(answer).toMatch(/^HTTP\/1.1 101/);
    await new Promise((r) => setTimeout(r, 50));
    const still = await open('tok-1');
    expect(typeof still).toBe('object');
    if (typeof still === 'object') still.ws.terminate();
  });

  it('takes no new socket once it stops accepting, and closes with 1001 one decided meanwhile', async () => {
    const { state, open, stopAccepting } = await start();
    let deliver!: () => void;
    state.late = new Promise<void>((r) => (deliver = r));
    const deciding = open('tok-1');
    await new Promise((r) => setTimeout(r, 30));
    stopAccepting(); // shutting down
    deliver();
    const decided = await deciding;
    if (typeof decided === 'string') throw new Error(decided);
    expect(await decided.closed).toBe(CloseCode.goingAway);
    state.late = null;
    expect(await open('tok-1')).toMatch(/503/);
  });

  it('lets one user open twice their socket cap at once, then one a second (closing and opening again is no way round the limits)', async () => {
    const { open } = await start({ maxSocketsPerUser: 20 });
    /** Opens a socket and closes it at once: 1005 (closed by us), or 4429 (refused first). */
    const openAndClose = async (token: string) => {
      const s = await open(token);
      if (typeof s === 'string') throw new Error(s);
      s.ws.close();
      return s.closed;
    };
    const started = performance.now();
    const codes: number[] = [];
    for (let i = 0; i < 45; i++) codes.push(await openAndClose('tok-1'));
    const seconds = (performance.now() - started) / 1000;
    expect(codes.slice(0, 40)).toEqual(Array(40).fill(1005));
    // Past the 40, one more for each second the openings took (a slow machine's), no more.
    const letIn = codes.filter((c) => c === 1005).length;
    expect(letIn - 40).toBeLessThanOrEqual(Math.ceil(seconds));
    expect(codes.filter((c) => c === CloseCode.rateLimited)).toHaveLength(45 - letIn);
    // Another user is not held to it.
    const bob = await open('tok-2');
    if (typeof bob === 'string') throw new Error(bob);
    expect(await Promise.race([bob.closed, new Promise<null>((r) => setTimeout(() => r(null), 100))])).toBeNull();
    bob.ws.terminate();
    // A second later, one more.
    await new Promise((r) => setTimeout(r, 1_050));
    const later = await open('tok-1');
    if (typeof later === 'string') throw new Error(later);
    expect(await Promise.race([later.closed, new Promise<null>((r) => setTimeout(() => r(null), 100))])).toBeNull();
    later.ws.terminate();
  });

  it('asks the database about a user’s rooms at most twice as often as they may open sockets: refused attempts too', async () => {
    const { open, auth, allowed } = await start({ maxSocketsPerUser: 10 }); // 32 openings at once, so 64 asks
    allowed.delete(`1 ${ROOM}`); // every attempt refused (4403)
    let asked = 0;
    const roomAccess = auth.roomAccess.bind(auth);
    auth.roomAccess = (userId, room) => {
      asked++;
      return roomAccess(userId, room);
    };
    const started = performance.now();
    const codes: number[] = [];
    for (let i = 0; i < 80; i++) {
      const s = await open('tok-1');
      if (typeof s === 'string') throw new Error(s);
      codes.push(await s.closed);
    }
    const seconds = (performance.now() - started) / 1000;
    // Past the 64, two more for each second the attempts took, no more.
    expect(asked).toBeGreaterThanOrEqual(64);
    expect(asked - 64).toBeLessThanOrEqual(2 * Math.ceil(seconds));
    expect(codes.filter((c) => c === CloseCode.forbidden)).toHaveLength(asked);
    expect(codes.filter((c) => c === CloseCode.rateLimited)).toHaveLength(80 - asked);
    // Another user is not held to it.
    const bob = await open('tok-2');
    if (typeof bob === 'string') throw new Error(bob);
    expect(await Promise.race([bob.closed, new Promise<null>((r) => setTimeout(() => r(null), 100))])).toBeNull();
    bob.ws.terminate();
  });

  it('cuts off a refused socket whose client never answers the close', async () => {
    const { port } = await start();
    const started = performance.now();
    // A handshake without a session, and then nothing: not even the close frame back.
    const answer = await raw(port, Buffer.from(upgradeRequest(`/sync/${ROOM}`), 'latin1'), 10_000);
    expect(answer).toMatch(/^HTTP\/1.1 101/);
    const took = performance.now() - started;
    expect(took).toBeGreaterThan(1_500);
    expect(took).toBeLessThan(5_000);
  });

  it('counts every upgrade the database could not decide, and logs one line a minute of each kind', async () => {
    const lines: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const record = (event: string, fields: Record<string, unknown> = {}) => void lines.push({ event, fields });
    const errors: string[] = [];
    const { state, open } = await start({ log: { debug() {}, info: record, warn: record, error: record }, observer: { error: (kind) => errors.push(kind) } });
    state.failing = true;
    for (let i = 0; i < 5; i++) expect(await open('tok-1')).toMatch(/503/);
    expect(errors.filter((k) => k === 'upgrade_failed')).toHaveLength(5);
    expect(lines.filter((l) => l.event === 'sync_upgrade_failed')).toEqual([{ event: 'sync_upgrade_failed', fields: { room: ROOM, error: 'Error: connection refused' } }]);
    // The count of those left out, once the minute ends (or the process exits).
    logLeftOutCounts();
    expect(lines.filter((l) => l.event === 'sync_upgrade_failed').slice(1)).toEqual([
      { event: 'sync_upgrade_failed', fields: { error: 'Error: connection refused', leftOut: 4 } },
    ]);
  });

  it('refuses with 4409 a socket whose page is another user’s than the session’s (signed in again in another tab), before asking about the room', async () => {
    const { open, allowed } = await start();
    const mine = await open('tok-1', '?user=1');
    if (typeof mine === 'string') throw new Error(mine);
    const other = await open('tok-1', '?user=2');
    if (typeof other === 'string') throw new Error(other);
    expect(await other.closed).toBe(CloseCode.otherUser);
    expect(mine.ws.readyState).toBe(WebSocket.OPEN);
    // The page's user, not whether the session's may open the room, is what it is told.
    allowed.delete(`2 ${ROOM}`);
    const stale = await open('tok-2', '?user=1');
    if (typeof stale === 'string') throw new Error(stale);
    expect(await stale.closed).toBe(CloseCode.otherUser);
    const unnamed = await open('tok-1'); // (a client that names no one is let in as before)
    if (typeof unnamed === 'string') throw new Error(unnamed);
    mine.ws.terminate();
    unnamed.ws.terminate();
  });

  it('logs whose socket each refusal, revocation and disconnection was, with its close code', async () => {
    const lines: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const record = (event: string, fields: Record<string, unknown> = {}) => void lines.push({ event, fields });
    const { allowed, changed, open } = await start({ log: { debug() {}, info: record, warn: record, error: record } });
    const other = await open('tok-2', '?user=1'); // user 2's session, user 1's page
    if (typeof other === 'string') throw new Error(other);
    expect(await other.closed).toBe(CloseCode.otherUser);
    const socket = await open('tok-1');
    if (typeof socket === 'string') throw new Error(socket);
    allowed.delete(`1 ${ROOM}`);
    changed(1);
    expect(await socket.closed).toBe(CloseCode.forbidden);
    await vi.waitFor(() => expect(lines.map((l) => l.event)).toContain('sync_disconnected'), { timeout: 5_000 });
    const of = (event: string) => lines.filter((l) => l.event === event).map((l) => l.fields);
    expect(of('sync_refused')).toEqual([{ room: ROOM, userId: 2, code: CloseCode.otherUser }]);
    expect(of('sync_access_revoked')).toEqual([{ room: ROOM, userId: 1, code: CloseCode.forbidden, reason: 'you no longer have access to this room' }]);
    expect(of('sync_disconnected')).toEqual([{ room: ROOM, userId: 1, code: CloseCode.forbidden }]);
  });

  it('lets a session back into a room it was granted, and no one else', async () => {
    const { state, open } = await start();
    const first = await open('tok-1');
    if (typeof first === 'string') throw new Error(first);
    first.ws.close();
    await first.closed;
    state.failing = true;
    const again = await open('tok-1');
    expect(typeof again).toBe('object');
    if (typeof again === 'object') again.ws.terminate();
    expect(await open('tok-2')).toMatch(/503/); // never granted here
    state.failing = false;
    state.hanging = true; // no answer at all: the grant stands in after the timeout
    const late = await open('tok-1');
    expect(typeof late).toBe('object');
    if (typeof late === 'object') late.ws.terminate();
  });

  it('forgets a grant the re-check found withdrawn', async () => {
    const { state, allowed, changed, open } = await start();
    const first = await open('tok-1');
    if (typeof first === 'string') throw new Error(first);
    allowed.delete(`1 ${ROOM}`);
    changed(1); // a member change: the open sockets are checked again at once
    expect(await first.closed).toBe(CloseCode.forbidden);
    state.failing = true;
    expect(await open('tok-1')).toMatch(/503/);
  });

  /** The close code, or 'open' if the socket is still open after `ms`. */
  const closedWithin = (socket: { closed: Promise<number> }, ms: number) =>
    Promise.race([socket.closed, new Promise<string>((r) => setTimeout(() => r('open'), ms))]);

  it('asks again about a socket whose access was decided across a member change', async () => {
    const { state, allowed, changed, open } = await start();
    let deliver!: () => void;
    state.late = new Promise<void>((r) => (deliver = r));
    const opening = open('tok-1');
    await new Promise((r) => setTimeout(r, 30)); // the answer (allowed) is made, not yet given
    state.late = null;
    allowed.delete(`1 ${ROOM}`);
    changed(1); // no socket of theirs is open yet: nothing to close
    deliver();
    const socket = await opening;
    if (typeof socket === 'string') throw new Error(socket);
    expect(await closedWithin(socket, 2_000)).toBe(CloseCode.forbidden);
  });

  it('closes a socket whose room was deleted with 4404, as the upgrade would', async () => {
    const { gone, changed, open } = await start();
    const socket = await open('tok-1');
    if (typeof socket === 'string') throw new Error(socket);
    gone.add(ROOM);
    changed(1);
    expect(await closedWithin(socket, 2_000)).toBe(CloseCode.unknownRoom);
  });

  it('gives up on a re-check that hangs, so later ones still close what lost access', async () => {
    const { state, allowed, open } = await start({ accessRecheckMs: 100 });
    const socket = await open('tok-1');
    if (typeof socket === 'string') throw new Error(socket);
    state.hanging = true; // the next periodic re-check never gets an answer
    await new Promise((r) => setTimeout(r, 250));
    state.hanging = false;
    allowed.delete(`1 ${ROOM}`);
    expect(await closedWithin(socket, 2_000)).toBe(CloseCode.forbidden);
  });

  it('forgets a grant when the database refuses it', async () => {
    const { state, allowed, open } = await start();
    const first = await open('tok-1');
    if (typeof first === 'string') throw new Error(first);
    first.ws.terminate();
    allowed.delete(`1 ${ROOM}`);
    const refused = await open('tok-1');
    if (typeof refused === 'string') throw new Error(refused);
    expect(await refused.closed).toBe(CloseCode.forbidden);
    state.failing = true;
    expect(await open('tok-1')).toMatch(/503/);
  });

  it('forgets the grant of a session signed out while none of its sockets was open', async () => {
    const { state, sessions, open } = await start({ accessRecheckMs: 50 });
    const first = await open('tok-1');
    if (typeof first === 'string') throw new Error(first);
    first.ws.terminate();
    sessions.delete('tok-1');
    await new Promise((r) => setTimeout(r, 200)); // a few re-checks
    state.failing = true;
    expect(await open('tok-1')).toMatch(/503/);
  });

  it('keeps the grant of a socket open longer than the cache age fresh', async () => {
    const { state, open } = await start({ accessCacheMs: 300, accessRecheckMs: 50 });
    const first = await open('tok-1');
    if (typeof first === 'string') throw new Error(first);
    await new Promise((r) => setTimeout(r, 800)); // older than the cache allows, but re-checked
    first.ws.terminate();
    state.failing = true;
    const again = await open('tok-1');
    expect(typeof again).toBe('object');
    if (typeof again === 'object') again.ws.terminate();
  });

  it('does not use a grant older than the cache allows', async () => {
    const { state, open } = await start({ accessCacheMs: 100 });
    const first = await open('tok-1');
    if (typeof first === 'string') throw new Error(first);
    first.ws.terminate();
    await new Promise((r) => setTimeout(r, 200));
    state.failing = true;
    expect(await open('tok-1')).toMatch(/503/);
  });
});
