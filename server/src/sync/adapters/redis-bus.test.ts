import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import * as decoding from 'lib0/decoding';
import { TcpProxy } from '../../../test/tcp-proxy.ts';
import { presenceUpdate } from '../../../test/updates.ts';
import { HEARTBEAT_SCRIPT, RedisBus, type RedisBusOptions } from './redis-bus.ts';
import { logLeftOutCounts } from '../../log.ts';
import type { BusMessageKind } from '../types.ts';

const url = process.env.TEST_REDIS_URL;
const silent = { info() {}, warn() {}, error() {} };

describe.runIf(url)('RedisBus', () => {
  const buses: RedisBus[] = [];
  const prefix = `spanwise-test:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`;
  /** A bus under this run's prefix (a read every second, unless `more` says otherwise), closed after each test. */
  const bus = (instanceId: string, maxLen = 1000, more: Partial<RedisBusOptions> = {}) => {
    const b = new RedisBus({ url: url!, instanceId, maxLen, log: silent, keyPrefix: prefix, blockMs: 1000, ...more });
    buses.push(b);
    return b;
  };
  const until = async (check: () => boolean, what: string) => {
    for (let i = 0; i < 250 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
    if (!check()) throw new Error(`timed out waiting for ${what}`);
  };
  /** Whether `check` comes true within ~2 s (polled every 20 ms). */
  const eventually = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 100; i++) {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });
  /**
   * Calls `seen` with the arguments of every command the Redis of TEST_REDIS_URL runs (MONITOR,
   * on a socket of its own: ioredis' monitor mode now and then takes a monitored line for a
   * reply, and throws). Resolves once Redis has said OK.
   */
  const watchCommands = (seen: (args: string[]) => void): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(url!);
      const socket = connect(Number(port || 6379), hostname, () => socket.write('MONITOR\r\n'));
      let pending = '';
      let ok = false;
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('data', (chunk: string) => {
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf('\r\n')) >= 0) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (!ok) {
            ok = line === '+OK';
            if (ok) resolve(socket);
            else reject(new Error(`MONITOR refused: ${line}`));
            continue;
          }
          // +<time> [<db> <client>] "<arg>" "<arg>" … (quotes and backslashes escaped)
          seen([...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')));
        }
      });
    });

  it('delivers another instance’s messages in order, and not its own', async () => {
    const a = bus('a');
    const b = bus('b');
    const gotA: string[] = [];
    const gotB: Array<[BusMessageKind, string]> = [];
    await a.join('room-1', { message: (_k, d) => gotA.push(Buffer.from(d).toString()), reload: async () => {} });
    await b.join('room-1', { message: (k, d) => gotB.push([k, Buffer.from(d).toString()]), reload: async () => {} });
    for (let i = 0; i < 50; i++) a.publish('room-1', i % 10 === 0 ? 'awareness' : 'update', Buffer.from(`m${i}`));
    await until(() => gotB.length === 50, 'all 50 at b');
    expect(gotB.map(([, d]) => d)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(gotB[0]![0]).toBe('awareness');
    expect(gotA).toEqual([]);
  });

  it('sends an update larger than maxEntryBytes as a reload, in its place: the others load it from the database', async () => {
    const a = bus('a', 1000, { maxEntryBytes: 1024 });
    const b = bus('b');
    const got: string[] = [];
    await a.join('room-large', { message: () => {}, reload: async () => {} });
    await b.join('room-large', { message: (k, d) => got.push(`${k}:${Buffer.from(d).subarray(0, 6).toString()}`), reload: async () => void got.push('reload') });
    a.publish('room-large', 'update', Buffer.from('small1'));
    a.publish('room-large', 'update', Buffer.alloc(1025, 'L'));
    a.publish('room-large', 'awareness', Buffer.alloc(2048, 'P')); // (presence has its own cap)
    a.publish('room-large', 'update', Buffer.from('small2'));
    await until(() => got.length === 4, 'four entries at b');
    expect(got).toEqual(['update:small1', 'reload', 'awareness:PPPPPP', 'update:small2']);
    // Nothing that large in Redis.
    const redis = new Redis(url!);
    try {
      const entries = (await redis.xrangeBuffer(`${prefix}room-large`, '-', '+')) as Array<[Buffer, Buffer[]]>;
      const updates = entries.map(([, fields]) => fields).filter((f) => f.some((x) => x.toString() === 'update'));
      expect(updates.map((f) => Math.max(...f.map((x) => x.byteLength)))).toEqual([6, 6]);
    } finally {
      redis.disconnect();
    }
  });

  it('warns when Redis may evict its keys (a maxmemory policy other than noeviction)', async () => {
    const redis = new Redis(url!);
    const [, was] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    const warnsOf = () => {
      const warned: Array<Record<string, unknown>> = [];
      const log = { ...silent, warn: (event: string, fields?: Record<string, unknown>) => void (event === 'redis_may_evict' && warned.push(fields ?? {})) };
      return { warned, log };
    };
    try {
      await redis.config('SET', 'maxmemory-policy', 'volatile-lru');
      const evicting = warnsOf();
      const b = bus('evict', 1000, { log: evicting.log });
      await b.join('room-evict', { message: () => {}, reload: async () => {} });
      await until(() => evicting.warned.length > 0, 'the warning');
      expect(evicting.warned[0]).toEqual({ maxmemoryPolicy: 'volatile-lru', wanted: 'noeviction' });
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      const keeping = warnsOf();
      const c = bus('keep', 1000, { log: keeping.log });
      await c.join('room-evict', { message: () => {}, reload: async () => {} });
      await new Promise((r) => setTimeout(r, 300));
      expect(keeping.warned).toEqual([]);
    } finally {
      await redis.config('SET', 'maxmemory-policy', was);
      redis.disconnect();
    }
  });

  it('lets a room’s stream expire a while after its last entry, and reloads a follower should one come back afresh', async () => {
    const short = (id: string) => {
      const b = new RedisBus({ url: url!, instanceId: id, maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, streamTtlMs: 400 });
      buses.push(b);
      return b;
    };
    const a = short('a');
    const b = short('b');
    const got: string[] = [];
    let reloads = 0;
    await a.join('room-ttl', { message: () => {}, reload: () => {} });
    await b.join('room-ttl', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: () => void reloads++ });
    a.publish('room-ttl', 'update', Buffer.from('x'));
    await until(() => got.length === 1, 'the first entry');
    const raw = new Redis(url!);
    try {
      const ttl = await raw.pttl(`${prefix}room-ttl`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(400);
      expect(await eventually(async () => (await raw.exists(`${prefix}room-ttl`)) === 0)).toBe(true);
    } finally {
      await raw.quit();
    }
    // Written again, the stream starts over: b cannot tell what it missed, so it reloads.
    a.publish('room-ttl', 'update', Buffer.from('y'));
    await until(() => got.length === 2 && reloads === 1, 'the next entry and a reload');
    expect(got).toEqual(['x', 'y']);
  });

  it('leaving with a listener that is no longer the room’s leaves the room followed (a fresh room took over)', async () => {
    const a = bus('a');
    const b = bus('b');
    const got: string[] = [];
    const oldListener = { message: () => {}, reload: () => {} };
    await a.join('room-take', { message: () => {}, reload: () => {} });
    await b.join('room-take', oldListener);
    await b.join('room-take', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: () => {} });
    b.leave('room-take', oldListener);
    a.publish('room-take', 'update', Buffer.from('still here'));
    await until(() => got.length === 1, 'the entry at the fresh room');
    const raw = new Redis(url!);
    try {
      expect(await raw.sismember(`${prefix}@rooms:b`, 'room-take')).toBe(1);
    } finally {
      await raw.quit();
    }
  });

  it('keeps a room listed while a listener that joined before the fresh one has not left (a broken room still storing)', async () => {
    const b = bus('b');
    const broken = { message: () => {}, reload: () => {} };
    const fresh = { message: () => {}, reload: () => {} };
    await b.join('room-held', broken);
    await b.join('room-held', fresh);
    const raw = new Redis(url!);
    try {
      b.leave('room-held', fresh); // the fresh room goes first (it failed to load, say)
      await new Promise((r) => setTimeout(r, 100));
      expect(await raw.sismember(`${prefix}@rooms:b`, 'room-held')).toBe(1);
      b.leave('room-held', broken);
      expect(await eventually(async () => (await raw.sismember(`${prefix}@rooms:b`, 'room-held')) === 0)).toBe(true);
    } finally {
      await raw.quit();
    }
  });

  it('a room joined later starts from where it joined, and is read at once', async () => {
    const a = bus('a');
    const b = bus('b');
    await a.join('room-2', { message: () => {}, reload: async () => {} });
    a.publish('room-2', 'update', Buffer.from('before'));
    await new Promise((r) => setTimeout(r, 100));
    const got: string[] = [];
    // b follows another room first, so its blocking read must be interrupted to add room-2.
    await b.join('other', { message: () => {}, reload: async () => {} });
    await new Promise((r) => setTimeout(r, 50));
    await b.join('room-2', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: async () => {} });
    const sent = Date.now();
    a.publish('room-2', 'update', Buffer.from('after'));
    await until(() => got.length === 1, 'the message after joining');
    expect(got).toEqual(['after']);
    expect(Date.now() - sent).toBeLessThan(500);
  });

  describe('reading only the rooms announced', () => {
    /** A bus that reads every room it follows only once a minute, besides what is announced. */
    const slowSweeping = (instanceId: string) => bus(instanceId, 1000, { blockMs: 60_000 });

    it('names in its reads the rooms announced, not every room it follows, and still delivers at once', async () => {
      const a = bus('a');
      const b = slowSweeping('b');
      const rooms = Array.from({ length: 2_000 }, (_, i) => `many-${i}`);
      const got: string[] = [];
      await a.join('many-1234', { message: () => {}, reload: async () => {} });
      for (let i = 0; i < rooms.length; i += 500) {
        await Promise.all(rooms.slice(i, i + 500).map((room) => b.join(room, { message: (_k, d) => got.push(`${room}:${Buffer.from(d).toString()}`), reload: async () => {} })));
      }
      let readsNamed: number[] = [];
      let lastWideRead = Date.now();
      const monitor = await watchCommands((args) => {
        if (args[0]?.toUpperCase() !== 'XREAD') return;
        const streams = args.findIndex((a) => a.toUpperCase() === 'STREAMS');
        // Only this test's reads (the machine's Redis may serve others).
        if (!args[streams + 1]?.startsWith(prefix)) return;
        const named = (args.length - streams - 1) / 2;
        readsNamed.push(named);
        if (named > 1) lastWideRead = Date.now();
      });
      try {
        // The reads of the rooms just joined (and b's first sweep) are over once none names
        // several rooms for half a second.
        for (let i = 0; i < 100 && Date.now() - lastWideRead < 500; i++) await new Promise((r) => setTimeout(r, 100));
        readsNamed = [];
        const sent = Date.now();
        for (let i = 0; i < 3; i++) a.publish('many-1234', 'update', Buffer.from(`m${i}`));
        await until(() => got.length === 3, 'the 3 updates at b');
        expect(Date.now() - sent).toBeLessThan(1_000);
        expect(got).toEqual(['many-1234:m0', 'many-1234:m1', 'many-1234:m2']);
        await new Promise((r) => setTimeout(r, 100));
      } finally {
        monitor.destroy();
      }
      // a waits on the activity stream alone (1) and reads none; b too, and reads the one room.
      expect(readsNamed.length).toBeGreaterThan(0);
      expect(Math.max(...readsNamed)).toBe(1);
    });

    it('reads, at its next sweep, an entry no one announced (added by an instance of an older version)', async () => {
      const b = bus('b', 1000, { blockMs: 300 });
      const got: string[] = [];
      await b.join('room-quiet', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: async () => {} });
      const raw = new Redis(url!);
      try {
        await raw.xadd(`${prefix}room-quiet`, '*', 'i', 'older', 'k', 'update', 'd', 'unannounced');
        await until(() => got.length === 1, 'the unannounced entry');
        expect(got).toEqual(['unannounced']);
      } finally {
        await raw.quit();
      }
    });

    it('reads its own entries in a busy room before the stream is trimmed past them (they are not announced to it)', async () => {
      const b = bus('b', 100, { blockMs: 300 });
      let reloads = 0;
      await b.join('room-own', { message: () => {}, reload: () => void reloads++ });
      for (let i = 0; i < 400; i++) b.publish('room-own', 'update', Buffer.from(`own${i}`));
      const raw = new Redis(url!);
      try {
        expect(await eventually(async () => (await raw.xlen(`${prefix}room-own`)) < 400)).toBe(true); // trimmed
        await new Promise((r) => setTimeout(r, 800)); // past two sweeps
        expect(reloads).toBe(0);
      } finally {
        await raw.quit();
      }
    });

    it('takes its position in the activity stream afresh when the stream begins again behind it', async () => {
      const a = bus('a');
      const b = bus('b', 1000, { blockMs: 2_000 });
      const rooms = ['again-1', 'again-2', 'again-3', 'again-4'];
      const got: string[] = [];
      for (const room of rooms) {
        await a.join(room, { message: () => {}, reload: async () => {} });
        await b.join(room, { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: async () => {} });
      }
      const raw = new Redis(url!);
      try {
        // An announcement far ahead, read by b; then the stream is lost, and begins again with
        // ids behind b's position (as on a Redis whose clock is behind the old one's).
        await raw.xadd(`${prefix}@activity`, '9999999999999-0', 'r', 'elsewhere', 'i', 'older');
        await new Promise((r) => setTimeout(r, 100));
        await raw.del(`${prefix}@activity`);
        // Read at b's next sweep at the latest, which checks the position first.
        a.publish('again-1', 'update', Buffer.from('probe'));
        await until(() => got.length === 1, 'the probe');
        // Then each is read when announced, not at a sweep (every 2 s).
        for (const [i, room] of rooms.entries()) {
          const sent = Date.now();
          a.publish(room, 'update', Buffer.from(`m${i}`));
          await until(() => got.length === i + 2, `m${i}`);
          expect(Date.now() - sent).toBeLessThan(500);
        }
      } finally {
        await raw.quit();
      }
    });

    it('stores each entry once and still reads the rooms at sweeps when announcements cannot be made (another key there)', async () => {
      const own = `${prefix}foreign:`;
      const make = (instanceId: string) => bus(instanceId, 1000, { keyPrefix: own, blockMs: 300 });
      const raw = new Redis(url!);
      try {
        await raw.set(`${own}@activity`, 'not a stream');
        const a = make('a');
        const b = make('b');
        const got: string[] = [];
        await a.join('room-f', { message: () => {}, reload: async () => {} });
        await b.join('room-f', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: async () => {} });
        for (let i = 0; i < 3; i++) a.publish('room-f', 'update', Buffer.from(`m${i}`));
        await until(() => got.length === 3, 'the 3 entries at b');
        expect(got).toEqual(['m0', 'm1', 'm2']);
        await new Promise((r) => setTimeout(r, 300));
        expect(await raw.xlen(`${own}room-f`)).toBe(3);
      } finally {
        await raw.del(`${own}@activity`, `${own}room-f`);
        await raw.quit();
      }
    });

    it('reads a room from where it was once an announcement names it (until then, only a sweep would)', async () => {
      const a = bus('a');
      const b = slowSweeping('b');
      const got: string[] = [];
      await a.join('room-quiet-2', { message: () => {}, reload: async () => {} });
      await b.join('room-quiet-2', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: async () => {} });
      // Once b has it, b's read of the room it joined is over (it comes before any announcement's).
      a.publish('room-quiet-2', 'update', Buffer.from('probe'));
      await until(() => got.length === 1, 'the probe');
      got.length = 0;
      const raw = new Redis(url!);
      try {
        await raw.xadd(`${prefix}room-quiet-2`, '*', 'i', 'older', 'k', 'update', 'd', 'unannounced');
        await new Promise((r) => setTimeout(r, 500));
        expect(got).toEqual([]);
        // An announcement of the room (any entry's) has it read from where it was.
        await raw.xadd(`${prefix}@activity`, '*', 'r', 'room-quiet-2', 'i', 'older');
        await until(() => got.length === 1, 'the entry, once announced');
        expect(got).toEqual(['unannounced']);
      } finally {
        await raw.quit();
      }
    });
  });

  it('reloads a room whose stream Redis lost and began again', async () => {
    const b = bus('b');
    let reloads = 0;
    const got: string[] = [];
    await b.join('room-5', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: () => void reloads++ });
    const raw = new Redis(url!);
    try {
      for (let i = 0; i < 5; i++) await raw.xadd(`${prefix}room-5`, '*', 'i', 'elsewhere', 'k', 'update', 'd', `e${i}`);
      await until(() => got.length === 5, 'the first 5 entries');
      expect(reloads).toBe(0);
      // Redis restarted without its data; another instance publishes again. (A restart takes
      // longer than a millisecond: in the same one, the new stream's first id could equal the
      // last one read, and this read would wait for the entry after it.)
      await raw.del(`${prefix}room-5`);
      await new Promise((r) => setTimeout(r, 5));
      await raw.xadd(`${prefix}room-5`, '*', 'i', 'elsewhere', 'k', 'update', 'd', 'after');
      await until(() => reloads === 1, 'a reload');
      expect(got).toContain('after');
    } finally {
      await raw.quit();
    }
  });

  /** Counts each room's reloads at a bus that follows `rooms`. */
  async function follow(b: RedisBus, rooms: string[]): Promise<Map<string, number>> {
    const reloads = new Map(rooms.map((room) => [room, 0]));
    for (const room of rooms) await b.join(room, { message: () => {}, reload: () => void reloads.set(room, reloads.get(room)! + 1) });
    return reloads;
  }

  it('has every instance reload the rooms an instance held when it dies (what it stored but never published is in the database)', async () => {
    const quick = { heartbeatMs: 100, instanceStaleMs: 2_000 };
    const b = new RedisBus({ url: url!, instanceId: 'b', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, ...quick });
    const c = new RedisBus({ url: url!, instanceId: 'c', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, ...quick });
    buses.push(b, c);
    const atB = await follow(b, ['room-20', 'room-21']);
    const atC = await follow(c, ['room-20']);
    // Another instance, in a process of its own, follows room-20 and is killed with SIGKILL.
    const script = `
      import { RedisBus } from ${JSON.stringify(new URL('./redis-bus.ts', import.meta.url).href)};
      const [url, keyPrefix] = JSON.parse(process.argv[1]);
      const bus = new RedisBus({ url, instanceId: 'doomed', maxLen: 1000, keyPrefix, heartbeatMs: 100, log: { info() {}, warn() {}, error() {} } });
      await bus.join('room-20', { message() {}, reload() {} });
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify([url, prefix])], {
      cwd: path.resolve(import.meta.dirname, '../../../..'),
      stdio: 'ignore',
    });
    const raw = new Redis(url!);
    try {
      let listed = false;
      for (let i = 0; i < 500 && !listed; i++) {
        listed = (await raw.zscore(`${prefix}@instances`, 'doomed')) !== null && (await raw.sismember(`${prefix}@rooms:doomed`, 'room-20')) === 1;
        if (!listed) await new Promise((r) => setTimeout(r, 20));
      }
      expect(listed).toBe(true);
      await new Promise((r) => setTimeout(r, 2_200)); // alive past the stale time: no reload
      expect([...atB.values(), ...atC.values()]).toEqual([0, 0, 0]);
      child.kill('SIGKILL');
      await until(() => atB.get('room-20')! > 0 && atC.get('room-20')! > 0, 'room-20 reloaded at b and c');
      await new Promise((r) => setTimeout(r, 300));
      // Only the room it held, once.
      expect([atB.get('room-20'), atB.get('room-21'), atC.get('room-20')]).toEqual([1, 0, 1]);
      expect(await raw.zscore(`${prefix}@instances`, 'doomed')).toBeNull();
      expect(await raw.exists(`${prefix}@rooms:doomed`)).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await raw.quit();
    }
  });

  it('leaves the heartbeat and room sets when it closes settled, and stays in them otherwise', async () => {
    const raw = new Redis(url!);
    try {
      for (const [id, settled] of [['leaving', true], ['unsettled', false]] as const) {
        const a = new RedisBus({ url: url!, instanceId: id, maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, heartbeatMs: 100 });
        buses.push(a); // (closed below; closed again after the test, which does nothing more)
        await a.join('room-22', { message: () => {}, reload: () => {} });
        a.publish('room-22', 'update', Buffer.from('last words'));
        await new Promise((r) => setTimeout(r, 150)); // beaten at least once
        expect(await raw.sismember(`${prefix}@rooms:${id}`, 'room-22')).toBe(1);
        await a.close(settled);
        expect(await raw.zscore(`${prefix}@instances`, id) === null).toBe(settled);
        expect(await raw.sismember(`${prefix}@rooms:${id}`, 'room-22')).toBe(settled ? 0 : 1);
      }
      // A room left (its entries gone out) is no longer listed.
      const b = bus('b');
      await b.join('room-23', { message: () => {}, reload: () => {} });
      b.publish('room-23', 'update', Buffer.from('x'));
      b.leave('room-23');
      expect(await eventually(async () => (await raw.sismember(`${prefix}@rooms:b`, 'room-23')) === 0)).toBe(true);
    } finally {
      await raw.del(`${prefix}@rooms:unsettled`);
      await raw.zrem(`${prefix}@instances`, 'unsettled');
      await raw.quit();
    }
  });

  it('sweeps only when its own last beat is fresh, and lists the rooms again once swept itself', async () => {
    const raw = new Redis(url!);
    const set = `${prefix}sweep:@instances`;
    const beat = (id: string) => raw.eval(HEARTBEAT_SCRIPT, 1, set, id, '1000', `${prefix}sweep:`, '1000', '3600000', '60000', '1000', '1000', '1') as Promise<[number, number, number, number]>;
    try {
      const [seconds, micros] = await raw.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      await raw.sadd(`${prefix}sweep:@rooms:dead`, 'doc:1:gold', 'doc:2:gold');
      await raw.zadd(set, now - 60_000, 'dead', now - 60_000, 'cut-off');
      expect(await beat('new')).toEqual([0, 0, 0, 0]); // its first beat: no judging others (and it lists no rooms)
      expect(await beat('cut-off')).toEqual([2, 0, 0, 0]); // its own beat was stale: neither (and it says so)
      expect(await raw.zscore(set, 'dead')).not.toBeNull();
      expect(await beat('new')).toEqual([1, 1, 2, 0]); // fresh: sweeps, one reload per room held
      expect(await raw.zscore(set, 'dead')).toBeNull();
      expect(await raw.exists(`${prefix}sweep:@rooms:dead`)).toBe(0);
      const entries = await raw.xrange(`${prefix}sweep:doc:1:gold`, '-', '+');
      expect(entries.map(([, fields]) => fields)).toEqual([['i', 'dead', 'k', 'reload']]);
    } finally {
      await raw.del(set, `${prefix}sweep:doc:1:gold`, `${prefix}sweep:doc:2:gold`, `${prefix}sweep:@rooms:new`, `${prefix}sweep:@rooms:cut-off`);
      await raw.quit();
    }
    // A bus swept while alive (cut off from Redis past the stale time) lists its rooms again.
    const b = new RedisBus({ url: url!, instanceId: 'swept', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, heartbeatMs: 50 });
    buses.push(b);
    await b.join('room-24', { message: () => {}, reload: () => {} });
    const sweeper = new Redis(url!);
    try {
      await new Promise((r) => setTimeout(r, 150));
      await sweeper.multi().zrem(`${prefix}@instances`, 'swept').del(`${prefix}@rooms:swept`).exec();
      expect(await eventually(async () => (await sweeper.sismember(`${prefix}@rooms:swept`, 'room-24')) === 1)).toBe(true);
    } finally {
      await sweeper.quit();
    }
  });

  it('takes no one for gone until its own beats have gone on without a break for the stale time (an outage cut every instance off)', async () => {
    const a = new RedisBus({ url: url!, instanceId: 'judge', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, heartbeatMs: 50, instanceStaleMs: 800 });
    buses.push(a);
    const raw = new Redis(url!);
    const instances = `${prefix}@instances`;
    const redisNow = async () => {
      const [seconds, micros] = await raw.time();
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    };
    try {
      await new Promise((r) => setTimeout(r, 900)); // beating without a break past the stale time
      // Redis stopped answering everyone for a while: a's last beat and another's are both old.
      const then = (await redisNow()) - 5_000;
      await raw.multi().zadd(instances, then, 'judge', then, 'sleeper').sadd(`${prefix}@rooms:sleeper`, 'room-sl').exec();
      await new Promise((r) => setTimeout(r, 300)); // a's beats are back (the first stale, the rest fresh); the other's not yet
      expect(await raw.zscore(instances, 'sleeper')).not.toBeNull();
      // Back too, within the stale time of a's return, and beating from then on.
      const sleeperBeats = setInterval(() => void redisNow().then((now) => raw.zadd(instances, now, 'sleeper')), 100);
      try {
        await raw.zadd(instances, await redisNow(), 'sleeper');
        await new Promise((r) => setTimeout(r, 1_000));
      } finally {
        clearInterval(sleeperBeats);
      }
      expect(await raw.zscore(instances, 'sleeper')).not.toBeNull();
      expect(await raw.sismember(`${prefix}@rooms:sleeper`, 'room-sl')).toBe(1);
      // One that does not come back is taken for gone.
      await raw.multi().zadd(instances, (await redisNow()) - 5_000, 'gone').sadd(`${prefix}@rooms:gone`, 'room-gone').exec();
      expect(await eventually(async () => (await raw.zscore(instances, 'gone')) === null)).toBe(true);
    } finally {
      await raw.multi().zrem(instances, 'sleeper', 'gone').del(`${prefix}@rooms:sleeper`, `${prefix}@rooms:gone`, `${prefix}room-gone`).exec();
      await raw.quit();
    }
  });

  it('lists its rooms again after a stale beat of its own, whatever its set holds (another may have begun to sweep it)', async () => {
    const b = new RedisBus({ url: url!, instanceId: 'stale', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, heartbeatMs: 50 });
    buses.push(b);
    await b.join('room-st', { message: () => {}, reload: () => {} });
    const raw = new Redis(url!);
    try {
      await new Promise((r) => setTimeout(r, 150)); // it has beaten
      // A sweep took room-st; a room it had left stands in for it, so the count still adds up;
      // and its last beat is long past.
      await raw.multi().srem(`${prefix}@rooms:stale`, 'room-st').sadd(`${prefix}@rooms:stale`, 'room-left').zadd(`${prefix}@instances`, 1, 'stale').exec();
      expect(await eventually(async () => (await raw.sismember(`${prefix}@rooms:stale`, 'room-st')) === 1)).toBe(true);
    } finally {
      await raw.quit();
    }
  });

  it('reloads the rooms of instances gone a bounded number a beat, and removes each once all its rooms are done', async () => {
    const raw = new Redis(url!);
    const set = `${prefix}bounded:@instances`;
    const beat = (id: string) => raw.eval(HEARTBEAT_SCRIPT, 1, set, id, '1000', `${prefix}bounded:`, '1000', '3600000', '60000', '1000', '4', '1') as Promise<[number, number, number, number]>;
    const rooms = (id: string, n: number) => Array.from({ length: n }, (_, i) => `${id}-room-${i}`);
    try {
      const [seconds, micros] = await raw.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      await raw.sadd(`${prefix}bounded:@rooms:dead1`, ...rooms('dead1', 6));
      await raw.sadd(`${prefix}bounded:@rooms:dead2`, ...rooms('dead2', 3));
      await raw.zadd(set, now - 60_000, 'dead1', now - 60_000, 'dead2');
      await beat('live'); // its first beat judges no one
      // Four rooms a beat: dead1's first four; then its last two and two of dead2's; then the last.
      expect(await beat('live')).toEqual([1, 0, 4, 0]);
      expect(await raw.zscore(set, 'dead1')).not.toBeNull();
      expect(await beat('live')).toEqual([1, 1, 4, 0]);
      expect(await raw.zscore(set, 'dead1')).toBeNull();
      expect(await raw.zscore(set, 'dead2')).not.toBeNull();
      expect(await beat('live')).toEqual([1, 1, 1, 0]);
      expect(await raw.zscore(set, 'dead2')).toBeNull();
      for (const room of [...rooms('dead1', 6), ...rooms('dead2', 3)]) {
        const entries = await raw.xrange(`${prefix}bounded:${room}`, '-', '+');
        expect(entries.map(([, fields]) => fields[3]), room).toEqual(['reload']);
      }
    } finally {
      const keys = [...rooms('dead1', 6), ...rooms('dead2', 3)].map((r) => `${prefix}bounded:${r}`);
      await raw.del(set, ...keys, `${prefix}bounded:@activity`, `${prefix}bounded:@rooms:dead1`, `${prefix}bounded:@rooms:dead2`);
      await raw.quit();
    }
  });

  it.runIf(existsSync('/usr/bin/redis-server'))('reloads every room it follows when Redis restarts (and may have lost what it had not read)', async () => {
    const port = await freePort();
    const start = () =>
      spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    let server = start();
    try {
      const own = `redis://127.0.0.1:${port}`;
      const raw = new Redis(own, { lazyConnect: true, retryStrategy: () => null });
      raw.on('error', () => {}); // refused until the server listens
      for (let i = 0; i < 100; i++) {
        if (await raw.connect().then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      raw.disconnect();
      const b = new RedisBus({ url: own, instanceId: 'b', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 200 });
      buses.push(b);
      const reloads = await follow(b, ['room-23', 'room-24']);
      await new Promise((r) => setTimeout(r, 300));
      expect([...reloads.values()]).toEqual([0, 0]);
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
      server = start();
      await until(() => [...reloads.values()].every((n) => n > 0), 'both rooms reloaded');
      expect([...reloads.values()]).toEqual([1, 1]);
      // And it is in the heartbeat and room sets again at once, not at its next beat (5 s).
      const after = new Redis(`redis://127.0.0.1:${port}`);
      try {
        expect(await eventually(async () => (await after.zscore(`${prefix}@instances`, 'b')) !== null && (await after.scard(`${prefix}@rooms:b`)) === 2)).toBe(true);
      } finally {
        after.disconnect();
      }
    } finally {
      server.kill('SIGKILL');
    }
  });

  /** A bus that reaches Redis through a proxy the test can freeze (Redis then stops answering it, without an error). */
  async function busBehindProxy(instanceId: string, options: Partial<ConstructorParameters<typeof RedisBus>[0]> = {}) {
    const direct = new URL(url!);
    const proxy = new TcpProxy([{ host: direct.hostname, port: Number(direct.port || 6379) }]);
    const viaProxy = new URL(direct);
    viaProxy.port = String(await proxy.listen());
    const b = new RedisBus({ url: viaProxy.toString(), instanceId, maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, ...options });
    buses.push(b);
    return { bus: b, proxy };
  }

  /** Publishes 10 entries from an instance Redis stops answering, and what another instance got. */
  async function publishWhileRedisHangs(room: string, limits: { maxOutbox?: number; maxOutboxBytes?: number }, payload = (i: number) => `m${i}`) {
    const { bus: a, proxy } = await busBehindProxy('a', limits);
    const b = bus('b');
    const seen = { reloads: 0, got: [] as string[] };
    try {
      await a.join(room, { message: () => {}, reload: () => {} });
      await b.join(room, { message: (_k, d) => seen.got.push(Buffer.from(d).toString()), reload: () => void seen.reloads++ });
      a.publish(room, 'update', Buffer.from('before'));
      await until(() => seen.got.length === 1, 'the first entry');
      proxy.freeze(); // Redis stops answering a, without an error
      for (let i = 0; i < 10; i++) a.publish(room, 'update', Buffer.from(payload(i)));
      proxy.thaw();
      await until(() => seen.got.includes(payload(9)), 'the last entry');
      await until(() => seen.reloads > 0, 'a reload');
    } finally {
      proxy.thaw();
      await proxy.close();
    }
    return seen;
  }

  it('makes its connections again when Redis vanishes from them without a word, and reads and publishes on', async () => {
    const { bus: a, proxy } = await busBehindProxy('a', { blockMs: 300, commandTimeoutMs: 500 });
    const b = bus('b', 1000, { blockMs: 300 });
    const atA: string[] = [];
    const atB: string[] = [];
    try {
      await a.join('room-cut', { message: (_k, d) => atA.push(Buffer.from(d).toString()), reload: () => {} });
      await b.join('room-cut', { message: (_k, d) => atB.push(Buffer.from(d).toString()), reload: () => {} });
      b.publish('room-cut', 'update', Buffer.from('before'));
      await until(() => atA.length === 1, 'the first entry at a');
      // Both of a's connections go silent for good, and no reset comes (TCP would take ~2 h).
      proxy.cut();
      b.publish('room-cut', 'update', Buffer.from('after'));
      a.publish('room-cut', 'update', Buffer.from('from a'));
      await until(() => atA.includes('after'), 'b’s entry at a, read on a new connection');
      await until(() => atB.includes('from a'), 'a’s entry at b, published on a new connection');
    } finally {
      await proxy.close();
    }
  });

  it('keeps the connections it made again after a reset: the old ones’ timeouts do not reach them', async () => {
    // (ioredis before 6 let the timer of a socket that closed with a command outstanding destroy
    // whichever socket the client had by the time it fired.)
    const warned: string[] = [];
    const { bus: a, proxy } = await busBehindProxy('a', { blockMs: 300, commandTimeoutMs: 500, log: { ...silent, warn: (event: string) => void warned.push(event) } });
    const b = bus('b', 1000, { blockMs: 300 });
    const atA: string[] = [];
    try {
      await a.join('room-reset', { message: (_k, d) => atA.push(Buffer.from(d).toString()), reload: () => {} });
      await b.join('room-reset', { message: () => {}, reload: () => {} });
      b.publish('room-reset', 'update', Buffer.from('before'));
      await until(() => atA.length === 1, 'the first entry at a');
      const made = proxy.accepted;
      proxy.reset(); // the blocking read is under way: its socket goes with a command outstanding
      await until(() => proxy.accepted >= made + 2, 'both connections made again');
      const errorsThen = warned.filter((e) => e === 'redis_error').length;
      await new Promise((r) => setTimeout(r, 2_000)); // past the old sockets' timeouts (800 ms)
      expect(proxy.accepted).toBe(made + 2);
      expect(warned.filter((e) => e === 'redis_error').length).toBe(errorsThen);
      b.publish('room-reset', 'update', Buffer.from('after'));
      await until(() => atA.includes('after'), 'b’s next entry at a');
    } finally {
      await proxy.close();
    }
  });

  it('logs failed publishes once a minute for each error, however many rooms retry', async () => {
    const warned: string[] = [];
    const leftOut: unknown[] = [];
    let failures = 0;
    const { bus: a, proxy } = await busBehindProxy('a', {
      commandTimeoutMs: 200,
      log: {
        ...silent,
        warn: (event: string, fields: Record<string, unknown> = {}) => {
          warned.push(event);
          if ('leftOut' in fields) leftOut.push(fields.leftOut);
        },
      },
      observer: { error: (kind: string) => void (kind === 'bus_publish_failed' && failures++) },
    });
    try {
      const rooms = Array.from({ length: 5 }, (_, i) => `room-pf${i}`);
      for (const room of rooms) await a.join(room, { message: () => {}, reload: () => {} });
      proxy.freeze(); // each XADD waits, and times out
      for (const room of rooms) a.publish(room, 'update', Buffer.from('x'));
      await until(() => failures >= rooms.length, 'a failed publish in each room');
      expect(warned.filter((e) => e === 'redis_publish_failed')).toHaveLength(1);
      // The count of those left out, once the minute ends (or the process exits).
      const failedThen = failures;
      logLeftOutCounts();
      expect(warned.filter((e) => e === 'redis_publish_failed')).toHaveLength(2);
      expect(leftOut).toEqual([failedThen - 1]);
    } finally {
      proxy.thaw();
      await proxy.close();
    }
  });

  it('takes out of its room set, at a heartbeat, a room it left but could not unlist then', async () => {
    const b = new RedisBus({ url: url!, instanceId: 'unlisting', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, heartbeatMs: 50 });
    buses.push(b);
    const raw = new Redis(url!);
    try {
      await b.join('room-u1', { message: () => {}, reload: () => {} });
      // What a failed SREM leaves behind: a room it no longer follows, still in its set.
      await raw.sadd(`${prefix}@rooms:unlisting`, 'room-gone');
      expect(await eventually(async () => (await raw.sismember(`${prefix}@rooms:unlisting`, 'room-gone')) === 0)).toBe(true);
      expect(await raw.sismember(`${prefix}@rooms:unlisting`, 'room-u1')).toBe(1);
    } finally {
      await raw.quit();
    }
  });

  it('keeps a room listed when it is left and joined again while its last entries go out', async () => {
    const { bus: b, proxy } = await busBehindProxy('rejoining');
    const raw = new Redis(url!);
    try {
      await b.join('room-25', { message: () => {}, reload: () => {} });
      b.publish('room-25', 'update', Buffer.from('last'));
      proxy.freeze(); // the entry's XADD waits for an answer...
      b.leave('room-25'); // ...so unlisting waits for it...
      const joined = b.join('room-25', { message: () => {}, reload: () => {} }); // ...and the room is joined again
      await new Promise((r) => setTimeout(r, 50));
      proxy.thaw();
      await joined;
      await new Promise((r) => setTimeout(r, 200));
      expect(await raw.sismember(`${prefix}@rooms:rejoining`, 'room-25')).toBe(1);
    } finally {
      proxy.thaw();
      await proxy.close();
      await raw.quit();
    }
  });

  it('lists its rooms again when its rooms\' set is gone or short (expired over a long outage, evicted)', async () => {
    const b = new RedisBus({ url: url!, instanceId: 'forgotten', maxLen: 1000, log: silent, keyPrefix: prefix, blockMs: 1000, heartbeatMs: 50 });
    buses.push(b);
    for (const room of ['room-26', 'room-27']) await b.join(room, { message: () => {}, reload: () => {} });
    const raw = new Redis(url!);
    try {
      await new Promise((r) => setTimeout(r, 150));
      await raw.del(`${prefix}@rooms:forgotten`); // its beat is still there
      await b.join('room-28', { message: () => {}, reload: () => {} }); // and one room is listed again at once
      const listed = async () => (await raw.smembers(`${prefix}@rooms:forgotten`)).sort().join(' ');
      expect(await eventually(async () => (await listed()) === 'room-26 room-27 room-28')).toBe(true);
      expect(await raw.pttl(`${prefix}@rooms:forgotten`)).toBeGreaterThan(0);
    } finally {
      await raw.quit();
    }
  });

  it('keeps a bounded outbox while Redis does not answer, and has the others reload for what it dropped', async () => {
    const { reloads, got } = await publishWhileRedisHangs('room-6', { maxOutbox: 3 });
    expect(reloads).toBe(1);
    // The first (already on its way) and the last went through; those between gave way to the reload.
    expect(got).toEqual(['before', 'm0', 'm9']);
  });

  it('keeps the last presence of each id when the outbox gives way, so no one gone is left showing', async () => {
    const { bus: a, proxy } = await busBehindProxy('a', { maxOutbox: 5 });
    const b = bus('b');
    const presence: Uint8Array[] = [];
    const presenceOf = presenceUpdate;
    try {
      await a.join('room-29', { message: () => {}, reload: () => {} });
      await b.join('room-29', { message: (kind, d) => kind === 'awareness' && presence.push(d), reload: () => {} });
      a.publish('room-29', 'update', Buffer.from('before'));
      await new Promise((r) => setTimeout(r, 200));
      proxy.freeze();
      a.publish('room-29', 'awareness', presenceOf([[5, 1, { user: 'x' }], [6, 1, { user: 'y' }]]));
      a.publish('room-29', 'awareness', presenceOf([[5, 2, null]])); // 5 leaves…
      a.publish('room-29', 'awareness', presenceOf([[7, 1, { user: 'z' }], [6, 2, { user: 'y2' }]])); // …7 comes, 6 moves…
      for (let i = 0; i < 10; i++) a.publish('room-29', 'update', Buffer.from(`m${i}`)); // …and the outbox overflows
      proxy.thaw();
      // What b was told of each id, last word first.
      const lastWord = () => {
        const words = new Map<number, unknown>();
        for (const update of presence) {
          const d = decoding.createDecoder(update);
          for (let n = decoding.readVarUint(d); n > 0; n--) {
            const id = decoding.readVarUint(d);
            decoding.readVarUint(d);
            words.set(id, JSON.parse(decoding.readVarString(d)));
          }
        }
        return words;
      };
      expect(await eventually(async () => lastWord().has(5) && lastWord().get(5) === null)).toBe(true);
      expect(lastWord().get(6)).toEqual({ user: 'y2' });
      expect(lastWord().get(7)).toEqual({ user: 'z' });
    } finally {
      proxy.thaw();
      await proxy.close();
    }
  });

  it('bounds the outbox by bytes too', async () => {
    const { reloads, got } = await publishWhileRedisHangs('room-7', { maxOutboxBytes: 300 }, (i) => `${i}`.padEnd(100, '.'));
    expect(reloads).toBe(1);
    expect(got.length).toBeLessThan(11);
  });

  it('bounds every room’s outbox together: past the total, each gives way to a reload (logged once a minute)', async () => {
    const full: unknown[] = [];
    const log = { ...silent, warn: (event: string, fields?: unknown) => void (event === 'redis_outboxes_full' && full.push(fields)) };
    const { bus: a, proxy } = await busBehindProxy('a', { maxOutboxTotalBytes: 500, log });
    const b = bus('b');
    const rooms = ['room-t1', 'room-t2'];
    const reloaded = new Set<string>();
    const got: string[] = [];
    try {
      // A room whose one entry is on its way when the bound is passed has nothing to give way.
      await a.join('room-t3', { message: () => {}, reload: () => {} });
      await b.join('room-t3', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: () => void reloaded.add('room-t3') });
      for (const room of rooms) {
        await a.join(room, { message: () => {}, reload: () => {} });
        await b.join(room, { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: () => void reloaded.add(room) });
      }
      proxy.freeze();
      a.publish('room-t3', 'update', Buffer.from('t3'));
      // 800 bytes more, 400 a room: each room alone is far from its own bound.
      for (let i = 0; i < 4; i++) for (const room of rooms) a.publish(room, 'update', Buffer.from(`${room}:${i}`.padEnd(100, '.')));
      // Each publish past the total makes the outboxes give way again: one line says so.
      for (let i = 0; i < 5; i++) for (const room of rooms) a.publish(room, 'update', Buffer.from(`${room}:more${i}`.padEnd(300, '.')));
      expect(full).toHaveLength(1);
      proxy.thaw();
      await until(() => reloaded.has('room-t1') && reloaded.has('room-t2') && got.includes('t3'), 'a reload of each full room');
      expect(got.length).toBeLessThan(9);
      await new Promise((r) => setTimeout(r, 200));
      expect(reloaded.has('room-t3')).toBe(false);
    } finally {
      proxy.thaw();
      await proxy.close();
    }
  });

  it('closing with entries it could not send, has the others reload the room instead', async () => {
    const { bus: a, proxy } = await busBehindProxy('a', { closeWaitMs: 500 });
    const b = bus('b');
    const seen = { reloads: 0, got: [] as string[] };
    try {
      await a.join('room-8', { message: () => {}, reload: () => {} });
      await b.join('room-8', { message: (_k, d) => seen.got.push(Buffer.from(d).toString()), reload: () => void seen.reloads++ });
      proxy.freeze();
      for (let i = 0; i < 5; i++) a.publish('room-8', 'update', Buffer.from(`m${i}`));
      const closed = a.close();
      await new Promise((r) => setTimeout(r, 700)); // past the first wait: the rest gave way
      proxy.thaw();
      await closed;
      await until(() => seen.reloads > 0, 'a reload');
      // The first was on its way; the others never went out, and the reload stands for them.
      expect(seen.got).toEqual(['m0']);
    } finally {
      proxy.thaw();
      await proxy.close();
    }
  });

  it('closes within its waits when Redis takes the connection and never answers', async () => {
    const { bus: a, proxy } = await busBehindProxy('frozen', { closeWaitMs: 200, heartbeatMs: 50 });
    try {
      await a.join('room-29', { message: () => {}, reload: () => {} });
      proxy.freeze(); // every command from here on, a heartbeat's included, waits for ever
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      await a.close();
      // A few waits of 200 ms (the beat under way, leaving the sets, quitting), not for ever.
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      proxy.thaw();
      await proxy.close();
      const raw = new Redis(url!);
      await raw.multi().zrem(`${prefix}@instances`, 'frozen').del(`${prefix}@rooms:frozen`).exec();
      await raw.quit();
    }
  });

  it('has the others reload after anything published while it is closing', async () => {
    const { bus: a, proxy } = await busBehindProxy('a', { closeWaitMs: 3_000 });
    const b = bus('b');
    const order: string[] = [];
    try {
      await a.join('room-9', { message: () => {}, reload: () => {} });
      await b.join('room-9', { message: (_k, d) => order.push(Buffer.from(d).toString()), reload: () => void order.push('reload') });
      proxy.freeze();
      a.publish('room-9', 'update', Buffer.from('before'));
      const closed = a.close();
      a.publish('room-9', 'update', Buffer.from('while closing'));
      proxy.thaw();
      await closed;
      await until(() => order.includes('reload'), 'a reload');
      expect(order).toEqual(['before', 'while closing', 'reload']);
    } finally {
      proxy.thaw();
      await proxy.close();
    }
  });

  it('fails to join a room, instead of waiting, while Redis cannot be reached', async () => {
    const { freePort } = await import('../../../test/ports.ts');
    const away = new RedisBus({ url: `redis://127.0.0.1:${await freePort()}`, instanceId: 'x', maxLen: 10, log: silent, keyPrefix: prefix });
    buses.push(away);
    const joined = away.join('room-4', { message: () => {}, reload: () => {} });
    const outcome = await Promise.race([joined.then(() => 'joined', () => 'failed'), new Promise((r) => setTimeout(() => r('still waiting'), 10_000))]);
    expect(outcome).toBe('failed');
  });

  it('fails to join a room, instead of waiting, while Redis takes connections but answers nothing', async () => {
    const held: Socket[] = [];
    const silentRedis = createServer((socket) => void held.push(socket)); // reads, never answers
    await new Promise<void>((r) => silentRedis.listen(0, '127.0.0.1', r));
    const port = (silentRedis.address() as AddressInfo).port;
    const hung = new RedisBus({ url: `redis://127.0.0.1:${port}`, instanceId: 'x', maxLen: 10, log: silent, keyPrefix: prefix, commandTimeoutMs: 500 });
    try {
      const joined = hung.join('room-4b', { message: () => {}, reload: () => {} });
      const outcome = await Promise.race([joined.then(() => 'joined', () => 'failed'), new Promise((r) => setTimeout(() => r('still waiting'), 5_000))]);
      expect(outcome).toBe('failed');
    } finally {
      const closed = new Promise((r) => silentRedis.close(r));
      for (const socket of held) socket.destroy();
      await Promise.race([hung.close(), new Promise((r) => setTimeout(r, 3_000))]);
      for (const socket of held) socket.destroy();
      await closed;
    }
  });

  it.each([
    [300, 10],
    // Fewer trimmed than were read after the gap: counting everything read as seen hid these.
    [1500, 1000],
    [1999, 1000],
    [2500, 1000],
  ])('reloads a room whose unread entries were trimmed away (%i published, %i kept)', async (published, kept) => {
    const b = bus('b', kept);
    let reloads = 0;
    const got: string[] = [];
    await b.join('room-3', { message: (_k, d) => got.push(Buffer.from(d).toString()), reload: async () => void reloads++ });
    // Published in one transaction and trimmed to `kept` exactly: b can read only the last ones.
    const raw = new Redis(url!);
    const multi = raw.multi();
    for (let i = 0; i < published; i++) multi.xadd(`${prefix}room-3`, 'MAXLEN', '=', String(kept), '*', 'i', 'elsewhere', 'k', 'update', 'd', `e${i}`);
    await multi.exec();
    await raw.quit();
    await until(() => reloads === 1 && got.length === kept, 'a reload');
    expect(got).toEqual(Array.from({ length: kept }, (_, i) => `e${published - kept + i}`));
    // Caught up: more entries arrive normally, without another reload.
    const more = new Redis(url!);
    await more.xadd(`${prefix}room-3`, 'MAXLEN', '=', String(kept), '*', 'i', 'elsewhere', 'k', 'update', 'd', 'next');
    await more.quit();
    await until(() => got.length === kept + 1, 'the next entry');
    expect(reloads).toBe(1);
  });

  it('keeps a listener’s throw to its room: the rest of the read is delivered, and entries trimmed away before it still reload the room', async () => {
    const errors: string[] = [];
    const logged: string[] = [];
    const b = bus('b', 1000, { observer: { error: (kind) => errors.push(kind) }, log: { ...silent, error: (event: string) => void logged.push(event) } });
    let reloads = 0;
    const got: string[] = [];
    const other: string[] = [];
    // Throws on the last entry of a read that moves its position past a trimmed gap.
    await b.join('room-throws', {
      message: (_k, d) => {
        const text = Buffer.from(d).toString();
        if (text === 'e1499') throw new Error('listener failed');
        got.push(text);
      },
      reload: () => void reloads++,
    });
    await b.join('room-beside', { message: (_k, d) => other.push(Buffer.from(d).toString()), reload: () => {} });
    const raw = new Redis(url!);
    const multi = raw.multi();
    for (let i = 0; i < 1500; i++) multi.xadd(`${prefix}room-throws`, 'MAXLEN', '=', '1000', '*', 'i', 'elsewhere', 'k', 'update', 'd', `e${i}`);
    multi.xadd(`${prefix}room-beside`, '*', 'i', 'elsewhere', 'k', 'update', 'd', 'beside');
    await multi.exec();
    await raw.quit();
    await until(() => reloads === 1 && other.length === 1, 'the reload, and the other room’s entry');
    expect(got).toHaveLength(999);
    expect(errors).toContain('bus_failed');
    expect(logged).toContain('redis_listener_failed');
  });
});

/** A TCP port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
