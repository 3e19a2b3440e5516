/**
 * Opens the database: `pg` when DATABASE_URL is set, embedded PGlite otherwise, and migrates it.
 *
 * @example
 *   const { db, kind, close } = await openDatabase(config);
 */
import { existsSync, promises as fs } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Database } from './types.ts';
import { isLockEntry, lockDataDir, running } from './data-dir-lock.ts';
import { migrations } from './migrations/index.ts';
import { DatabaseBusyError, PGliteDialect, type PreparedStatement, type QueueLimits, type StatementParam } from './pglite-dialect.ts';
import { startPgliteMaintenance, type PgliteMaintenance, type PgliteMaintenanceOptions } from './pglite-maintenance.ts';
import { checkRoomToStart, startDiskGuard, statfsFreeBytes, type DiskGuard, type DiskGuardOptions } from './disk-guard.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_QUERY_DEADLINE_MS, deadlineHere, withDeadline } from './deadlines.ts';

export type { PreparedStatement, StatementParam };

export type DbKind = 'pglite' | 'postgres';

export interface OpenDatabase {
  db: Kysely<Database>;
  kind: DbKind;
  /**
   * On PGlite, runs a prepared statement once per row of values in one transaction, straight
   * through its wire protocol (see PGliteDialect.executeEach); null on PostgreSQL, where the
   * network round trip dwarfs what it saves.
   */
  executeEach: ((statement: PreparedStatement, rows: readonly (readonly StatementParam[])[]) => Promise<void>) | null;
  /** On PGlite, its VACUUM and CHECKPOINT upkeep; null on PostgreSQL, which does its own. */
  maintenance: PgliteMaintenance | null;
  /**
   * On PGlite on disk, why a write that may take `diskBytes` of disk must not go ahead now (null:
   * it may): for writes whose size their values do not tell (see DiskGuard.roomForDisk). Null
   * on PostgreSQL and in memory.
   */
  diskRoomFor: ((diskBytes: number) => string | null) | null;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl: string | null;
  dataDir: string;
  /** PGlite only: the upkeep its missing background processes would do (see pglite-maintenance.ts). */
  pgliteMaintenance?: Partial<Omit<PgliteMaintenanceOptions, 'log' | 'paused'>>;
  /** PGlite on disk: the free space below which writes are refused (see disk-guard.ts). */
  diskGuard?: Partial<Pick<DiskGuardOptions, 'reserveBytes' | 'checkEveryMs' | 'freeBytes'>>;
  /** PGlite: how long a query may wait for its one connection, and how many may wait (see PGliteDialect). */
  queue?: Partial<QueueLimits>;
  /**
   * PostgreSQL: how long any query may go unanswered before it is cancelled (and, if it does not
   * end then, its connection and the idle ones closed), outside a scope of withDeadline's
   * (default 60 s; migrations have none).
   */
  queryDeadlineMs?: number;
  /** PGlite on disk: a start freezes the template databases once they are this old (in transactions). */
  freezeTemplatesAfterAge?: number;
  /** PGlite on disk: how long a start waits for another process to let go of the folder (see data-dir-lock.ts). */
  lockWaitMs?: number;
  log?: Logger;
}

async function openPglite(dataDir: string): Promise<PGlite> {
  const pglite = await PGlite.create(dataDir);
  // A new WAL segment is otherwise written full of zeros (16 MiB, through PGlite's file layer)
  // inside the commit that needs it: a 55 ms stall every ~30,000 stored edits, which holds
  // every room. Unset, the file is made at its full size without writing it; what Postgres
  // writes into it, and so what survives a crash, is the same.
  await pglite.exec('SET wal_init_zero = off');
  return pglite;
}

/**
 * Transactions since the template databases were last frozen, past which a start freezes them
 * (autovacuum_freeze_max_age's default). Postgres stops taking writes at ~2.1 billion.
 */
const TEMPLATE_FREEZE_AGE = 200_000_000;

async function oldestTemplateAge(pglite: PGlite): Promise<number> {
  const { rows } = await pglite.query<{ age: number }>('select coalesce(max(age(datfrozenxid)), 0)::int as age from pg_database where datistemplate');
  return rows[0]!.age;
}

/** Writes are refused that would leave less than 64 MiB free; the free space is also read every second. */
const defaultDiskGuard = { reserveBytes: 64 * 1024 * 1024, checkEveryMs: 1_000, freeBytes: statfsFreeBytes };

/** Every 10 s, a VACUUM and a CHECKPOINT once 32 MiB of WAL (~60,000–100,000 edits) are written. */
export const defaultPgliteMaintenance = { walBytes: 32 * 1024 * 1024, checkEveryMs: 10_000 };

/**
 * A connection to PostgreSQL that could not be made: no pooled connection is open, and the
 * request waited its limit while every slot was still connecting (a host that drops packets
 * answers no attempt). SQLSTATE 08001, as libpq calls it: the database cannot be reached.
 */
export class DatabaseUnreachableError extends Error {
  readonly code = '08001';
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'DatabaseUnreachableError';
  }
}

/** How long a cancel request may take to reach PostgreSQL before it is given up. */
const CANCEL_WAIT_MS = 5_000;
/** How long a query cancelled at its deadline may take to end before its connection is closed (at most half the deadline). */
const CANCEL_GRACE_MS = 2_000;

/**
 * Asks PostgreSQL to cancel what `client`'s backend is running (a CancelRequest, on a connection
 * of its own, as libpq's PQcancel). A backend waiting on a lock, or a commit waiting for a
 * standby, does not notice its client gone, and would otherwise finish the query later, alone.
 * Sent and forgotten: a host that is gone never answers, and nothing waits for it.
 */
function cancelOnServer(client: pg.PoolClient): void {
  const { processID, secretKey, host, port } = client as unknown as { processID: number | null; secretKey: number | null; host: string; port: number };
  if (processID === null || secretKey === null) return;
  // (pg's Connection writes the message; its typings leave out the two calls used here.)
  const con = new pg.Connection() as unknown as pg.Connection & {
    connect(portOrPath: number | string, host?: string): void;
    cancel(processID: number, secretKey: number): void;
  };
  const giveUp = setTimeout(() => con.stream.destroy(), CANCEL_WAIT_MS);
  giveUp.unref();
  con.on('error', () => {});
  con.on('end', () => clearTimeout(giveUp));
  con.on('connect', () => con.cancel(processID, secretKey));
  if (host.startsWith('/')) con.connect(`${host}/.s.PGSQL.${port}`);
  else con.connect(port, host);
}

/**
 * `pool` as Kysely takes it, watched. Says why a request waited its limit for a connection: pg's pool
 * says "timeout exceeded when trying to connect" both when every connection is taken (busy) and
 * when every slot is still trying to connect to a host that never answers (unreachable). With
 * at least one connection open, the database answers and is busy; with none, it is not there.
 * And keeps the deadlines of withDeadline.
 */
export function watchedPool(pool: pg.Pool, defaultDeadlineMs = Infinity): { connect(): Promise<pg.PoolClient>; end(): Promise<void> } {
  // A client is counted from its connecting until the pool lets it go (one that never
  // connects is neither: pg's pool emits neither event for it); idle, while in the pool.
  const open = new Set<pg.PoolClient>();
  const idle = new Set<pg.PoolClient>();
  const deadlined = new WeakSet<pg.PoolClient>();
  pool.on('connect', (client) => open.add(client));
  pool.on('acquire', (client) => idle.delete(client));
  pool.on('release', (_err: unknown, client: pg.PoolClient) => idle.add(client));
  pool.on('remove', (client) => {
    open.delete(client);
    idle.delete(client);
  });
  /** Why a connection was closed here: what a later query on it (Kysely's ROLLBACK) is told too. */
  const cutFor = new WeakMap<pg.PoolClient, Error>();
  /** Closes a connection's socket: its query in flight fails, and the pool lets it go. */
  const cut = (client: pg.PoolClient, why: string) => {
    // (08006, connection_failure: the API answers 503 database_unavailable, as for a reset.)
    const error = Object.assign(new Error(why), { code: '08006' });
    cutFor.set(client, error);
    client.connection.stream.destroy(error);
  };
  /**
   * Connections a cancel was sent for: let go of when released, not handed out again. The cancel
   * goes on a connection of its own and may land after the query ended on its own, on whatever
   * the next holder of this connection runs (57014 for a query that did nothing wrong).
   */
  const cancelSent = new WeakSet<pg.PoolClient>();
  const keepDeadlines = (client: pg.PoolClient) => {
    if (deadlined.has(client)) return;
    deadlined.add(client);
    // Not open from the moment the pool lets it go: ending a connection to a host that says
    // nothing leaves it half-closed, and the pool's 'remove' comes only once TCP gives up.
    const end = client.end.bind(client) as (...args: unknown[]) => unknown;
    (client as { end: unknown }).end = (...args: unknown[]) => {
      open.delete(client);
      idle.delete(client);
      return end(...args);
    };
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      // (Said as why it was closed, not as "not queryable", which would hide the cause.)
      const closed = cutFor.get(client);
      if (closed) return Promise.reject(closed);
      const ms = deadlineHere() ?? defaultDeadlineMs;
      const result = query(...args);
      if (!Number.isFinite(ms) || !(result instanceof Promise)) return result;
      // Cancelled, a query on a live connection ends at once (57014; the connection is let go
      // of when released, see cancelSent); one that does not is on a connection gone silent:
      // closed, and the idle ones.
      let grace: ReturnType<typeof setTimeout> | undefined;
      const timer = setTimeout(() => {
        cancelSent.add(client);
        cancelOnServer(client);
        grace = setTimeout(() => {
          cut(client, `no answer from PostgreSQL in ${ms} ms`);
          for (const other of idle) cut(other, 'another connection got no answer from PostgreSQL');
        }, Math.min(CANCEL_GRACE_MS, ms / 2));
      }, ms);
      return result.finally(() => {
        clearTimeout(timer);
        clearTimeout(grace);
      });
    };
  };
  return {
    async connect() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        if (!(err instanceof Error) || !/^timeout exceeded when trying to connect/.test(err.message)) throw err;
        if (open.size > 0) throw new DatabaseBusyError(`every pooled connection to PostgreSQL stayed taken for ${pool.options.connectionTimeoutMillis} ms`, { cause: err });
        throw new DatabaseUnreachableError(`no connection to PostgreSQL could be made in ${pool.options.connectionTimeoutMillis} ms`, { cause: err });
      }
      keepDeadlines(client);
      // (pg's pool sets `release` anew at each checkout.)
      const release = client.release.bind(client) as (err?: Error | boolean) => void;
      (client as { release: unknown }).release = (err?: Error | boolean) => release(err || cancelSent.has(client));
      return client;
    },
    end: () => pool.end(),
  };
}

export async function openDatabase(options: DatabaseOptions): Promise<OpenDatabase> {
  let db: Kysely<Database>;
  let kind: DbKind;
  let executeEach: OpenDatabase['executeEach'] = null;
  /** Lets go of the embedded database's folder (see data-dir-lock.ts). */
  let unlock: (() => Promise<void>) | null = null;
  let maintenance: PgliteMaintenance | null = null;
  let diskGuard: DiskGuard | null = null;
  let diskRoomFor: OpenDatabase['diskRoomFor'] = null;
  if (options.databaseUrl) {
    // A connection attempt to a host that does not answer fails after 10 s instead of hanging on
    // the OS's retries. TCP keep-alive, probing after 10 s idle, lets an idle pooled connection
    // whose peer vanished be noticed; a query in flight on a route that drops packets still
    // waits for TCP to give up, and the sync rooms say saving is delayed meanwhile.
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle client's error (the server restarting, say) must not crash the process; nor may
    // one's the pool has handed out, which has no listener of its own: PostgreSQL ending its
    // connection while it sits between two statements (a transaction's, or before its release)
    // would be an uncaught exception. Its next query fails instead, and the pool lets it go.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: watchedPool(pool, options.queryDeadlineMs ?? DEFAULT_QUERY_DEADLINE_MS) }) });
    kind = 'postgres';
  } else {
    const onDisk = !options.dataDir.startsWith('memory://');
    const disk = { ...defaultDiskGuard, ...options.diskGuard };
    if (onDisk) {
      checkRoomToStart(options.dataDir, disk.reserveBytes, !existsSync(path.join(options.dataDir, 'PG_VERSION')), disk.freeBytes);
      // One process on the folder: taken before a cluster is made in place in it, or once one
      // made apart is renamed into place.
      const lock = () => lockDataDir(options.dataDir, { waitMs: options.lockWaitMs, log: options.log });
      if (existsSync(options.dataDir)) unlock = await lock();
      try {
        await ensureCluster(options.dataDir);
        unlock ??= await lock();
        // PGlite makes its files readable and writable by anyone (0666): the folder keeps other
        // users of the host out, as PostgreSQL's own insists on for its data directory.
        await fs.chmod(options.dataDir, 0o700).catch(() => {});
      } catch (err) {
        await unlock?.();
        throw err;
      }
    }
    let pglite: PGlite | null = null;
    try {
      pglite = await openPglite(options.dataDir);
      const age = onDisk ? await oldestTemplateAge(pglite) : 0;
      if (age > (options.freezeTemplatesAfterAge ?? TEMPLATE_FREEZE_AGE)) {
        options.log?.info('db_templates_freezing', { age });
        const open = pglite;
        pglite = null;
        await open.close();
        await freezeTemplatesApart(options.dataDir);
        pglite = await openPglite(options.dataDir);
      }
    } catch (err) {
      // (Let go of what it opened, so that a start tried again here finds the folder free.)
      await pglite?.close().catch(() => {});
      await unlock?.();
      throw err;
    }
    const dialect = new PGliteDialect(pglite, { queue: options.queue });
    dialect.logNoticesTo(options.log ?? null);
    db = new Kysely<Database>({ dialect });
    executeEach = (statement, rows) => dialect.executeEach(statement, rows);
    kind = 'pglite';
    if (onDisk) {
      const guard = startDiskGuard({ dir: options.dataDir, ...disk, log: options.log });
      dialect.checkRoomWith((bytes) => guard.roomFor(bytes));
      diskRoomFor = (diskBytes) => guard.roomForDisk(diskBytes);
      diskGuard = guard;
    }
  }
  try {
    await withDeadline(Infinity, () => migrate(db));
  } catch (err) {
    diskGuard?.stop();
    await db.destroy();
    await unlock?.();
    throw err;
  }
  if (kind === 'pglite') {
    maintenance = startPgliteMaintenance(db, {
      ...defaultPgliteMaintenance,
      ...options.pgliteMaintenance,
      paused: () => diskGuard?.refusing ?? false,
      log: options.log,
    });
  }
  const close = async () => {
    diskGuard?.stop();
    await maintenance?.stop();
    await db.destroy();
    await unlock?.();
  };
  return { db, kind, executeEach, maintenance, diskRoomFor, close };
}

/** The staging folders this process is creating clusters in (see ensureCluster). */
const stagingHere = new Set<string>();

/** In a data folder, while a cluster is being created in place (see ensureCluster). */
const IN_PLACE_MARKER = '.spanwise-creating';

/**
 * Makes sure `dataDir` holds a PGlite cluster, creating one when it is missing or empty. It is
 * created beside it and renamed into place, so the folder never holds a half-made cluster (the
 * process killed mid-way, say), and of two processes starting at once one cluster wins whole.
 * Where that cannot be (a mount point, a volume root, a parent this process may not write to),
 * it is created in place under a marker, and a start that finds the marker clears what the
 * unfinished one left and creates it again. A folder that holds something else is refused.
 */

export async function ensureCluster(dataDir: string): Promise<void> {
  // A link to a folder elsewhere: the cluster goes where it points (rename would replace it),
  // which is made first if missing.
  if ((await fs.lstat(dataDir).catch(() => null))?.isSymbolicLink()) {
    await fs.mkdir(path.resolve(path.dirname(dataDir), await fs.readlink(dataDir)), { recursive: true });
  }
  dataDir = await fs.realpath(dataDir).catch(() => path.resolve(dataDir));
  const marker = path.join(dataDir, IN_PLACE_MARKER);
  if (existsSync(marker)) {
    // Created in place by a start that did not finish: what it left is cleared, and made again.
    for (const name of await fs.readdir(dataDir)) {
      if (name !== 'lost+found' && name !== IN_PLACE_MARKER && !isLockEntry(name)) await fs.rm(path.join(dataDir, name), { recursive: true, force: true });
    }
    await fs.rm(marker);
  }
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) return;
  const entries = await fs.readdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  // (A freshly made ext4 volume holds lost+found; this process's lock is there already.)
  if (entries && entries.some((name) => name !== 'lost+found' && !isLockEntry(name))) {
    throw new Error(`${dataDir} is not empty but holds no database (no PG_VERSION): move it aside, or set DATA_DIR to another folder`);
  }
  /** In the folder itself, marked meanwhile so that a start cut short is cleared by the next. */
  const inPlace = async () => {
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(marker, `${process.pid}\n`);
    await createClusterApart(dataDir);
    await fs.rm(marker);
  };
  // A volume's root cannot be replaced, nor a folder that holds the lock.
  if (entries?.some((name) => name === 'lost+found' || isLockEntry(name))) return inPlace();
  const parent = path.dirname(dataDir);
  const base = path.basename(dataDir);
  await fs.mkdir(parent, { recursive: true });
  // Left by a process killed while creating one: its pid no longer runs, or is this process's
  // and the folder not one of its own (a container's first start killed: pid 1 each time).
  const leftovers = await fs.readdir(parent).catch(() => [] as string[]);
  for (const name of leftovers) {
    const pid = name.startsWith(`${base}.creating-`) ? Number(/^(\d+)-[0-9a-f]{8}$/.exec(name.slice(base.length + 10))?.[1]) : NaN;
    const leftover = path.join(parent, name);
    if (Number.isInteger(pid) && !stagingHere.has(leftover) && (pid === process.pid || !running(pid))) await fs.rm(leftover, { recursive: true, force: true });
  }
  const staging = path.join(parent, `${base}.creating-${process.pid}-${randomUUID().slice(0, 8)}`);
  stagingHere.add(staging);
  try {
    await fs.mkdir(staging);
  } catch (err) {
    // A parent this process may not write to (a container's root-owned app folder, say).
    if (['EACCES', 'EPERM', 'EROFS'].includes((err as NodeJS.ErrnoException).code ?? '')) return inPlace();
    throw err;
  }
  try {
    await createClusterApart(staging);
    await fs.rename(staging, dataDir); // onto a missing or empty folder
    stagingHere.delete(staging);
  } catch (err) {
    stagingHere.delete(staging);
    await fs.rm(staging, { recursive: true, force: true });
    if (existsSync(path.join(dataDir, 'PG_VERSION'))) return; // another process got there first
    const code = (err as NodeJS.ErrnoException).code;
    // A mount point (a container's volume) cannot be replaced, nor renamed onto across devices:
    // created in place there.
    if (code === 'EBUSY' || code === 'EXDEV') return inPlace();
    throw err;
  }
}


/**
 * Creates a PGlite cluster in `dataDir` on a worker thread of its own. Creating one (initdb)
 * grows PGlite's WebAssembly memory to ~700 MB, which a thread never gives back; the worker's
 * goes when it ends, and the server then opens the ready cluster, staying near 400 MB instead
 * of 800 MB for its whole life after a first start.
 */
async function createClusterApart(dataDir: string): Promise<void> {
  await runApart('(pg) => pg.close()', dataDir, `creating the PGlite database in ${dataDir}`);
}

/**
 * VACUUM FREEZE in the template databases, each opened on a worker thread of its own (PGlite
 * opens one database at a time). Postgres stops taking writes ~2.1 billion transactions after
 * the oldest database in the cluster was last frozen, templates included; a PostgreSQL server's
 * autovacuum freezes them, PGlite's upkeep reaches only the database it has open.
 */
async function freezeTemplatesApart(dataDir: string): Promise<void> {
  for (const database of ['template1', 'template0']) {
    await runApart("(pg) => pg.exec('VACUUM FREEZE').then(() => pg.close())", dataDir, `freezing ${database} in ${dataDir}`, { database });
  }
}

/** Opens PGlite on `dataDir` on a worker thread, runs `then` (the source of a function of it), and ends. */
async function runApart(then: string, dataDir: string, what: string, pgliteOptions: object = {}): Promise<void> {
  const module = pathToFileURL(createRequire(import.meta.url).resolve('@electric-sql/pglite')).href;
  // Dynamic imports only: an eval worker runs as CommonJS, or as a module under --input-type.
  const worker = new Worker(
    `Promise.all([import('node:worker_threads'), import(${JSON.stringify(module)})])
       .then(([{ workerData }, { PGlite }]) => PGlite.create(workerData.dataDir, workerData.pgliteOptions))
       .then(${then});`,
    { eval: true, workerData: { dataDir, pgliteOptions } },
  );
  await new Promise<void>((resolve, reject) => {
    worker.once('error', (err) => reject(new Error(`${what} failed: ${err.message}`)));
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${what} failed (worker exit ${code})`))));
  });
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
