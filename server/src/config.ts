/**
 * The only reader of process.env. `loadConfig()` validates once and returns a frozen Config;
 * tests build their own Config instead of touching the environment.
 */
import { z } from 'zod';
import path from 'node:path';
import { DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_BYTES_PER_ROOM, DEFAULT_MAX_WAITING_FRAME_BYTES, queuedBytes, socketFrameBound } from './sync/backlog.ts';
import { DEFAULT_QUERY_DEADLINE_MS, DEFAULT_STORE_WRITE_DEADLINE_MS } from './db/deadlines.ts';
import { ALLOWED_HOST_ENTRY } from './http/allowed-hosts.ts';

export interface Config {
  port: number;
  host: string;
  /** Embedded PGlite data directory (used when databaseUrl is unset). `memory://` keeps it in RAM. */
  dataDir: string;
  databaseUrl: string | null;
  /** PostgreSQL: how long a query may go unanswered before it is cancelled (see withDeadline). */
  queryDeadlineMs: number;
  /** Embedded PGlite: WAL written since the last checkpoint that calls for a VACUUM and a CHECKPOINT. */
  pgliteMaintenanceWalBytes: number;
  /** Embedded PGlite: free disk space below which writes are refused. */
  pgliteMinFreeBytes: number;
  redisUrl: string | null;
  /** Prefix of the Redis stream keys (one stream per room). */
  redisKeyPrefix: string;
  demo: boolean;
  demoPassword: string;
  /** Directory of the built client (index.html and assets); null serves no pages. */
  clientDir: string | null;
  seedsDir: string;
  /** Mark the session cookie Secure (set when served over HTTPS). */
  secureCookies: boolean;
  /** Behind a proxy: a request's address is the last X-Forwarded-For entry (sign-in throttle). */
  trustProxy: boolean;
  /**
   * Names the server answers for besides IP addresses and localhost (see http/allowed-hosts.ts):
   * `a.example`, `.example` (the domain and every name under it), or `*` (any).
   */
  allowedHosts: readonly string[];
  /** The site's address as people reach it (an origin: `https://spanwise.example.org`), or null. */
  publicUrl: string | null;
  /** Failed sign-ins one address may make in 10 minutes, whatever the usernames (10 for each). */
  signInAttemptsPerAddress: number;
  sessionTtlHours: number;
  /** An export whose client reads nothing for this long is cut off (its slot given back). */
  exportStallMs: number;
  /** A new document's body of which no byte arrives for this long is given up (its upload place given back). */
  uploadStallMs: number;
  /** On PGlite, commits made at start to have V8 optimize PGlite's commit path (see KyselyStore.warmUp); 0: none. */
  storeWarmupCommits: number;
  sync: SyncLimits;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** When set, GET /metrics asks for `Authorization: Bearer <token>`; unset, it is open. */
  metricsToken: string | null;
}

export interface SyncLimits {
  /** Largest WebSocket frame accepted; larger frames close the socket with 1009. */
  maxMessageBytes: number;
  /** Messages one socket may send per second (burst allowed up to twice that). */
  maxMessagesPerSecond: number;
  /** Largest awareness update (presence) in one message. */
  maxAwarenessBytes: number;
  /** Bytes received and not yet stored one room may hold; past it a writer is closed with 1013. */
  maxQueuedBytesPerRoom: number;
  /** ...and every room together. */
  maxQueuedBytes: number;
  /** Bytes of frames that store nothing every socket together may have waiting (see Backlog). */
  maxWaitingFrameBytes: number;
  /** Compact a room's update log once it holds this many rows... */
  compactAfterRows: number;
  /** ...or this many bytes. */
  compactAfterBytes: number;
  /** Concurrent sync sockets one user may hold (one per open layer). */
  maxSocketsPerUser: number;
  /** Sync sockets one user may open a second, past twice maxSocketsPerUser (32 at least) at once. */
  socketOpensPerSecond: number;
  /** How often open sockets' access is checked again (a removed member loses them). */
  accessRecheckMs: number;
  /** Ping interval; a socket that missed the previous pong is dropped. */
  pingIntervalMs: number;
  /** Entries kept (approximately) in each room's Redis stream when scaled out. */
  redisStreamMaxLen: number;
  /** A store that has not answered after this long is announced as delayed, as a failed one is. */
  storeDelayNoticeMs: number;
  /** On PostgreSQL, how long a store's write may go unanswered before it is cancelled and tried again (see withDeadline). */
  storeWriteDeadlineMs: number;
  /** Bytes waiting to go out to one socket past which, for longer than maxBufferedMs, it is dropped. */
  maxBufferedBytes: number;
  maxBufferedMs: number;
  /** How long deciding a sync socket's access may take before a recent grant stands in. */
  accessTimeoutMs: number;
  /** How old a grant may be to stand in while the database cannot answer; 0: never. */
  accessCacheMs: number;
}

const root = path.resolve(import.meta.dirname, '../..');

export const defaultSyncLimits: SyncLimits = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxMessagesPerSecond: 200,
  maxAwarenessBytes: 64 * 1024,
  maxQueuedBytesPerRoom: DEFAULT_MAX_QUEUED_BYTES_PER_ROOM,
  maxQueuedBytes: DEFAULT_MAX_QUEUED_BYTES,
  maxWaitingFrameBytes: DEFAULT_MAX_WAITING_FRAME_BYTES,
  compactAfterRows: 500,
  compactAfterBytes: 4 * 1024 * 1024,
  maxSocketsPerUser: 64,
  socketOpensPerSecond: 1,
  accessRecheckMs: 5_000,
  pingIntervalMs: 30_000,
  redisStreamMaxLen: 1_000,
  storeDelayNoticeMs: 2_000,
  storeWriteDeadlineMs: DEFAULT_STORE_WRITE_DEADLINE_MS,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxBufferedMs: 10_000,
  accessTimeoutMs: 5_000,
  accessCacheMs: 15 * 60_000,
};

const bool = z
  .enum(['0', '1', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

/** The longest delay Node's timers take (2^31 − 1 ms, ~24.8 days): past it, they fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
/** A delay setting: a whole number of ms from `min` to what a timer can wait. */
const delayMs = (min: number, max = MAX_TIMER_MS) => z.coerce.number().int().min(min).max(max);

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().default('./.data'),
  DATABASE_URL: z.string().url().optional(),
  DATABASE_QUERY_DEADLINE_MS: delayMs(1_000).default(DEFAULT_QUERY_DEADLINE_MS),
  PGLITE_MAINTENANCE_WAL_MB: z.coerce.number().int().min(1).default(32),
  PGLITE_MIN_FREE_MB: z.coerce.number().int().min(1).default(64),
  REDIS_URL: z.string().url().optional(),
  REDIS_KEY_PREFIX: z.string().min(1).default('spanwise:sync:'),
  DEMO: bool.default(true),
  DEMO_PASSWORD: z.string().min(1).default('demo'),
  SECURE_COOKIES: bool.default(false),
  TRUST_PROXY: bool.default(false),
  // An origin alone (scheme, host, port): what the W3C export's ids start with.
  PUBLIC_URL: z
    .string()
    .url()
    .transform((v) => new URL(v))
    .refine((url) => /^https?:$/.test(url.protocol) && url.pathname === '/' && !url.search && !url.hash && !url.username, 'an http or https origin alone, such as https://spanwise.example.org')
    .transform((url) => ({ origin: url.origin, name: url.hostname.replace(/\.$/, '') }))
    // (Its name is answered for: a name, not a domain such as ".org".)
    .refine(({ name }) => name.startsWith('[') || (!name.startsWith('.') && ALLOWED_HOST_ENTRY.test(name)), 'its name must be a host name or an IP address')
    .optional(),
  ALLOWED_HOSTS: z
    .string()
    .transform((v) => v.split(',').map((entry) => entry.trim().toLowerCase().replace(/\.$/, '')).filter((entry) => entry !== ''))
    .refine((entries) => entries.every((entry) => ALLOWED_HOST_ENTRY.test(entry)), 'list names (spanwise.example.org), domains (.example.org) or *, separated by commas')
    .default([]),
  SIGN_IN_ATTEMPTS_PER_ADDRESS: z.coerce.number().int().min(10).default(100),
  // (Browsers keep a cookie 400 days at most, and Hono refuses to set one for longer.)
  SESSION_TTL_HOURS: z.coerce.number().positive().max(400 * 24).default(24 * 14),
  EXPORT_STALL_MS: delayMs(1_000).default(60_000),
  UPLOAD_STALL_MS: delayMs(1_000).default(30_000),
  STORE_WARMUP_COMMITS: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
  // ws takes its frame limit as a 32-bit integer: 2^32 would lift it.
  MAX_MESSAGE_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(defaultSyncLimits.maxMessageBytes),
  MAX_MESSAGES_PER_SECOND: z.coerce.number().int().min(1).default(defaultSyncLimits.maxMessagesPerSecond),
  MAX_AWARENESS_BYTES: z.coerce.number().int().min(256).default(defaultSyncLimits.maxAwarenessBytes),
  MAX_QUEUED_BYTES_PER_ROOM: z.coerce.number().int().min(1024).default(defaultSyncLimits.maxQueuedBytesPerRoom),
  MAX_QUEUED_BYTES: z.coerce.number().int().min(1024).default(defaultSyncLimits.maxQueuedBytes),
  MAX_WAITING_FRAME_BYTES: z.coerce.number().int().min(1024).default(defaultSyncLimits.maxWaitingFrameBytes),
  COMPACT_AFTER_ROWS: z.coerce.number().int().min(2).default(defaultSyncLimits.compactAfterRows),
  COMPACT_AFTER_BYTES: z.coerce.number().int().min(1024).default(defaultSyncLimits.compactAfterBytes),
  MAX_SOCKETS_PER_USER: z.coerce.number().int().min(1).default(defaultSyncLimits.maxSocketsPerUser),
  SOCKET_OPENS_PER_SECOND: z.coerce.number().positive().default(defaultSyncLimits.socketOpensPerSecond),
  ACCESS_RECHECK_MS: delayMs(100).default(defaultSyncLimits.accessRecheckMs),
  REDIS_STREAM_MAXLEN: z.coerce.number().int().min(10).default(defaultSyncLimits.redisStreamMaxLen),
  PING_INTERVAL_MS: delayMs(100).default(defaultSyncLimits.pingIntervalMs),
  STORE_DELAY_NOTICE_MS: delayMs(10).default(defaultSyncLimits.storeDelayNoticeMs),
  // (Not below a second: a large batch to a distant database could never make it in time.)
  STORE_WRITE_DEADLINE_MS: delayMs(1_000).default(defaultSyncLimits.storeWriteDeadlineMs),
  MAX_BUFFERED_BYTES: z.coerce.number().int().min(1024).default(defaultSyncLimits.maxBufferedBytes),
  MAX_BUFFERED_MS: delayMs(0).default(defaultSyncLimits.maxBufferedMs),
  // (A re-check of many sockets waits twice this.)
  ACCESS_TIMEOUT_MS: delayMs(10, Math.floor(MAX_TIMER_MS / 2)).default(defaultSyncLimits.accessTimeoutMs),
  ACCESS_CACHE_MS: delayMs(0).default(defaultSyncLimits.accessCacheMs),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // What an HTTP bearer token may hold (RFC 6750); hono's bearerAuth refuses anything else.
  METRICS_TOKEN: z
    .string()
    .min(16, 'use at least 16 characters')
    .regex(/^[A-Za-z0-9._~+/-]+=*$/, 'use letters, digits and . _ ~ + / - only (a bearer token)')
    .optional(),
}).superRefine((e, ctx) => {
  // A room must be able to hold at least one message waiting to be stored, and all rooms one room's share.
  // (Each update counts with its bookkeeping, one run of structs at least: see backlog.ts.)
  const largest = queuedBytes(e.MAX_MESSAGE_BYTES, 1);
  if (e.MAX_QUEUED_BYTES_PER_ROOM < largest) {
    ctx.addIssue({ code: 'custom', path: ['MAX_QUEUED_BYTES_PER_ROOM'], message: `must be at least MAX_MESSAGE_BYTES + ${largest - e.MAX_MESSAGE_BYTES} (${largest}), or a largest update could never be stored` });
  }
  // Instances share what they store through one PostgreSQL: each with an embedded database of
  // its own would store only its own clients' updates, and reload rooms without the others'.
  if (e.REDIS_URL !== undefined && e.DATABASE_URL === undefined) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'needs DATABASE_URL: instances that share rooms through Redis must share one PostgreSQL' });
  }
  if (e.MAX_QUEUED_BYTES < e.MAX_QUEUED_BYTES_PER_ROOM) {
    ctx.addIssue({ code: 'custom', path: ['MAX_QUEUED_BYTES'], message: `must be at least MAX_QUEUED_BYTES_PER_ROOM (${e.MAX_QUEUED_BYTES_PER_ROOM})` });
  }
  // One user's share, a quarter of it, must hold what one socket may have waiting.
  const socket = socketFrameBound(e.MAX_MESSAGE_BYTES);
  if (e.MAX_WAITING_FRAME_BYTES < 4 * socket) {
    ctx.addIssue({ code: 'custom', path: ['MAX_WAITING_FRAME_BYTES'], message: `must be at least 4 × (2 × MAX_MESSAGE_BYTES + ${socket - 2 * e.MAX_MESSAGE_BYTES}) (${4 * socket}): one user's share is a quarter of it, and must hold what one socket may have waiting` });
  }
});

/** Reads and validates the environment; throws an Error naming every bad variable. */
/** The settings that are numbers (their schema, under its default, a number's). */
const NUMBER_SETTINGS = new Set(
  Object.entries(envSchema.shape).flatMap(([name, schema]) => {
    let inner: z.core.$ZodType = schema;
    while (inner._zod.def.type === 'default' || inner._zod.def.type === 'optional') inner = (inner._zod.def as z.core.$ZodDefaultDef).innerType;
    return inner._zod.def.type === 'number' ? [name] : [];
  }),
);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Blank (or only spaces) is unset. A number is written in decimal: Number() would also read
  // "0x50" and "8e1" as 80, and " " as 0.
  const given = Object.entries(env).flatMap(([name, value]) => (value === undefined || value.trim() === '' ? [] : [[name, NUMBER_SETTINGS.has(name) ? value.trim() : value] as const]));
  const notDecimal = given.filter(([name, value]) => NUMBER_SETTINGS.has(name) && !/^-?\d+(\.\d+)?$/.test(value)).map(([name]) => `${name}: must be a number in decimal digits`);
  const parsed = envSchema.safeParse(Object.fromEntries(given));
  if (!parsed.success || notDecimal.length > 0) {
    const problems = [...notDecimal, ...(parsed.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`)].join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL ?? null,
    queryDeadlineMs: e.DATABASE_QUERY_DEADLINE_MS,
    pgliteMaintenanceWalBytes: e.PGLITE_MAINTENANCE_WAL_MB * 1024 * 1024,
    pgliteMinFreeBytes: e.PGLITE_MIN_FREE_MB * 1024 * 1024,
    redisUrl: e.REDIS_URL ?? null,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    demo: e.DEMO,
    demoPassword: e.DEMO_PASSWORD,
    clientDir: path.join(root, 'client/dist'),
    seedsDir: path.join(root, 'seeds'),
    secureCookies: e.SECURE_COOKIES,
    trustProxy: e.TRUST_PROXY,
    // (The site's own name is answered for.)
    allowedHosts: Object.freeze([...e.ALLOWED_HOSTS, ...(e.PUBLIC_URL ? [e.PUBLIC_URL.name] : [])]),
    publicUrl: e.PUBLIC_URL?.origin ?? null,
    signInAttemptsPerAddress: e.SIGN_IN_ATTEMPTS_PER_ADDRESS,
    sessionTtlHours: e.SESSION_TTL_HOURS,
    exportStallMs: e.EXPORT_STALL_MS,
    uploadStallMs: e.UPLOAD_STALL_MS,
    storeWarmupCommits: e.STORE_WARMUP_COMMITS,
    sync: Object.freeze({
      maxMessageBytes: e.MAX_MESSAGE_BYTES,
      maxMessagesPerSecond: e.MAX_MESSAGES_PER_SECOND,
      maxAwarenessBytes: e.MAX_AWARENESS_BYTES,
      maxQueuedBytesPerRoom: e.MAX_QUEUED_BYTES_PER_ROOM,
      maxQueuedBytes: e.MAX_QUEUED_BYTES,
      maxWaitingFrameBytes: e.MAX_WAITING_FRAME_BYTES,
      compactAfterRows: e.COMPACT_AFTER_ROWS,
      compactAfterBytes: e.COMPACT_AFTER_BYTES,
      maxSocketsPerUser: e.MAX_SOCKETS_PER_USER,
      socketOpensPerSecond: e.SOCKET_OPENS_PER_SECOND,
      accessRecheckMs: e.ACCESS_RECHECK_MS,
      pingIntervalMs: e.PING_INTERVAL_MS,
      redisStreamMaxLen: e.REDIS_STREAM_MAXLEN,
      storeDelayNoticeMs: e.STORE_DELAY_NOTICE_MS,
      storeWriteDeadlineMs: e.STORE_WRITE_DEADLINE_MS,
      maxBufferedBytes: e.MAX_BUFFERED_BYTES,
      maxBufferedMs: e.MAX_BUFFERED_MS,
      accessTimeoutMs: e.ACCESS_TIMEOUT_MS,
      accessCacheMs: e.ACCESS_CACHE_MS,
    }),
    logLevel: e.LOG_LEVEL,
    metricsToken: e.METRICS_TOKEN ?? null,
  });
}

/** A config for tests: in-memory PGlite, port 0, quiet logs; override what a test needs. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({
    ...loadConfig({}),
    port: 0,
    host: '127.0.0.1',
    dataDir: 'memory://',
    redisKeyPrefix: `spanwise-test:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`,
    sessionTtlHours: 1,
    logLevel: 'silent' as const,
    storeWarmupCommits: 0,
    ...overrides,
  });
}
