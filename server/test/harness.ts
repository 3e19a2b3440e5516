/**
 * Integration-test helpers: a real server on port 0 with its own database, sign-in, and real
 * y-websocket clients.
 *
 * Databases: every test database is fresh. PGlite runs in memory (or in a temp dir when a test
 * restarts the server); with TEST_DATABASE_URL set, `databaseKinds()` adds real PostgreSQL, one
 * throwaway database per server, dropped afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { testConfig, type Config } from '../src/config.ts';
import { openDatabase, type OpenDatabase } from '../src/db/database.ts';
import type { QueueLimits } from '../src/db/pglite-dialect.ts';
import type { Database } from '../src/db/types.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { counterTotal } from '../bench/stats.ts';

export type DbKindName = 'pglite' | 'postgres';

/** The database kinds to run database tests on: PGlite always, PostgreSQL when configured. */
export function databaseKinds(): DbKindName[] {
  return process.env.TEST_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
}

export interface TestDatabase {
  config: Pick<Config, 'databaseUrl' | 'dataDir'>;
  drop(): Promise<void>;
}

/** A fresh, empty database of the given kind; `persistent` PGlite lives in a temp dir. */
export async function createTestDatabase(kind: DbKindName, options: { persistent?: boolean } = {}): Promise<TestDatabase> {
  if (kind === 'pglite') {
    if (!options.persistent) return { config: { databaseUrl: null, dataDir: 'memory://' }, drop: async () => {} };
    const dir = await mkdtemp(path.join(tmpdir(), 'spanwise-test-'));
    return { config: { databaseUrl: null, dataDir: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const admin = process.env.TEST_DATABASE_URL;
  if (!admin) throw new Error('TEST_DATABASE_URL is not set');
  const name = `spanwise_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = '/' + name;
  return {
    config: { databaseUrl: url.toString(), dataDir: 'memory://' },
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/**
 * Opens a fresh, migrated database of `kind` before the suite's tests and drops it after;
 * read `.current` inside tests.
 */
export function useTestDatabase(kind: DbKindName): { readonly current: OpenDatabase } {
  let testDb: TestDatabase | undefined;
  let database: OpenDatabase | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    database = await openDatabase(testDb.config);
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });
  return {
    get current() {
      if (!database) throw new Error('the test database is not open yet');
      return database;
    },
  };
}

export interface TestServer extends RunningServer {
  /** Stops the server and drops its database. */
  close(): Promise<void>;
  /** Stops the server but keeps its database, for a restart. */
  stop(): Promise<void>;
  config: Config;
  testDatabase: TestDatabase;
}

export interface StartOptions {
  demo?: boolean;
  kind?: DbKindName;
  /** Reuse this database (e.g. to restart on the same data). */
  database?: TestDatabase;
  persistent?: boolean;
  config?: Partial<Config>;
  /** PGlite on disk: stands in for the free space the server reads (see disk-guard.ts). */
  diskFreeBytes?: (dir: string) => number;
  /** PGlite: how long a query may wait for the connection, and how many may wait. */
  databaseQueue?: Partial<QueueLimits>;
}

export async function startTestServer(options: StartOptions = {}): Promise<TestServer> {
  const testDatabase = options.database ?? (await createTestDatabase(options.kind ?? 'pglite', { persistent: options.persistent }));
  const config = testConfig({ demo: options.demo ?? true, ...testDatabase.config, ...options.config });
  const server = await startServer(config, { diskFreeBytes: options.diskFreeBytes, databaseQueue: options.databaseQueue });
  return {
    ...server,
    config,
    testDatabase,
    stop: () => server.close(),
    async close() {
      await server.close();
      await testDatabase.drop();
    },
  };
}

/** Signs in and returns the session cookie (`name=value`). */
export async function login(baseUrl: string, username: string, password = 'demo'): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status}`);
  const cookie = res.headers.get('set-cookie');
  if (!cookie) throw new Error('no session cookie');
  return cookie.split(';')[0]!;
}

export async function api<T = unknown>(baseUrl: string, cookie: string | null, pathname: string, init: RequestInit = {}) {
  const res = await fetch(`${baseUrl}${pathname}`, {
    ...init,
    headers: { ...(cookie ? { cookie } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}

export interface LayerClient {
  doc: Y.Doc;
  provider: WebsocketProvider;
  /** Resolves once the first sync with the server completed. */
  synced: Promise<void>;
  /** Resolves with the close code of the first close event. */
  closed: Promise<number>;
  destroy(): void;
}

/** A stock y-websocket client on `/sync/<room>`, signed in with `cookie` (or none). */
export function connectLayer(baseUrl: string, room: string, cookie: string | null, doc = new Y.Doc()): LayerClient {
  class CookieWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: cookie ? { cookie } : {} });
    }
  }
  const provider = new WebsocketProvider(baseUrl.replace(/^http/, 'ws') + '/sync', room, doc, {
    WebSocketPolyfill: CookieWebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  });
  const synced = new Promise<void>((resolve) => {
    if (provider.synced) resolve();
    provider.on('sync', (s: boolean) => s && resolve());
  });
  const closed = new Promise<number>((resolve) => {
    provider.on('connection-close', (event: { code: number } | null) => resolve(event?.code ?? -1));
  });
  return {
    doc,
    provider,
    synced,
    closed,
    destroy() {
      provider.destroy();
      doc.destroy();
    },
  };
}

/**
 * Holds the database's connection (PGlite has but one) in a transaction until `release` is
 * called: `held` resolves once it has it, `done` once the transaction has ended.
 */
export function holdConnection(db: Kysely<Database>): { held: Promise<void>; release: () => void; done: Promise<void> } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let holding!: () => void;
  const held = new Promise<void>((r) => (holding = r));
  const done = db.transaction().execute(async (t) => {
    await t.insertInto('sync_updates').values({ room: 'holder', data: new Uint8Array([0]) }).execute();
    holding();
    await released;
  });
  return { held, release, done };
}

/** How many rows a room's update log holds (every room's, with no room). */
export async function storedRows(db: Kysely<Database>, room?: string): Promise<number> {
  let query = db.selectFrom('sync_updates').select((eb) => eb.fn.countAll<string>().as('n'));
  if (room !== undefined) query = query.where('room', '=', room);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

/** A room as the database holds it: every stored row of `room` applied to a fresh Y.Doc. */
export async function storedDoc(db: Kysely<Database>, room: string): Promise<Y.Doc> {
  const rows = await db.selectFrom('sync_updates').select('data').where('room', '=', room).orderBy('id').execute();
  const doc = new Y.Doc();
  for (const r of rows) Y.applyUpdate(doc, r.data);
  return doc;
}

/** Waits until `check()` is truthy, polling; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A raw `ws` socket on a room, for frames no real client would send. */
export function rawSocket(baseUrl: string, room: string, cookie: string | null): Promise<{ ws: WebSocket; messages: Buffer[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/sync/${room}`, { headers: cookie ? { cookie } : {} });
    const messages: Buffer[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (data) => messages.push(data as Buffer));
    ws.on('open', () => resolve({ ws, messages, closed }));
    ws.on('error', reject);
  });
}

/** One sample from a server's Prometheus text; a counter never incremented is absent, so 0. */
export async function metric(baseUrl: string, sample: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** The sum of a counter's samples over all its labels. */
export async function metricTotal(baseUrl: string, name: string): Promise<number> {
  return counterTotal(await (await fetch(`${baseUrl}/metrics`)).text(), name);
}
