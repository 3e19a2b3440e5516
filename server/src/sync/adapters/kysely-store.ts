/**
 * SyncStore over Kysely (PGlite or Postgres): one `sync_updates` row per received update,
 * compacted into one snapshot row (the state of a doc the rows were applied to) once a room's
 * log passes a threshold.
 *
 * Compaction reads the log, merges it on a worker thread, and replaces the rows it merged in one
 * short transaction under a per-room advisory lock: only one process replaces a room's rows at a
 * time, one that merged rows another has replaced since gives way, and a crash mid-way leaves
 * the log as it was.
 */
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Database } from '../../db/types.ts';
import type { OpenDatabase, PreparedStatement } from '../../db/database.ts';
import { DEFAULT_STORE_WRITE_DEADLINE_MS, withDeadline } from '../../db/deadlines.ts';
import { isDiskFull, StorageFullError, withoutQueueLimits } from '../../db/pglite-dialect.ts';
import type { StoredUpdate, SyncLogger, SyncObserver, SyncStore } from '../types.ts';
import { logMerger, type LogMerger } from './log-merger.ts';
import { waitAtMost } from '../wait-at-most.ts';
import { errorKindOfText } from '../error-text.ts';

export interface KyselyStoreOptions {
  /** A room loaded or unloaded with a log past this many rows (or bytes) is compacted. */
  compactAfterRows: number;
  compactAfterBytes?: number;
  /**
   * While a room is open, compaction waits until its log is this many times past the
   * threshold: compaction costs time proportional to the document (on a worker thread, but
   * the reads and the snapshot's write are the database's), so it is kept off busy rooms'
   * hot path. Default 10.
   */
  openRoomFactor?: number;
  /**
   * Runs a prepared statement once per row in one transaction by a quicker path than
   * Kysely's, when the database has one (OpenDatabase.executeEach on PGlite): every append
   * goes through it.
   */
  executeEach?: OpenDatabase['executeEach'];
  /**
   * Embedded PGlite on disk (OpenDatabase.diskRoomFor): asked before a compaction's write, whose
   * DELETE may write far more WAL than its parameters tell the database's own check.
   */
  diskRoomFor?: OpenDatabase['diskRoomFor'];
  /**
   * On PostgreSQL, how long an append's query may go unanswered before it is cancelled (and,
   * if it does not end then, abandoned with its connection) and the append fails: the room
   * tries again. See withDeadline. Default 15 s.
   */
  writeDeadlineMs?: number;
  log: SyncLogger;
  /** Merges logs off the event loop; the process's shared worker by default. */
  merger?: Pick<LogMerger, 'merge'>;
  /** Counts failed compactions (`compaction_failed`) and updates compaction set aside (`set_aside`). */
  observer?: SyncObserver;
  /**
   * Other processes share the database (PostgreSQL, several instances):
   * - a compaction first takes the room's lease, an advisory lock held by a transaction of its
   *   own while it reads, merges and writes, and gives way at once when another process holds
   *   it, so only one process does that work for a room at a time (the write checks what it
   *   replaces either way). Not on PGlite, whose one connection the lease's transaction would
   *   hold (its one process compacts one room at a time anyway);
   * - each process counts a room's log from its own appends, so past the threshold it counts
   *   it again from the database, once for each threshold's worth of its own (others' rows
   *   would otherwise put compaction off until the log is many times past it).
   */
  sharedDatabase?: boolean;
}

interface PendingAppend {
  room: string;
  updates: readonly Uint8Array[];
  resolve(): void;
  reject(err: unknown): void;
}

const { escapeLiteral } = pg;

/** Rooms whose failed compaction is remembered at most (the oldest forgotten first). */
const FAILED_ROOMS_KEPT = 10_000;

/** Rows per INSERT. */
const MAX_ROWS_PER_INSERT = 5_000;
/** WAL a deleted row may write at worst: a full image of its page (BLCKSZ), and its own record. */
export const DELETED_ROW_WAL_BYTES = 8192 + 64;
/** Bytes of updates per literal INSERT (twice that in hex): keeps a statement's text modest. */
const MAX_LITERAL_BYTES_PER_INSERT = 4 * 1024 * 1024;
/** An update larger than this goes as a bound parameter, in a statement of its own. */
const MAX_LITERAL_UPDATE_BYTES = 256 * 1024;

type Row = { room: string; data: Uint8Array };

/** Where warmUp writes: not a room name any layer has (see parseRoom), nor one a socket may open. */
export const WARM_UP_ROOM = 'spanwise:warm-up';

/** The append's INSERT where the database prepares it (PGlite): text and bytes, bound. */
const INSERT_UPDATE: PreparedStatement = {
  name: 'spanwise_sync_insert',
  text: 'insert into sync_updates (room, data) values ($1, $2)',
  types: [25, 17], // text, bytea
};

/**
 * The INSERT where the database has no prepared path (PostgreSQL), with its values written
 * into the statement as literals: the room through pg's escapeLiteral, the bytes as hex digits
 * decoded by Postgres. A statement without parameters goes as one simple-protocol Query.
 * (PGlite takes INSERT_UPDATE through executeEach: a Query there costs Postgres' parser and
 * planner every time, ~0.15 ms of a ~0.4 ms insert at p50 in a microbenchmark.)
 */
function literalInsert(rows: readonly Row[]): string {
  const values = rows.map(({ room, data }) => {
    const hex = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
    return `(${escapeLiteral(room)}, decode('${hex}', 'hex'))`;
  });
  return `insert into sync_updates (room, data) values ${values.join(', ')}`;
}

type Statement = { literal: string } | { row: Row };

/**
 * Rows in statements, in order: runs of small rows as literals, each large row on its own.
 * Built one at a time as they are run, so a large backlog is not held as text all at once.
 */
function* insertStatements(rows: readonly Row[]): Generator<Statement> {
  let start = 0;
  while (start < rows.length) {
    const first = rows[start]!;
    if (first.data.byteLength > MAX_LITERAL_UPDATE_BYTES) {
      yield { row: first };
      start++;
      continue;
    }
    let end = start;
    let bytes = 0;
    while (end < rows.length && end - start < MAX_ROWS_PER_INSERT) {
      const size = rows[end]!.data.byteLength;
      if (size > MAX_LITERAL_UPDATE_BYTES || (end > start && bytes + size > MAX_LITERAL_BYTES_PER_INSERT)) break;
      bytes += size;
      end++;
    }
    yield { literal: literalInsert(rows.slice(start, end)) };
    start = end;
  }
}

/**
 * Whether the database itself answered with this error (a SQLSTATE), other than to say the
 * connection is gone or refused (classes 08 and 57): then writing less may go through, where a
 * database that does not answer would only make every smaller write wait for it in turn.
 */
function answeredByDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && !code.startsWith('57');
}

/** Characters of an error kept with a row set aside. */
const MAX_ERROR_CHARS = 2_000;

/**
 * An error's text as a text column takes it: Yjs' JSON errors quote the bytes they could not
 * read, and PostgreSQL refuses a NUL in text, which would fail the set-aside and with it the
 * room's load. NULs become U+FFFD; the text is cut to MAX_ERROR_CHARS.
 */
function storableError(error: string): string {
  const clean = error.replaceAll('\u0000', '\uFFFD');
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS)}…` : clean;
}

/** Rows per query when a room's log is read. */
export const READ_RUN_ROWS = 1_000;

/** A row of a room's log as it is read: `version` is its xmin (the inserting transaction). */
interface LogRow {
  id: string;
  data: Uint8Array;
  version: string;
  kind: 'update' | 'snapshot';
}

/**
 * A room's rows in id order, read in runs of READ_RUN_ROWS (at most `runs` of them). Outside a
 * transaction the connection is free between runs for other rooms' appends, and a row another
 * instance commits meanwhile with an id below a run already read is left out and stays in the
 * log (where loading applies it as ever: Yjs takes updates in any order).
 */
async function readRuns(db: Kysely<Database>, room: string, runs: number): Promise<LogRow[]> {
  const rows: LogRow[] = [];
  for (let n = 0; n < runs; n++) {
    let query = db.selectFrom('sync_updates').select(['id', 'data', 'kind', sql<string>`xmin::text`.as('version')]).where('room', '=', room);
    if (rows.length > 0) query = query.where('id', '>', rows[rows.length - 1]!.id);
    const run = await query.orderBy('id').limit(READ_RUN_ROWS).execute();
    rows.push(...run);
    if (run.length < READ_RUN_ROWS) break;
  }
  return rows;
}

/**
 * A room's whole log, as one moment saw it, read in runs of READ_RUN_ROWS so that no one query
 * takes longer than its deadline however long the log (one whose compaction keeps failing grows
 * for good). A log longer than one run is read again, from its start, inside one repeatable-read
 * transaction: between runs read on their own, another process could compact the room, putting
 * its snapshot in the place of a row already passed, and the rows it replaced would be missed.
 * (That transaction holds a connection, and on PGlite its only one, until the read ends, as the
 * single query it replaces did.)
 */
export async function readRoomLog(db: Kysely<Database>, room: string): Promise<LogRow[]> {
  const rows = await readRuns(db, room, 1);
  if (rows.length < READ_RUN_ROWS) return rows;
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => readRuns(trx, room, Infinity));
}

/** Thrown inside compaction's transaction when another process compacted the rows first. */
class CompactedElsewhere extends Error {}

/**
 * A room's log: its rows, and the bytes of its updates. A snapshot's are left out: it is what
 * the last compaction made, and counted, a document larger than COMPACT_AFTER_BYTES would be
 * merged and written again whole at every load and unload that found one row more.
 */
interface LogSize {
  rows: number;
  bytes: number;
}

export class KyselyStore implements SyncStore {
  /** Each room's log size as this process last saw it (after a load, append or compaction). */
  readonly #size = new Map<string, LogSize>();
  /** Each open room's log size as last counted from the database while it grew (sharedDatabase). */
  readonly #countedAt = new Map<string, LogSize>();
  readonly #compacting = new Set<string>();
  /** Compactions run one after another, on this chain. */
  #compactions: Promise<void> = Promise.resolve();
  /** Closed: no more compactions are queued. */
  #closed = false;
  /** Closed and done waiting: queued compactions not yet begun are dropped. */
  #abandoned = false;
  /**
   * Rooms whose last compaction failed, with their log size then: tried again only once another
   * threshold's worth has come in — also across unloads, or a room whose log cannot be compacted
   * (see merge-log.mjs) would be read and merged in full at every load and unload. The oldest
   * are forgotten past FAILED_ROOMS_KEPT.
   */
  readonly #failedAt = new Map<string, LogSize>();
  /** Appends waiting for the next write: every room's, written in one transaction. */
  #queued: PendingAppend[] = [];
  #writing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: KyselyStoreOptions,
  ) {}

  /**
   * On PGlite, commits `commits` rows one at a time, as appends do, into a room no layer can
   * have, then deletes them. V8 compiles PGlite's WebAssembly in tiers, the optimizing one only
   * for functions that have run enough: until a commit's have, 1–2% of commits take 1–4 ms
   * instead of ~0.1 ms (measured), for the first tens of thousands after every start. Better
   * spent before the first socket than on its edits (10,000 take some 0.5 s). Nothing on
   * PostgreSQL. Rows an earlier start left (it died midway, or the disk was short) are deleted
   * first, with none made too; the rows are deleted however the commits went.
   */
  async warmUp(commits: number): Promise<void> {
    if (!this.options.executeEach) return;
    const clear = () => this.db.deleteFrom('sync_updates').where('room', '=', WARM_UP_ROOM).execute();
    await clear();
    if (commits <= 0) return;
    const data = new Uint8Array(120);
    try {
      for (let i = 0; i < commits; i++) await this.options.executeEach(INSERT_UPDATE, [[WARM_UP_ROOM, data]]);
    } finally {
      await clear();
    }
  }

  async load(room: string, options: { reloading?: boolean } = {}): Promise<StoredUpdate[]> {
    const rows = await readRoomLog(this.db, room);
    const size = { rows: rows.length, bytes: rows.reduce((n, r) => n + (r.kind === 'snapshot' ? 0 : r.data.byteLength), 0) };
    this.#size.set(room, size);
    // Loaded again while open (the bus lost track of it: a Redis restart reloads every room), it
    // is an open room, and waits as long as one (openRoomFactor), not compacted at each reload.
    const factor = options.reloading ? (this.options.openRoomFactor ?? 10) : 1;
    if (this.#pastThreshold(size, factor) && this.#grownSinceFailure(room, size)) this.#compactSoon(room, size);
    return rows.map((r) => ({ id: String(r.id), data: r.data, version: r.version }));
  }

  /**
   * Group commit across rooms: appends that arrive while a write is under way (or in the same
   * tick) are written together, in one transaction; each caller learns the outcome of its own.
   */
  append(room: string, updates: readonly Uint8Array[]): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#queued.push({ room, updates, resolve, reject });
      if (!this.#writing) {
        this.#writing = true;
        setImmediate(() => void this.#writeQueued());
      }
    });
  }

  async #writeQueued(): Promise<void> {
    while (this.#queued.length > 0) {
      const batch = this.#queued;
      this.#queued = [];
      try {
        await this.#write(batch);
      } catch (err) {
        const rooms = [...new Set(batch.map((a) => a.room))];
        if (rooms.length === 1 || !answeredByDatabase(err)) {
          for (const a of batch) a.reject(err);
          continue;
        }
        // The database refused the batch (it did not fail to answer): one room's rows may be
        // to blame, so each room is written on its own and learns its own outcome.
        for (const room of rooms) {
          const own = batch.filter((a) => a.room === room);
          try {
            await this.#write(own);
          } catch (roomErr) {
            for (const a of own) a.reject(roomErr);
            continue;
          }
          this.#wrote(own);
        }
        continue;
      }
      this.#wrote(batch);
    }
    this.#writing = false;
  }

  /** Every row of these appends, in one transaction. */
  async #write(appends: readonly PendingAppend[]): Promise<void> {
    if (this.options.executeEach) {
      await this.options.executeEach(INSERT_UPDATE, appends.flatMap((a) => a.updates.map((data) => [a.room, data])));
    } else {
      // (A write abandoned may yet have committed, its answer lost: the room writes it again,
      // and a Yjs update applied twice is applied once.)
      await withDeadline(this.options.writeDeadlineMs ?? DEFAULT_STORE_WRITE_DEADLINE_MS, () =>
        this.#insert(appends.flatMap((a) => a.updates.map((data) => ({ room: a.room, data })))),
      );
    }
  }

  #wrote(appends: readonly PendingAppend[]): void {
    for (const a of appends) {
      this.#grew(a.room, a.updates);
      a.resolve();
    }
  }

  /** The rows in as few INSERTs as fit, in one transaction when there are several. */
  async #insert(rows: readonly Row[]): Promise<void> {
    const statements = insertStatements(rows);
    const first = statements.next();
    const second = statements.next();
    if (first.done) return;
    if (second.done) {
      await this.#run(this.db, first.value);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      await this.#run(trx, first.value);
      await this.#run(trx, second.value);
      for (const statement of statements) await this.#run(trx, statement);
    });
  }

  #run(on: Kysely<Database>, statement: Statement): Promise<unknown> {
    if ('row' in statement) return on.insertInto('sync_updates').values(statement.row).execute();
    return sql.raw(statement.literal).execute(on);
  }

  #grew(room: string, updates: readonly Uint8Array[]): void {
    const was = this.#size.get(room) ?? { rows: 0, bytes: 0 };
    const size = { rows: was.rows + updates.length, bytes: was.bytes + updates.reduce((n, u) => n + u.byteLength, 0) };
    this.#size.set(room, size);
    const factor = this.options.openRoomFactor ?? 10;
    if (this.#pastThreshold(size, factor)) {
      if (this.#grownSinceFailure(room, size)) this.#compactSoon(room, size);
    } else if (this.options.sharedDatabase && this.#pastThreshold(size, 1) && this.#recountDue(room, size)) {
      // Others' rows count too (see sharedDatabase).
      this.#countedAt.set(room, size);
      this.#recount(room).then(
        () => {
          const now = this.#size.get(room);
          if (!now) return;
          this.#countedAt.set(room, now);
          if (this.#pastThreshold(now, factor) && this.#grownSinceFailure(room, now)) this.#compactSoon(room, now);
        },
        () => {}, // (only bookkeeping: tried again a threshold's worth later)
      );
    }
  }

  /** Whether a threshold's worth of rows or bytes has been appended here since the room's log was last counted (or it shrank). */
  #recountDue(room: string, size: LogSize): boolean {
    const last = this.#countedAt.get(room);
    if (!last || size.rows < last.rows) return true;
    return size.rows >= last.rows + this.options.compactAfterRows || size.bytes >= last.bytes + (this.options.compactAfterBytes ?? Infinity);
  }

  /** After a failure, not again at every append, load or unload: once another threshold's worth has come in. */
  #grownSinceFailure(room: string, size: LogSize): boolean {
    const failed = this.#failedAt.get(room);
    if (!failed) return true;
    if (size.rows < failed.rows) {
      // The log shrank since (compacted by another instance): that failure says nothing now.
      this.#failedAt.delete(room);
      return true;
    }
    return size.rows >= failed.rows + this.options.compactAfterRows || size.bytes >= failed.bytes + (this.options.compactAfterBytes ?? Infinity);
  }

  #pastThreshold(size: LogSize, factor: number): boolean {
    const maxBytes = (this.options.compactAfterBytes ?? Infinity) * factor;
    return size.rows >= 2 && (size.rows >= this.options.compactAfterRows * factor || size.bytes >= maxBytes);
  }

  /** The room was unloaded here: compact its log if it is past the threshold, then forget it. */
  release(room: string): void {
    const size = this.#size.get(room);
    this.#size.delete(room);
    this.#countedAt.delete(room);
    if (size && this.#pastThreshold(size, 1) && this.#grownSinceFailure(room, size)) this.#compactSoon(room, size);
  }

  async setAside(room: string, id: string, error: string, version?: string): Promise<boolean> {
    // Only the row read (by its version: a snapshot too, which would otherwise fail every load
    // of the room), or without one only an update: a compaction elsewhere may have given its id
    // to a snapshot since, even between two statements of one transaction (read committed), so
    // one statement decides.
    return this.db.transaction().execute((trx) => this.#quarantine(trx, room, id, error, version === undefined ? { kind: 'update' } : { version }));
  }

  /**
   * Moves one row to sync_quarantine with its error, in the caller's transaction: only if it is
   * still of `kind`, or still the very row that was read (`version`, its xmin), when given.
   * Deleted first, and kept with what the delete returned, so a row that is not there (or not
   * that one any more) is neither quarantined nor deleted. Returns whether it was.
   */
  async #quarantine(trx: Kysely<Database>, room: string, id: string, error: string, only: { kind?: 'update'; version?: string }): Promise<boolean> {
    let remove = trx.deleteFrom('sync_updates').where('id', '=', id).where('room', '=', room);
    if (only.kind) remove = remove.where('kind', '=', only.kind);
    if (only.version) remove = remove.where(sql<string>`xmin::text`, '=', only.version);
    const row = await remove.returning('data').executeTakeFirst();
    if (row) await trx.insertInto('sync_quarantine').values({ room, data: row.data, error: storableError(error) }).execute();
    return row !== undefined;
  }

  /** Puts a room's next compaction off until another threshold's worth has come in since `size`. */
  #putOff(room: string, size: LogSize): void {
    this.#failedAt.delete(room);
    this.#failedAt.set(room, size);
    if (this.#failedAt.size > FAILED_ROOMS_KEPT) this.#failedAt.delete(this.#failedAt.keys().next().value!);
  }

  /** Compacts a room in the background, one room at a time (each holds its whole log meanwhile). */
  #compactSoon(room: string, askedAt: LogSize): void {
    if (this.#compacting.has(room) || this.#closed) return;
    this.#compacting.add(room);
    const run = async () => {
      if (this.#abandoned) return;
      try {
        // Another process compacting it: tried again once another threshold's worth has come in
        // (or the log is found shrunk), not at each append meanwhile.
        if ((await this.#compactLeased(room)) === 'leased elsewhere') this.#putOff(room, askedAt);
        else this.#failedAt.delete(room);
      } catch (err) {
        // At the size it was asked at: what came in while it ran counts toward the next try.
        this.#putOff(room, askedAt);
        if (isDiskFull(err)) {
          // The disk is full (the database's own error, or the embedded one's reserve): not a
          // fault of compaction's; it is tried again further on, as after any failure.
          this.options.log.warn('sync_compaction_deferred', { room, reason: 'disk_full' });
        } else {
          this.options.observer?.error?.('compaction_failed');
          this.options.log.error('sync_compaction_failed', { room, error: String(err) });
        }
      } finally {
        this.#compacting.delete(room);
      }
    };
    // (Nothing one run throws may stop the ones after it. However long it waits for the
    // database: it may be asked for from a request's work, as a member's removal closes the
    // last socket of a room, and refused as busy it would not be tried again for a while.)
    this.#compactions = this.#compactions.then(() => withoutQueueLimits(run)).catch(() => {});
  }

  /**
   * No compaction is asked for from now on; resolves once those under way or queued have ended
   * (rooms unloaded on the way out compact then), or after `waitMs`, when the ones not yet begun
   * are dropped — the rooms compact at their next load — so the database can be closed.
   */
  async close(waitMs = 10_000): Promise<void> {
    this.#closed = true;
    await waitAtMost(this.#compactions, waitMs);
    this.#abandoned = true;
  }

  /**
   * Merges a room's rows into one snapshot row; returns how many rows it replaced (0 when
   * another process compacted them first, or is compacting them: see `sharedDatabase`). The
   * rows are read in runs and merged on a worker thread, so neither the event loop nor the
   * database connection (PGlite's only one) is held while the whole document is rebuilt; then
   * one short transaction, under the room's advisory lock, checks that every row merged is
   * still there as it was read, deletes them and writes the snapshot.
   */
  async compact(room: string): Promise<number> {
    const replaced = await this.#compactLeased(room);
    return replaced === 'leased elsewhere' ? 0 : replaced;
  }

  /** compact(), under the room's lease when the database is shared (see `sharedDatabase`). */
  async #compactLeased(room: string): Promise<number | 'leased elsewhere'> {
    if (!this.options.sharedDatabase) return this.#compact(room);
    const lease = `spanwise-compact-lease:${room}`;
    let replaced: number | undefined;
    // (A transaction's lock: whatever happens, it goes with the transaction, or its connection.
    // Read committed whatever the database's default, so it holds no snapshot while it waits.)
    const outcome = await this.db
      .transaction()
      .setIsolationLevel('read committed')
      .execute(async (trx) => {
        const { rows } = await sql<{ leased: boolean }>`select pg_try_advisory_xact_lock(hashtext(${lease})) as leased`.execute(trx);
        if (!rows[0]?.leased) return 'leased elsewhere' as const;
        replaced = await this.#compact(room);
        return replaced;
      })
      .catch((err: unknown) => {
        // Compacted, and only the lease's own end failed (its connection cut meanwhile, say):
        // the lock went with it, and the compaction stands.
        if (replaced !== undefined) return replaced;
        throw err;
      });
    if (outcome === 'leased elsewhere') await this.#recount(room).catch(() => {}); // (as when it gives way at the write)
    return outcome;
  }

  async #compact(room: string): Promise<number> {
    let rows = await readRuns(this.db, room, Infinity);
    if (rows.length < 2) return 0;
    const { merged, bad: badIndexes } = await (this.options.merger ?? logMerger).merge(rows.map((r) => r.data));
    const bad = badIndexes.map(({ index, error }) => ({ id: rows[index]!.id, version: rows[index]!.version, error }));
    const badIds = new Set(bad.map((b) => b.id));
    const good = rows.filter((r) => !badIds.has(r.id)).map(({ id, version }) => ({ id, version }));
    rows = []; // (the log's bytes are not needed any more)
    // The first change to a page after a checkpoint writes the whole page to the WAL, and one
    // room's rows lie on pages shared with other rooms': deleting them can write a page per row
    // (5,000 rows wrote 36 MB), which PGlite out of disk mid-WAL would not survive. Put off like
    // any write the disk has no room for (see #putOff).
    const reason = this.options.diskRoomFor?.(good.length * DELETED_ROW_WAL_BYTES) ?? null;
    if (reason !== null) throw new StorageFullError(reason);
    const replaced = await this.db
      .transaction()
      .execute(async (trx) => {
        // Never waits on another instance's compaction of the room: one holding the lock is
        // replacing these rows now (or is frozen mid-way, and waiting would hold this store's
        // compactions and a connection for as long), so this one gives way. Nor on a row lock.
        await sql`set local lock_timeout = '10s'`.execute(trx);
        const { rows: locked } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(${'spanwise-compact:' + room})) as locked`.execute(trx);
        if (!locked[0]?.locked) throw new CompactedElsewhere();
        // Only the very rows read (a snapshot too, when it no longer loads): another process's
        // snapshot may have taken a bad row's id since.
        const setAside: typeof bad = [];
        for (const b of bad) if (await this.#quarantine(trx, room, b.id, b.error, { version: b.version })) setAside.push(b);
        if (good.length < 2) return { rows: 0, setAside };
        const goodIds = good.map((r) => r.id);
        // Delete what was merged, by id and version: rows other instances add meanwhile stay.
        // Every one of them must still be there as it was read. A compaction elsewhere since has
        // deleted some, or put its snapshot in the place of the first (an id alone would not
        // tell: with rows committed out of id order, the other rows of that snapshot may be
        // ones this merge never saw); then this one gives way, and its transaction rolls back.
        const [deleted] = await trx
          .deleteFrom('sync_updates')
          .where('room', '=', room)
          .where(sql<boolean>`(id, xmin::text) in (select * from unnest(${goodIds}::bigint[], ${good.map((r) => r.version)}::text[]))`)
          .execute();
        if (deleted?.numDeletedRows !== BigInt(goodIds.length)) throw new CompactedElsewhere();
        // In the place of the first row it replaces, so it loads before any row stored meanwhile
        // (by another connection or instance) that may build on what it holds.
        await sql`insert into sync_updates (id, room, data, kind) overriding system value
          values (${goodIds[0]}, ${room}, ${merged}, 'snapshot')`.execute(trx);
        this.options.log.info('sync_compacted', { room, rows: goodIds.length, upToId: String(goodIds[goodIds.length - 1]), bytes: merged.byteLength });
        return { rows: goodIds.length, setAside };
      })
      .catch((err: unknown) => {
        if (err instanceof CompactedElsewhere) return null;
        throw err;
      });
    if (!replaced) {
      // What this instance knew of the log's size is out of date: count it again.
      await this.#recount(room).catch(() => {}); // (only bookkeeping: the next append tries again)
      return 0;
    }
    for (const b of replaced.setAside) {
      this.options.observer?.error?.('set_aside');
      this.options.log.error('sync_update_set_aside', { room, updateId: String(b.id), error: errorKindOfText(b.error) });
    }
    // Counted again rather than worked out: a room loaded here while this ran (unloaded, then
    // opened again) may have read the log after this commit, and would be counted down twice.
    // (Bookkeeping only: uncounted, it is counted afresh at the room's next load.)
    if (replaced.rows > 0 && this.#size.has(room)) await this.#recount(room).catch(() => this.#size.delete(room));
    return replaced.rows;
  }

  /** Sets a room's log size (while it is open here) from the database. */
  async #recount(room: string): Promise<void> {
    const row = await this.db
      .selectFrom('sync_updates')
      .select([sql<string>`count(*)`.as('rows'), sql<string>`coalesce(sum(octet_length(data)) filter (where kind = 'update'), 0)`.as('bytes')])
      .where('room', '=', room)
      .executeTakeFirst();
    if (row && this.#size.has(room)) this.#size.set(room, { rows: Number(row.rows), bytes: Number(row.bytes) });
  }
}
