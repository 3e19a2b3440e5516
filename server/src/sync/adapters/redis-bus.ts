/**
 * SyncBus over Redis streams: one stream per room, at-least-once and resumable by stream id,
 * trimmed to a bounded length. Never plain pub/sub, which drops what a disconnected instance
 * missed.
 *
 * Each entry added to a room's stream is announced, in the same transaction, on one activity
 * stream (`<prefix>@activity`: the room's name and the instance's id). Each instance waits on
 * that stream alone with a blocking XREAD, and reads from its last id only the rooms it follows
 * that were announced (and a room it has just joined): an XREAD names every stream it reads, and
 * its cost grows with them, so reading every followed room at each turn made each read cost
 * ~14 ms at 10,000 rooms (see `npm run bench:bus`). Every `blockMs` (default 5 s) it also reads
 * every room it follows, which bounds how late an entry whose announcement it missed is read
 * (the activity stream trimmed past its position, or an entry added by an instance of a version
 * that announced nothing). It counts the entries it has read of each room; when the stream says
 * more entries were trimmed than this instance ever saw (entries-added − length > seen), part of
 * the room's history went past unread, and the room reloads from the database — which holds
 * every update, because an update is published only after it is stored.
 *
 * Two ways history can be missed besides trimming are covered by reloads. Redis restarting
 * (its run id changes; a restart without persistence loses the streams, and entries not yet read
 * with them): every room this instance follows reloads. And an instance dying between storing
 * updates and publishing them (kill -9, a lost machine): every instance beats a heartbeat into
 * one sorted set and keeps the rooms it holds (follows, or still stores to) in a set of its own; the first to find one
 * silent past `instanceStaleMs` adds a `reload` entry to the stream of each room it held (a
 * bounded number a beat: HEARTBEAT_SCRIPT), and removes it once all are done, so every instance
 * following those rooms reloads them from the database, which holds what the dead one stored.
 * One that closes having stored and published everything leaves both sets instead.
 *
 * While Redis is away each room's entries wait in an outbox, in order. Past `maxOutbox` entries
 * or `maxOutboxBytes` the waiting ones are dropped for one `reload` entry, which tells the other
 * instances to reload the room from the database (it holds every update published), and one
 * presence entry with the last state of each presence id they touched, so the outbox stays
 * bounded and no one gone is left showing. So do all of them once, together, they hold more than
 * `maxOutboxTotalBytes`.
 */
import { Redis } from 'ioredis';
import type { BusListener, BusMessageKind, SyncBus, SyncLogger, SyncObserver } from '../types.ts';
import { readPresenceEntries, writePresenceEntries, type PresenceEntry } from '@spanwise/shared/presence-entries';
import { waitAtMost } from '../wait-at-most.ts';
import { logThrottle } from '../../log.ts';

export interface RedisBusOptions {
  url: string;
  /** Distinguishes this instance's own entries, which it skips. */
  instanceId: string;
  /** Approximate maximum entries kept per room stream. */
  maxLen: number;
  log: SyncLogger;
  keyPrefix?: string;
  /**
   * How long one blocking read of the activity stream waits, and how often every followed room
   * is read whether announced or not (default 5 s): the most an entry whose announcement was
   * missed waits.
   */
  blockMs?: number;
  /** Counts failed reads and trim checks (`bus_failed`) and publishes (`bus_publish_failed`). */
  observer?: SyncObserver;
  /** Entries one room may have waiting to be published before they give way to a reload (default 10,000)… */
  maxOutbox?: number;
  /** …or bytes (default 64 MiB). */
  maxOutboxBytes?: number;
  /**
   * Bytes every room's outbox may hold together (default 256 MiB): past it, each gives way to
   * a reload (a long outage across many rooms would otherwise hold 64 MiB for each).
   */
  maxOutboxTotalBytes?: number;
  /** How often this instance beats its heartbeat and looks for instances gone (default 5 s)… */
  heartbeatMs?: number;
  /** …and how long one may stay silent before it counts as gone (default 20 s). */
  instanceStaleMs?: number;
  /**
   * On close, how long queued entries may take to go out (default 2 s); then what is left gives
   * way to one reload entry per room, which gets as long again.
   */
  closeWaitMs?: number;
  /**
   * A room's stream expires this long after its last entry (default 24 h): every update is in
   * the database, and an instance that joins a room starts from the stream's end, so a stream no
   * one has written to for that long holds nothing anyone reads. Without it, every room ever
   * opened kept its last entries in Redis for good.
   */
  streamTtlMs?: number;
  /**
   * An update larger than this (default 64 KiB) goes out as a `reload`, not as itself: the
   * others load it from the database, where it is. A stream keeps about `maxLen` entries however
   * large, and a read takes up to 1,000 of a room's at once, whole, every instance following it
   * the one that wrote them included: with updates of up to MAX_MESSAGE_BYTES (4 MiB) that would
   * be gigabytes in Redis and in one reply. (Presence is bounded by its own cap.)
   */
  maxEntryBytes?: number;
  /**
   * A command (not the blocking read) that Redis has not answered after this long fails
   * (default 10 s): a Redis that takes connections but answers nothing (hung, or a proxy to one
   * that is gone) would otherwise hold every room that joins for as long as it lasts.
   */
  commandTimeoutMs?: number;
}

const DEFAULT_STREAM_TTL_MS = 24 * 3_600_000;
const DEFAULT_MAX_ENTRY_BYTES = 64 * 1024;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const DEFAULT_BLOCK_MS = 5_000;
/** Idle time before TCP keep-alive probes start on a Redis connection. */
const KEEP_ALIVE_MS = 10_000;

/** What goes into a room's stream: an update, presence, or a call to reload from the database. */
type Entry = { kind: BusMessageKind; data: Uint8Array } | { kind: 'reload' };
const sizeOf = (entry: Entry) => (entry.kind === 'reload' ? 0 : entry.data.byteLength);

interface Outbox {
  entries: Entry[];
  bytes: number;
}

/**
 * Past what an outbox may hold, or when it cannot all go out: the first entry is the next to go
 * (being sent, or waiting to be tried again); the rest give way to one reload, which has the
 * other instances reload the room from the database, and one presence entry with the last state
 * of every presence id the dropped ones touched (the database holds no presence: a removal lost
 * here would leave the others showing someone gone). Returns how many updates or presence
 * entries gave way.
 */
function giveWayToReload(outbox: Outbox): number {
  // Given way already (the entry on its way, a reload, the presence kept): nothing more to drop.
  const [, second, third, ...more] = outbox.entries;
  if (second?.kind === 'reload' && (third === undefined || third.kind === 'awareness') && more.length === 0) return 0;
  const dropped = outbox.entries.splice(1, outbox.entries.length, { kind: 'reload' });
  const presence = lastPresence(dropped.flatMap((e) => (e.kind === 'awareness' ? [e.data] : [])));
  if (presence) outbox.entries.push({ kind: 'awareness', data: presence });
  outbox.bytes = outbox.entries.reduce((n, e) => n + sizeOf(e), 0);
  return dropped.filter((e) => e.kind !== 'reload').length;
}

/** Whether a reload waits in the outbox after every update in it (the first is on its way). */
function reloadWaits(entries: readonly Entry[]): boolean {
  for (let i = entries.length - 1; i > 0; i--) {
    if (entries[i]!.kind === 'reload') return true;
    if (entries[i]!.kind === 'update') return false;
  }
  return false;
}

/**
 * Presence (awareness) updates, in order, as one: each id with its last clock and state. Null
 * when they hold none, or one does not read (it was encoded here; it cannot not read).
 */
function lastPresence(updates: readonly Uint8Array[]): Uint8Array | null {
  const last = new Map<number, PresenceEntry>();
  try {
    for (const update of updates) {
      for (const entry of readPresenceEntries(update)) {
        if ((last.get(entry.id)?.clock ?? -1) <= entry.clock) last.set(entry.id, entry);
      }
    }
  } catch {
    return null;
  }
  return last.size > 0 ? writePresenceEntries([...last.values()]) : null;
}

interface Follow {
  listener: BusListener;
  lastId: string;
  /** Entries of the stream this instance has accounted for (read, or covered by a load). */
  seen: number;
  /** Entries this instance added since the room was last read (it skips its own announcements). */
  ownUnread: number;
}

const RETRY_MAX_MS = 5_000;
/** Entries one read takes per room at most. */
const READ_COUNT = 1_000;
/** Rooms one read names at most: announced ones, and those of a sweep (which takes several). */
const ROOMS_PER_READ = 1_000;
const SWEEP_ROOMS_PER_READ = 250;
/** A blocking read an interruption did not end (it raced the read to Redis) is interrupted again this soon. */
const INTERRUPT_AGAIN_MS = 50;
/** Approximate entries the activity stream keeps: an instance further behind relies on its sweeps. */
const ACTIVITY_MAX_LEN = 100_000;
/** Rooms of instances gone one heartbeat script reloads at most (four writes each; see HEARTBEAT_SCRIPT). */
const SWEEP_ROOMS_PER_BEAT = 1_000;
/** Announcements one read of the activity stream takes at most. */
const ACTIVITY_READ_COUNT = 10_000;

/**
 * One heartbeat, atomically on Redis' clock. Marks this instance (ARGV[1]) alive now in the
 * sorted set KEYS[1] and keeps its rooms' set (`<prefix>@rooms:<id>`) from expiring. Then, unless
 * its own last beat is missing or stale (an instance that was cut off from Redis cannot tell who
 * else was: it sweeps next time), or ARGV[9] is not 1 (the instance has not beaten without a
 * break for the stale time yet: after an outage that cut every instance off, the others may
 * still be reconnecting, and would be taken for dead), takes members silent for longer than
 * ARGV[2] ms and adds a `reload` entry, under the gone one's id, to the stream of each room it
 * held (the stream then expires ARGV[6] ms later, as every write to one does), announced on the
 * activity stream (kept to about ARGV[7] entries). At most ARGV[8] rooms a beat, taken out of the gone one's set as
 * they are done: Redis runs nothing else while a script runs, and instances holding thousands of
 * rooms each may go at once. A member is removed once its set is empty; until then the next beat
 * (anyone's) goes on with it.
 * Returns {whether this instance's last beat was there (0: no; 1: yes; 2: yes, but stale, so
 * others may have begun to sweep it), members removed, reloads added, rooms in its set}.
 */
export const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[2])
local prefix = ARGV[3]
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', prefix .. '@rooms:' .. ARGV[1], ARGV[5])
local listed = redis.call('SCARD', prefix .. '@rooms:' .. ARGV[1])
if not mine then return {0, 0, 0, listed} end
if now - tonumber(mine) > stale then return {2, 0, 0, listed} end
if ARGV[9] ~= '1' then return {1, 0, 0, listed} end
local budget = tonumber(ARGV[8])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - stale, 'LIMIT', 0, 100)
local removed = 0
local reloads = 0
for _, id in ipairs(gone) do
  if budget <= 0 then break end
  local rooms = prefix .. '@rooms:' .. id
  for _, room in ipairs(redis.call('SPOP', rooms, budget)) do
    redis.call('XADD', prefix .. room, 'MAXLEN', '~', ARGV[4], '*', 'i', id, 'k', 'reload')
    redis.call('PEXPIRE', prefix .. room, ARGV[6])
    -- (pcall: an announcement that fails must not stop the sweep; the readers' sweeps read it)
    redis.pcall('XADD', prefix .. '@activity', 'MAXLEN', '~', ARGV[7], '*', 'r', room, 'i', id)
    redis.pcall('PEXPIRE', prefix .. '@activity', ARGV[6])
    reloads = reloads + 1
    budget = budget - 1
  end
  if redis.call('SCARD', rooms) == 0 then
    redis.call('ZREM', KEYS[1], id)
    removed = removed + 1
  end
end
return {1, removed, reloads, listed}
`;
/**
 * A room stream's position (KEYS[1]): {last id, entries ever added, entries it holds}; for a
 * stream that does not exist, {'0-0', 0, 0}. What was trimmed is told by entries-added, which
 * XINFO STREAM gives from Redis 7 on. In a script, because XINFO also sends the stream's first
 * and last entries whole, and this runs after every read: one large update would otherwise
 * cross the network again at each.
 */
const POSITION_SCRIPT = `
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if info.err then
  if string.find(info.err, 'no such key') then return {'0-0', 0, 0} end
  return redis.error_reply(info.err)
end
local fields = {}
for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
if fields['entries-added'] == nil then
  return redis.error_reply('Redis 7 or later is needed: XINFO STREAM gives no entries-added')
end
return {fields['last-generated-id'], fields['entries-added'], fields['length']}
`;
/** Orders two stream ids (`<ms>-<seq>`, each part up to 2^64 − 1). */
function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

function fieldsOf(raw: unknown[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < raw.length; i += 2) m.set(String(raw[i]), raw[i + 1]);
  return m;
}

export class RedisBus implements SyncBus {
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #rooms = new Map<string, Follow>();
  readonly #outbox = new Map<string, Outbox>();
  /** Bytes in every outbox together. */
  #outboxBytes = 0;
  /** Rooms being joined (how many joins are under way for each). */
  readonly #joining = new Map<string, number>();
  /**
   * Each room's listeners that joined and have not left: the room followed, and one let go of
   * (broken) that still stores what it had queued. Listed while any is here.
   */
  readonly #holders = new Map<string, Set<BusListener>>();
  readonly #prefix: string;
  #subId: number | null = null;
  #running = true;
  /** close() has begun: whatever is published from now on is followed by a reload. */
  #closing = false;
  #wake: (() => void) | null = null;
  /** Followed rooms to read first: announced, just joined, or with many entries of its own unread. */
  readonly #due = new Set<string>();
  /** Followed rooms a sweep has still to read (after the due ones, a few at a time). */
  readonly #sweeping = new Set<string>();
  /** This instance's position in the activity stream; null: take its present end (and sweep). */
  #activityId: string | null = null;
  /** When the last sweep began (performance.now()). */
  #sweptAt = -Infinity;
  /** The blocking read of the activity stream under way (counted), or 0. */
  #blockingRead = 0;
  #readsStarted = 0;
  /** The last blocking read an interruption was sent for (one is enough). */
  #interruptedRead = 0;
  /** Reading the activity stream failed (not a stream there, say): rooms are read at sweeps only. */
  #activityFailing = false;
  readonly #activityProblems = logThrottle(60_000, { leftOut: (event, leftOut) => this.options.log.error(event, { key: this.#activityKey, leftOut }) });
  /** Every outbox giving way at once is logged once a minute at most (an outage makes it happen at each publish). */
  readonly #outboxesFull = logThrottle(60_000, { leftOut: (event, leftOut) => this.options.log.warn(event, { leftOut }) });
  readonly #publishProblems = logThrottle(60_000, { leftOut: (error, leftOut) => this.options.log.warn('redis_publish_failed', { error, leftOut }) });
  /** The Redis server is older than 7: rooms are refused rather than followed without trim detection. */
  #tooOld = false;
  /** The Redis server's run id when last connected: another one means it restarted. */
  #runId: string | null = null;
  /** Whether this instance has beaten its heartbeat once: after that, missing from the set means swept. */
  #beaten = false;
  #heartbeatFailing = false;
  /** Since when this instance's beats have reached Redis without a break past the stale time (null: the last failed). */
  #beatingSince: number | null = null;
  #beating: Promise<void> | null = null;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #loop: Promise<void>;

  constructor(private readonly options: RedisBusOptions) {
    this.#prefix = options.keyPrefix ?? 'spanwise:sync:';
    // While Redis is away a command fails after a few reconnection attempts instead of waiting
    // for it: a room that cannot join its stream fails to load (its clients are told to try
    // again later) rather than hang; publishing and reading retry on their own.
    const redisOptions = {
      maxRetriesPerRequest: 3,
      enableOfflineQueue: true,
      lazyConnect: false,
      // An idle connection whose peer vanished is found gone after ~20 s (10 s idle, then ten
      // probes a second apart), not after TCP's own ~2 h.
      keepAlive: KEEP_ALIVE_MS,
      // RESP2, the protocol the replies below are read in (ioredis 6 speaks RESP3 unless told).
      protocol: 2 as const,
      // 50 ms more after each failed attempt, 2 s at most: ioredis 5's pace. 6's own doubles up
      // to 5 s, which held a join or a read queued ~20 s behind an outage.
      retryStrategy: (attempt: number) => Math.min(attempt * 50, 2_000),
    };
    // A connection that waits on an answer and hears nothing (a host lost, a partition: no reset
    // comes) is dropped and made again once the answer is later than any command of its may
    // wait (a blocking read waits up to `blockMs`).
    const commandTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#pub = new Redis(options.url, { ...redisOptions, commandTimeout, socketTimeout: commandTimeout });
    this.#sub = new Redis(options.url, { ...redisOptions, socketTimeout: (options.blockMs ?? DEFAULT_BLOCK_MS) + commandTimeout });
    for (const [name, client] of [['pub', this.#pub], ['sub', this.#sub]] as const) {
      client.on('error', (err) => options.log.warn('redis_error', { connection: name, error: err.message }));
    }
    // Trim detection reads XINFO STREAM's entries-added, which Redis has from version 7 on.
    // Asked again (a few times, a second apart) when the answer fails: a restart it would tell
    // of would otherwise go unnoticed until the next reconnection.
    const askServer = (tries: number) => {
      this.#pub.info().then(
        (text) => {
          const major = Number(/redis_version:(\d+)/.exec(text)?.[1]);
          this.#tooOld = major < 7;
          if (this.#tooOld) options.log.error('redis_too_old', { version: major, needed: 7 });
          // Streams and room sets carry expiries, so a volatile-* policy may evict them (entries
          // no one has read, quietly): warned of, as the README says.
          const policy = /maxmemory_policy:(\S+)/.exec(text)?.[1];
          if (policy && policy !== 'noeviction') options.log.warn('redis_may_evict', { maxmemoryPolicy: policy, wanted: 'noeviction' });
          const runId = /run_id:(\w+)/.exec(text)?.[1] ?? null;
          if (this.#runId !== null && runId !== null && runId !== this.#runId) void this.#reloadAll();
          if (runId !== null) this.#runId = runId;
          // Listed again at once after a restart, not at the next interval: until then no one
          // would reload its rooms should it die.
          this.#beatSoon();
        },
        () => {
          if (tries > 1 && this.#running && this.#pub.status === 'ready') setTimeout(() => askServer(tries - 1), 1_000).unref();
        },
      );
    };
    this.#pub.on('ready', () => askServer(5));
    // Its id is asked again before the next blocking read: another connection has another (and
    // after a Redis restart, the old one may name someone else's).
    this.#sub.on('close', () => (this.#subId = null));
    this.#loop = this.#read();
    this.#heartbeat = setInterval(() => this.#beatSoon(), options.heartbeatMs ?? 5_000);
    this.#heartbeat.unref();
    this.#beatSoon();
  }

  #key(room: string): string {
    return this.#prefix + room;
  }

  get #activityKey(): string {
    return this.#metaKey('activity');
  }

  async #position(room: string): Promise<{ lastId: string; added: number; length: number }> {
    return this.#streamPosition(this.#key(room));
  }

  async #streamPosition(key: string): Promise<{ lastId: string; added: number; length: number }> {
    const [lastId, added, length] = (await this.#pub.eval(POSITION_SCRIPT, 1, key)) as [string, number, number];
    return { lastId: String(lastId), added: Number(added), length: Number(length) };
  }

  async join(room: string, listener: BusListener): Promise<void> {
    if (this.#tooOld) throw new Error('Redis 7 or later is needed to follow rooms');
    // Listed first: should this instance die once it stores into the room, the others reload it.
    // (Joining: an unlisting left over from leaving it before must not follow this listing.)
    this.#joining.set(room, (this.#joining.get(room) ?? 0) + 1);
    try {
      const [pos] = await Promise.all([this.#position(room), this.#list([room])]);
      this.#rooms.set(room, { listener, lastId: pos.lastId, seen: pos.added, ownUnread: 0 });
      this.#holders.set(room, (this.#holders.get(room) ?? new Set()).add(listener));
      // Read at once: what was announced while it joined went past the reader unheeded.
      this.#due.add(room);
    } finally {
      const left = this.#joining.get(room)! - 1;
      if (left === 0) this.#joining.delete(room);
      else this.#joining.set(room, left);
    }
    this.#interrupt();
  }

  leave(room: string, listener?: BusListener): void {
    const holders = this.#holders.get(room);
    if (listener) holders?.delete(listener);
    if (!listener || holders?.size === 0) this.#holders.delete(room);
    // (Not a room another has joined since.)
    if (!listener || this.#rooms.get(room)?.listener === listener) this.#rooms.delete(room);
    // Unlisted once what it published has gone out (see #drain), not while a join is under way,
    // and not while another listener holds it: a fresh room of the same name may be joining as
    // a broken one leaves, and a broken one may still store after the fresh one has left.
    if (!this.#outbox.has(room) && !this.#joining.has(room) && !this.#holders.has(room)) this.#unlist(room);
  }

  /** Adds rooms to this instance's set, which never stands without its expiry. */
  async #list(rooms: string[]): Promise<void> {
    await this.#pub.multi().sadd(this.#roomsKey, ...rooms).pexpire(this.#roomsKey, this.#roomsTtlMs).exec();
  }

  #unlist(room: string): void {
    this.#pub.srem(this.#roomsKey, room).catch(() => {}); // (listed in vain at worst: a reload)
  }

  publish(room: string, kind: BusMessageKind, data: Uint8Array): void {
    if (!this.#running) {
      // Closed: nothing goes out any more (only a room still storing past the server's close
      // timeout gets here). The update is stored: other instances that hold the room miss it
      // until its author's client, reconnecting, sends it again, or they load the room afresh.
      this.options.log.warn('redis_publish_after_close', { room, kind });
      return;
    }
    if (kind === 'update' && data.byteLength > (this.options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES)) this.#enqueue(room, { kind: 'reload' });
    else this.#enqueue(room, { kind, data });
    if (this.#closing) {
      // Closing: this may go out after the others already reloaded for the entries that gave
      // way, so a reload follows it.
      this.#enqueue(room, { kind: 'reload' });
    }
  }

  #enqueue(room: string, entry: Entry): void {
    const outbox = this.#outbox.get(room);
    if (!outbox) {
      this.#outbox.set(room, { entries: [entry], bytes: sizeOf(entry) });
      this.#outboxBytes += sizeOf(entry);
      void this.#drain(room);
      return;
    }
    const { entries } = outbox;
    if (entries.length >= (this.options.maxOutbox ?? 10_000) || outbox.bytes + sizeOf(entry) > (this.options.maxOutboxBytes ?? 64 * 1024 * 1024)) {
      this.options.log.warn('redis_outbox_full', { room, dropped: this.#giveWay(outbox) });
    }
    if (entry.kind === 'reload' && reloadWaits(entries)) return; // one is enough
    entries.push(entry);
    outbox.bytes += sizeOf(entry);
    this.#outboxBytes += sizeOf(entry);
    if (this.#outboxBytes > (this.options.maxOutboxTotalBytes ?? 256 * 1024 * 1024)) {
      // (An outbox holding only the entry on its way has nothing to give way.)
      let dropped = 0;
      for (const waiting of this.#outbox.values()) if (waiting.entries.length > 1) dropped += this.#giveWay(waiting);
      if (dropped > 0) {
        const shown = this.#outboxesFull('redis_outboxes_full');
        if (shown) this.options.log.warn('redis_outboxes_full', { rooms: this.#outbox.size, dropped, ...shown });
      }
    }
  }

  /** giveWayToReload, keeping the count of every outbox's bytes. */
  #giveWay(outbox: Outbox): number {
    const before = outbox.bytes;
    const dropped = giveWayToReload(outbox);
    this.#outboxBytes += outbox.bytes - before;
    return dropped;
  }

  /** Sends a room's queued entries in order, retrying while Redis is away. */
  async #drain(room: string): Promise<void> {
    const outbox = this.#outbox.get(room)!;
    const queue = outbox.entries;
    let delay = 50;
    while (queue.length > 0 && this.#running) {
      const entry = queue[0]!;
      const payload = entry.kind === 'reload' ? [] : ['d', Buffer.from(entry.data)];
      try {
        const key = this.#key(room);
        const replies = await this.#pub
          .multi()
          .xadd(key, 'MAXLEN', '~', String(this.options.maxLen), '*', 'i', this.options.instanceId, 'k', entry.kind, ...payload)
          .pexpire(key, this.#streamTtlMs)
          .xadd(this.#activityKey, 'MAXLEN', '~', String(ACTIVITY_MAX_LEN), '*', 'r', room, 'i', this.options.instanceId)
          .pexpire(this.#activityKey, this.#streamTtlMs)
          .exec();
        // The entry is in once the room's XADD is (a transaction is not rolled back: sent again,
        // it would go in twice). A failed announcement only leaves it to the readers' sweeps.
        const failed = replies?.[0]?.[0] ?? replies?.[1]?.[0];
        if (!replies || failed) throw failed ?? new Error('the publish transaction was discarded');
        const unannounced = replies[2]?.[0] ?? replies[3]?.[0];
        if (unannounced) this.#activityProblem('redis_announce_failed', unannounced);
        queue.shift();
        outbox.bytes -= sizeOf(entry);
        this.#outboxBytes -= sizeOf(entry);
        delay = 50;
        // Its own entries are not announced to it: read well before the stream's trimming could
        // pass them unread (which would count as history missed, and reload the room).
        const follow = this.#rooms.get(room);
        if (follow && ++follow.ownUnread >= Math.max(1, Math.floor(this.options.maxLen / 4)) && !this.#due.has(room)) {
          this.#due.add(room);
          this.#interrupt();
        }
      } catch (err) {
        this.options.observer?.error?.('bus_publish_failed');
        // Every room with entries waiting retries while Redis is away: once a minute for each error.
        const shown = this.#publishProblems(String(err));
        if (shown) this.options.log.warn('redis_publish_failed', { room, queued: queue.length, error: String(err), ...shown });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    this.#outbox.delete(room);
    this.#outboxBytes -= outbox.bytes; // (0 unless closed with entries left)
    if (!this.#holders.has(room) && !this.#joining.has(room) && this.#running) this.#unlist(room);
  }

  /**
   * Makes a blocking read return now, so a room made due is read at once (once per read). The
   * read may reach Redis after the UNBLOCK does (they go over two connections): while it is
   * still under way and was not unblocked, the UNBLOCK is sent again every 50 ms, ten times.
   */
  #interrupt(): void {
    this.#wake?.();
    const read = this.#blockingRead;
    if (read === 0 || this.#interruptedRead === read) return;
    this.#interruptedRead = read;
    const attempt = (left: number) => {
      const id = this.#subId;
      if (this.#blockingRead !== read || id === null) return;
      this.#pub.client('UNBLOCK', id).then(
        (unblocked) => {
          if (Number(unblocked) === 0 && left > 0) setTimeout(() => attempt(left - 1), INTERRUPT_AGAIN_MS).unref();
        },
        () => {},
      );
    };
    attempt(10);
  }

  /** Logs a failure to announce or read announcements, once a minute for each kind. */
  #activityProblem(event: string, err: unknown): void {
    const shown = this.#activityProblems(event);
    if (shown) this.options.log.error(event, { key: this.#activityKey, error: String(err), ...shown });
  }

  /**
   * Reads, in turns: the rooms due, when there are any, else a look at the activity stream
   * (without waiting while a sweep is under way); then, while one is, the next few rooms of the
   * sweep, so that it moves on whatever the traffic. With nothing to do it waits on the activity
   * stream for rooms to become due, until the next sweep.
   */
  async #read(): Promise<void> {
    let delay = 50;
    const sweepMs = this.options.blockMs ?? DEFAULT_BLOCK_MS;
    while (this.#running) {
      if (this.#rooms.size === 0) {
        // Idle: the position is taken afresh on the next join, not read through from here.
        this.#activityId = null;
        this.#due.clear();
        this.#sweeping.clear();
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = null;
        continue;
      }
      try {
        // (Without a position, one is taken at once; one that cannot be taken is tried at each sweep.)
        if ((this.#activityId === null && !this.#activityFailing) || performance.now() - this.#sweptAt >= sweepMs) await this.#startSweep();
        const untilSweep = Math.max(1, Math.ceil(this.#sweptAt + sweepMs - performance.now()));
        if (this.#due.size > 0) await this.#readRooms(this.#due, ROOMS_PER_READ);
        else if (this.#sweeping.size > 0) await this.#readActivity(null);
        else await this.#readActivity(untilSweep);
        if (this.#sweeping.size > 0) await this.#readRooms(this.#sweeping, SWEEP_ROOMS_PER_READ);
        delay = 50;
      } catch (err) {
        if (!this.#running) break;
        this.options.observer?.error?.('bus_failed');
        this.options.log.warn('redis_read_failed', { error: String(err), retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /**
   * Has every followed room read again, and checks this instance's position in the activity
   * stream: taken at its present end when it has none, or when the stream now ends before it
   * (deleted, expired or lost, and begun again on a clock behind the old one), where it would
   * wait for ids past its own and miss every announcement until then. A stream that cannot be
   * read (another type of key there) leaves the rooms to the sweeps.
   */
  async #startSweep(): Promise<void> {
    this.#sweptAt = performance.now();
    for (const room of this.#rooms.keys()) this.#sweeping.add(room);
    try {
      const pos = await this.#streamPosition(this.#activityKey);
      if (this.#activityId === null || compareIds(pos.lastId, this.#activityId) < 0) this.#activityId = pos.lastId;
      this.#activityFailing = false;
    } catch (err) {
      if (!this.#activityUnreadable(err)) throw err; // (Redis away: the read loop retries)
    }
  }

  /**
   * Whether `err` says the activity stream cannot be read (a key of another type there): then
   * the rooms are left to the sweeps, and it is logged.
   */
  #activityUnreadable(err: unknown): boolean {
    if (!/WRONGTYPE/.test(String(err))) return false;
    this.#activityFailing = true;
    this.#activityProblem('redis_activity_unreadable', err);
    return true;
  }

  /**
   * Reads the activity stream from this instance's position, waiting up to `blockMs` for an
   * announcement (null: not at all); the rooms followed here that they name become due.
   */
  async #readActivity(blockMs: number | null): Promise<void> {
    if (this.#activityFailing || this.#activityId === null) {
      // Nothing to look at: the next sweep, unless a room becomes due first.
      if (blockMs !== null) await new Promise<void>((r) => ((this.#wake = r), setTimeout(r, blockMs).unref()));
      this.#wake = null;
      return;
    }
    const from = this.#activityId;
    // (Asked on this connection, so answered before the read blocks it.)
    if (blockMs !== null && this.#subId === null) {
      this.#subId = Number(await this.#sub.client('ID'));
      if (this.#due.size > 0) return; // (made due meanwhile, with no read to interrupt)
    }
    const block = blockMs === null ? [] : ['BLOCK', blockMs];
    const read = ++this.#readsStarted;
    if (blockMs !== null) this.#blockingRead = read;
    let result: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    try {
      result = (await this.#sub.callBuffer('XREAD', 'COUNT', ACTIVITY_READ_COUNT, ...block, 'STREAMS', this.#activityKey, from)) as typeof result;
    } catch (err) {
      if (this.#activityUnreadable(err)) return;
      throw err;
    } finally {
      if (this.#blockingRead === read) this.#blockingRead = 0;
    }
    // Taken afresh meanwhile (Redis restarted): this read's ids are of the old stream.
    if (!result || this.#activityId !== from) return;
    for (const [, entries] of result) {
      for (const [idBuf, raw] of entries) {
        this.#activityId = idBuf.toString();
        const fields = fieldsOf(raw);
        const room = String(fields.get('r'));
        if (String(fields.get('i')) !== this.options.instanceId && this.#rooms.has(room)) this.#due.add(room);
      }
    }
  }

  /** Reads up to `most` of `rooms` (taking them out) from their positions, without blocking. */
  async #readRooms(due: Set<string>, most: number): Promise<void> {
    const rooms: Array<[string, Follow]> = [];
    for (const room of due) {
      due.delete(room);
      this.#sweeping.delete(room); // (read now: this sweep need not again)
      const follow = this.#rooms.get(room);
      if (follow) rooms.push([room, follow]);
      if (rooms.length === most) break;
    }
    if (rooms.length === 0) return;
    const keyToRoom = new Map(rooms.map(([room, follow]) => [this.#key(room), { room, follow }]));
    // One array, not spread: thousands of rooms' arguments would overflow the stack.
    const args: Array<string | number> = ['COUNT', READ_COUNT, 'STREAMS'];
    for (const [room] of rooms) args.push(this.#key(room));
    for (const [, f] of rooms) {
      args.push(f.lastId);
      f.ownUnread = 0; // (read now, up to READ_COUNT: a full read makes the room due again)
    }
    let result: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    try {
      result = (await this.#sub.callBuffer('XREAD', args)) as typeof result;
    } catch (err) {
      for (const [room] of rooms) due.add(room); // read at the next try
      throw err;
    }
    if (!result) return;
    const touched: Array<{ room: string; follow: Follow; seenBefore: number }> = [];
    for (const [keyBuf, entries] of result) {
      const read = keyToRoom.get(keyBuf.toString());
      // Only for the follow this read was issued for: a room left and joined again meanwhile
      // has a new one, with its own position, that these older entries must not move back
      // (nor count as seen, which could hide a trim).
      if (!read || this.#rooms.get(read.room) !== read.follow) continue;
      const { room, follow } = read;
      touched.push({ room, follow, seenBefore: follow.seen });
      // A full read may have left more behind: read on at the next turn.
      if (entries.length >= READ_COUNT) this.#due.add(room);
      for (const [idBuf, raw] of entries) {
        follow.lastId = idBuf.toString();
        follow.seen++;
        const fields = fieldsOf(raw);
        if (String(fields.get('i')) === this.options.instanceId) continue;
        const kind = String(fields.get('k'));
        const data = fields.get('d');
        if ((kind === 'update' || kind === 'awareness') && Buffer.isBuffer(data)) {
          this.#tell(room, () => follow.listener.message(kind, new Uint8Array(data)));
        } else if (kind === 'reload') {
          this.#tell(room, () => follow.listener.reload()); // another instance dropped entries it could not publish
        }
      }
    }
    await Promise.all(touched.map((t) => this.#checkTrimmed(t.room, t.follow, t.seenBefore)));
  }

  /**
   * Calls a room's listener. What it throws stays with that room: the rest of the read is
   * delivered, and its rooms are checked for trimmed entries (which their positions, moved on,
   * would otherwise hide for good).
   */
  #tell(room: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.options.observer?.error?.('bus_failed');
      this.options.log.error('redis_listener_failed', { room, error: String(err) });
    }
  }

  /**
   * Reloads a room from the store if entries it never read were trimmed away, or if the stream
   * itself is not the one it was reading (fewer entries ever added than it has seen: Redis lost
   * the stream, say in a restart without persistence, and whatever it had not read went too).
   *
   * The read began after the first `seenBefore` entries ever added; the stream has lost its first
   * (added − length). If that is more, the entry right after this instance's position may be
   * among them. Counted against what was seen after the read instead, the entries read past a gap
   * would cover it: a gap smaller than what the stream keeps went unnoticed, and the room never
   * caught up (what followed waited on what was missing). More trimmed than seen before the read
   * can also mean that entries this read returned were trimmed since — when this instance was
   * about a stream's length behind — and then the reload is one too many, never one too few.
   */
  async #checkTrimmed(room: string, follow: Follow, seenBefore: number): Promise<void> {
    if (this.#rooms.get(room) !== follow) return; // left, or left and joined again
    try {
      const pos = await this.#position(room);
      if (this.#rooms.get(room) !== follow) return;
      if (seenBefore >= pos.added - pos.length && follow.seen <= pos.added) return;
      this.options.log.warn('redis_stream_trimmed_past_us', { room, seen: follow.seen, added: pos.added, length: pos.length });
      // Everything up to pos.lastId is stored: take that position, then reload.
      follow.lastId = pos.lastId;
      follow.seen = pos.added;
      this.#tell(room, () => follow.listener.reload());
    } catch (err) {
      // Unchecked, this read may have skipped a gap: the room reloads rather than risk it.
      this.options.observer?.error?.('bus_failed');
      this.options.log.warn('redis_trim_check_failed', { room, error: String(err) });
      if (this.#rooms.get(room) === follow) this.#tell(room, () => follow.listener.reload());
    }
  }

  /** The set of rooms this instance holds, for the others to reload should it die. */
  get #roomsKey(): string {
    return this.#metaKey(`rooms:${this.options.instanceId}`);
  }

  /** How long that set outlives this instance's last beat or listing. */
  get #roomsTtlMs(): number {
    return Math.max(this.#staleMs * 10, 3_600_000);
  }

  get #streamTtlMs(): number {
    return this.options.streamTtlMs ?? DEFAULT_STREAM_TTL_MS;
  }

  get #staleMs(): number {
    return this.options.instanceStaleMs ?? 20_000;
  }

  #metaKey(name: string): string {
    // Room names start with a letter (doc:…, project:…): these never meet one.
    return `${this.#prefix}@${name}`;
  }

  /** Beats unless a beat is under way (close waits for that one). */
  #beatSoon(): void {
    if (this.#beating) return;
    this.#beating = this.#beat()
      .catch(() => {}) // (it logs its own failures)
      .finally(() => (this.#beating = null));
  }

  /**
   * Beats this instance's heartbeat (sweeping instances gone, see HEARTBEAT_SCRIPT). Found
   * swept itself (cut off from Redis past the stale time, or Redis restarted), or its rooms'
   * set holding fewer rooms than it has (expired over a long outage, evicted, a relisting cut
   * short), it lists its rooms again.
   */
  async #beat(): Promise<void> {
    if (!this.#running || this.#closing) return;
    let reply: [number, number, number, number];
    try {
      reply = (await this.#pub.eval(
        HEARTBEAT_SCRIPT,
        1,
        this.#metaKey('instances'),
        this.options.instanceId,
        String(this.#staleMs),
        this.#prefix,
        String(this.options.maxLen),
        String(this.#roomsTtlMs),
        String(this.#streamTtlMs),
        String(ACTIVITY_MAX_LEN),
        String(SWEEP_ROOMS_PER_BEAT),
        this.#beatingSince !== null && performance.now() - this.#beatingSince >= this.#staleMs ? '1' : '0',
      )) as [number, number, number, number];
      this.#heartbeatFailing = false;
    } catch (err) {
      if (!this.#heartbeatFailing) this.options.log.error('redis_heartbeat_failed', { error: String(err) });
      this.#heartbeatFailing = true;
      this.#beatingSince = null;
      return;
    }
    const [wasThere, gone, reloads, listed] = reply;
    // A beat that found its last one missing or stale starts a run of beats afresh (and so does
    // the first that answers after one failed: whether that one reached Redis is not known).
    if (wasThere !== 1) this.#beatingSince = performance.now();
    else this.#beatingSince ??= performance.now();
    if (gone > 0 || reloads > 0) this.options.log.warn('redis_instances_gone', { instances: gone, reloads });
    // The rooms it holds, and those it left whose entries still wait to go out. (A relisting
    // that fails part-way is tried again at the next beat: the set still holds too few.)
    const rooms = [...new Set([...this.#holders.keys(), ...this.#outbox.keys()])];
    // Listed again when it was swept (it is not in the set, or its beat was stale: another may
    // have taken some of its rooms), or the set holds too few.
    if (((wasThere !== 1 && this.#beaten) || listed < rooms.length) && rooms.length > 0 && !this.#closing) {
      this.options.log.warn('redis_instance_relisted', { rooms: rooms.length });
      try {
        for (let i = 0; i < rooms.length; i += 1000) await this.#list(rooms.slice(i, i + 1000));
      } catch (err) {
        this.options.log.warn('redis_relist_failed', { error: String(err) });
      }
    } else if (listed > rooms.length && !this.#closing) {
      // Rooms left whose unlisting failed (Redis away for a moment): kept listed by every beat,
      // they would be reloaded everywhere should this instance die. Taken out, apart from the
      // beat (close waits for a beat, not for this).
      void this.#unlistLeft();
    }
    this.#beaten = true;
  }

  /** Takes out of this instance's set the rooms it no longer holds nor publishes to. */
  async #unlistLeft(): Promise<void> {
    try {
      const members = await this.#pub.smembers(this.#roomsKey);
      const left = members.filter((r) => !this.#holders.has(r) && !this.#outbox.has(r) && !this.#joining.has(r));
      if (left.length > 0 && !this.#closing) await this.#pub.srem(this.#roomsKey, ...left);
    } catch (err) {
      this.options.log.warn('redis_unlist_failed', { error: String(err) });
    }
  }

  /**
   * Redis restarted: reloads every room this instance follows from the store, from the
   * stream's present end (everything published up to there is stored).
   */
  async #reloadAll(): Promise<void> {
    // The activity stream began again too: its position is taken afresh, with a sweep, at once.
    this.#activityId = null;
    this.#sweptAt = -Infinity;
    this.#interrupt();
    const rooms = [...this.#rooms.keys()];
    this.options.log.warn('redis_reload_rooms', { reason: 'redis_restarted', rooms: rooms.length });
    for (const room of rooms) {
      const follow = this.#rooms.get(room);
      if (!follow) continue;
      try {
        const pos = await this.#position(room);
        if (this.#rooms.get(room) !== follow) continue; // left (and maybe joined again) meanwhile
        // A follow of its own: what a read already under way returns for the old one (from
        // before this position, so in the reload) is let go instead of moving it back.
        this.#rooms.set(room, { listener: follow.listener, lastId: pos.lastId, seen: pos.added, ownUnread: 0 });
        this.#due.add(room);
        this.#interrupt();
      } catch (err) {
        // Its position stays: reading on from it still works, and the reload covers the rest.
        this.options.observer?.error?.('bus_failed');
        this.options.log.warn('redis_position_failed', { room, error: String(err) });
      }
      this.#tell(room, () => follow.listener.reload());
    }
    this.#interrupt();
  }

  /**
   * Closes the bus. `settled`: every update this instance received is stored (and so published
   * or in the outbox); then, once the outbox has gone out, it leaves the heartbeat and room sets,
   * and no instance reloads for it. Otherwise it stays there, falls silent, and the others reload
   * its rooms once it counts as gone.
   */
  async close(settled = true): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    // Each step that waits on Redis waits closeWaitMs at most: a Redis that takes connections
    // and never answers must not hold the server's shutdown.
    const waitMs = this.options.closeWaitMs ?? 2_000;
    const atMost = (work: Promise<unknown> | null) => waitAtMost(work, waitMs);
    await atMost(this.#beating); // (one under way could list rooms again after this leaves the sets)
    const settle = async (ms: number) => {
      const deadline = performance.now() + ms;
      while (this.#outbox.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    };
    // Give queued entries a moment to go out before closing.
    await settle(waitMs);
    if (this.#outbox.size > 0) {
      // What still waits would go with this instance: the others reload the rooms instead
      // (their updates are stored), as when an outbox overflows.
      for (const [room, outbox] of this.#outbox) this.options.log.warn('redis_outbox_unsent_on_close', { room, unsent: this.#giveWay(outbox) });
      await settle(waitMs);
      if (this.#outbox.size > 0) this.options.log.error('redis_outbox_lost_on_close', { rooms: [...this.#outbox.keys()] });
    }
    // Nothing is published from here on (a late publish is logged, not sent).
    this.#running = false;
    if (settled && this.#outbox.size === 0) {
      await atMost(this.#pub.multi().zrem(this.#metaKey('instances'), this.options.instanceId).del(this.#roomsKey).exec());
    }
    this.#interrupt();
    this.#sub.disconnect();
    // At most a wait: a read caught in a client that is reconnecting to a Redis gone for good
    // can stay pending after the disconnect (a CI run's close hung 60 s on it).
    await atMost(this.#loop.catch(() => {}));
    await atMost(this.#pub.quit());
    this.#pub.disconnect();
  }
}
