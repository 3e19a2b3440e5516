/**
 * A Kysely dialect over embedded PGlite.
 *
 * PGlite is one Postgres session, so two transactions must never interleave on it: the driver
 * hands out its single connection under a mutex, which makes every query and every transaction
 * wait for the one before it (a pool of size one).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { protocol, type PGlite, type Results } from '@electric-sql/pglite';
import { logThrottle, type Logger } from '../log.ts';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

/**
 * Refused because PGlite's one connection is too much in demand: the query waited its limit
 * for its turn, or too many were already waiting. It never ran, and never will. (PostgreSQL's
 * pool says the same when every connection stayed taken: see `watchedPool` in database.ts.)
 */
export class DatabaseBusyError extends Error {
  readonly code = 'database_busy';
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'DatabaseBusyError';
  }
}

/** How long a query may wait for PGlite's connection, and how many may wait (see PGliteDialect). */
export interface QueueLimits {
  waitMs: number;
  maxWaiting: number;
}

/** As pg's pool here: a request waits at most 10 s for a connection (connectionTimeoutMillis). */
export const defaultQueueLimits: QueueLimits = { waitMs: 10_000, maxWaiting: 10_000 };

const limitedScope = new AsyncLocalStorage<Partial<QueueLimits>>();

/**
 * Runs `fn` so that the queries it makes through Kysely on PGlite are held to the queue limits,
 * or to `overrides` of them (the API runs each request so). Elsewhere a query waits its turn
 * however long it takes: the upkeep, compaction and room loads, which must not fail because
 * requests crowd the line.
 */
export const withQueueLimits = <T>(fn: () => T, overrides: Partial<QueueLimits> = {}): T => limitedScope.run(overrides, fn);

/** Runs `fn` free of the queue limits again: work a request must not leave half done. */
export const withoutQueueLimits = <T>(fn: () => T): T => limitedScope.exit(fn);

interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout | null;
  gaveUp: boolean;
}

/**
 * One holder at a time, the rest served in arrival order. A holder with limits gives up after
 * `waitMs` and is never served; one that finds `maxWaiting` already in line is refused at once.
 */
class Mutex {
  #held = false;
  /** The line, from `#head` on (an index, so that serving is O(1) however long it is). */
  #line: (Waiter | undefined)[] = [];
  #head = 0;
  /** Those in line that have not given up. */
  #waiting = 0;
  /** Those in line that have: passed over when reached, or cleared out once they are most of it. */
  #gaveUp = 0;

  /** Resolves with a release function once every earlier holder has released. */
  lock(limits?: QueueLimits): Promise<() => void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve(this.#releaser());
    }
    if (limits && this.#waiting >= limits.maxWaiting) {
      return Promise.reject(new DatabaseBusyError(`the database is busy: ${this.#waiting} queries are waiting`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { grant: resolve, timer: null, gaveUp: false };
      if (limits && Number.isFinite(limits.waitMs)) {
        waiter.timer = setTimeout(() => {
          // Left in line, to be passed over when its turn comes (holding nothing meanwhile); while
          // one holder keeps the connection long, those that gave up are cleared out as they pile up.
          waiter.gaveUp = true;
          waiter.grant = () => {};
          waiter.timer = null;
          this.#waiting--;
          if (++this.#gaveUp > 1024 && this.#gaveUp * 2 > this.#line.length - this.#head) {
            this.#line = this.#line.slice(this.#head).filter((w) => w !== undefined && !w.gaveUp);
            this.#head = 0;
            this.#gaveUp = 0;
          }
          reject(new DatabaseBusyError(`the database is busy: waited ${limits.waitMs} ms for a turn`));
        }, limits.waitMs);
      }
      this.#line.push(waiter);
      this.#waiting++;
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#handOn();
    };
  }

  #handOn(): void {
    while (this.#head < this.#line.length) {
      const next = this.#line[this.#head]!;
      this.#line[this.#head++] = undefined;
      if (this.#head === this.#line.length) {
        this.#line = [];
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#line.length) {
        this.#line = this.#line.slice(this.#head);
        this.#head = 0;
      }
      if (next.gaveUp) {
        this.#gaveUp--;
        continue;
      }
      if (next.timer) clearTimeout(next.timer);
      this.#waiting--;
      next.grant(this.#releaser());
      return;
    }
    this.#held = false;
  }
}

const BYTEA = 17;

/**
 * bytea in as a binary parameter and out through Buffer's hex codec. PGlite's own goes byte by
 * byte through arrays and strings: ~11 s to write a 32 MiB snapshot and ~1.7 s to read it back,
 * on the one connection every room's store waits for. Its wire-protocol writer sends a value
 * that is a byte view as a binary parameter, as pg's does a Buffer, so the serializer hands the
 * bytes on as they are (its type says string; a view is what the writer checks for): a 5 MB
 * snapshot then goes in in ~80 ms instead of ~190 ms as hex text Postgres must decode.
 */
const QUERY_OPTIONS = {
  rowMode: 'object',
  serializers: {
    [BYTEA]: (value: unknown): string => {
      if (!(value instanceof Uint8Array)) throw new Error('Invalid input for bytea type');
      return value as unknown as string;
    },
  },
  parsers: { [BYTEA]: (text: string) => Buffer.from(text.slice(2), 'hex') },
} as const;

/**
 * A write refused because the disk holding the database is nearly full (SQLSTATE 53100,
 * disk_full). PGlite that runs out of disk in the middle of writing its WAL does not fail: it
 * spins at full CPU inside WebAssembly for good, holding the event loop and so the whole server.
 */
export class StorageFullError extends Error {
  readonly code = '53100';
  constructor(reason: string) {
    super(reason);
    this.name = 'StorageFullError';
  }
}

/**
 * Statements that write nothing of their own (a transaction of reads begins and ends too); not
 * one that takes row locks, moves a sequence, or holds a second statement.
 */
const READ_ONLY = /^\s*(select|show|explain|begin|commit|rollback)\b/i;
const WRITES_ANYWAY = /\bfor\s+(update|no\s+key\s+update|share|key\s+share)\b|\b(nextval|setval)\s*\(|;\s*\S/i;
const readOnly = (text: string) => READ_ONLY.test(text) && !WRITES_ANYWAY.test(text) && !/^\s*explain\s+(\(|analy[sz]e)/i.test(text);

/** A notice or warning from Postgres, as PGlite passes it on. */
interface Notice {
  severity?: string;
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
}

/**
 * Logs Postgres' notices, each kind (severity, code and message, its numbers aside) at most once
 * a minute with how many were left out since: one given at every transaction (the wraparound
 * countdown is, with a number that changes each time) must not flood the log, nor hide another.
 */
class NoticeLog {
  log: Logger | null = null;
  readonly #throttle = logThrottle(60_000, {
    leftOut: (key, leftOut) => {
      const [severity, code, ...message] = key.split(':');
      const fields = { severity, code, message: message.join(':'), leftOut };
      if (severity === 'WARNING') this.log?.warn('db_notice', fields);
      else this.log?.debug('db_notice', fields);
    },
  });

  /** Called by PGlite from inside Postgres' output: it must not throw. */
  add(notice: Notice): void {
    try {
      this.#add(notice);
    } catch {
      // A notice not logged.
    }
  }

  #add(notice: Notice): void {
    if (!this.log) return;
    const severity = notice.severity ?? 'NOTICE';
    const pass = this.#throttle(`${severity}:${notice.code ?? ''}:${(notice.message ?? '').replace(/\d+/g, '#')}`);
    if (!pass) return;
    const fields = {
      severity,
      code: notice.code,
      message: notice.message,
      ...(notice.detail ? { detail: notice.detail } : {}),
      ...(notice.hint ? { hint: notice.hint } : {}),
      ...pass,
    };
    // Postgres' NOTICEs are chatter (a table that already exists, skipped); its WARNINGs are not.
    if (severity === 'WARNING') this.log.warn('db_notice', fields);
    else this.log.debug('db_notice', fields);
  }
}

/** Whether an error says the database's disk is full: a StorageFullError, or PostgreSQL's own. */
export const isDiskFull = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === '53100';

/** Shared by the dialect, its connection and `executeEach` (see checkRoomWith). */
interface WriteGate {
  /** Why a write of this many bytes of values may not go ahead now, or null. */
  roomFor: ((bytes: number) => string | null) | null;
}

/** Throws the StorageFullError a write of `bytes` of values meets, if any. */
function admit(gate: WriteGate, bytes: number): void {
  const reason = gate.roomFor?.(bytes) ?? null;
  if (reason !== null) throw new StorageFullError(reason);
}

const valueBytes = (values: readonly unknown[]): number =>
  values.reduce<number>((n, v) => n + (v instanceof Uint8Array ? v.byteLength : typeof v === 'string' ? Buffer.byteLength(v) : 8), 0);

/** What PGlite is asked with each query: QUERY_OPTIONS, and where its notices go. */
type QueryOptions = typeof QUERY_OPTIONS & { onNotice: (notice: Notice) => void };

class PGliteConnection implements DatabaseConnection {
  constructor(
    private readonly pg: PGlite,
    private readonly gate: WriteGate,
    private readonly options: QueryOptions,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!readOnly(query.sql)) admit(this.gate, valueBytes(query.parameters));
    // Without parameters, the simple protocol: one round into Postgres instead of five messages.
    const result =
      query.parameters.length === 0
        ? ((await this.pg.exec(query.sql, this.options)).at(-1) as Results<R>)
        : await this.pg.query<R>(query.sql, query.parameters as unknown[], this.options);
    return {
      rows: result.rows,
      numAffectedRows: result.affectedRows === undefined ? undefined : BigInt(result.affectedRows),
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported on PGlite');
  }
}

class PGliteDriver implements Driver {
  readonly #connection: PGliteConnection;
  readonly #mutex: Mutex;
  #release: (() => void) | null = null;

  constructor(
    private readonly pg: PGlite,
    mutex: Mutex,
    gate: WriteGate,
    options: QueryOptions,
    private readonly limits: QueueLimits,
  ) {
    this.#connection = new PGliteConnection(pg, gate, options);
    this.#mutex = mutex;
  }

  async init(): Promise<void> {
    await this.pg.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const scope = limitedScope.getStore();
    this.#release = await this.#mutex.lock(scope ? { ...this.limits, ...scope } : undefined);
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // (One session: transactions never overlap, but a read-only one must still refuse writes.
    // Written as `begin …`, which the disk guard lets through: it writes nothing of its own.)
    const isolation = settings.isolationLevel ? ` isolation level ${settings.isolationLevel}` : '';
    await connection.executeQuery(CompiledQuery.raw(`begin${isolation}${settings.accessMode ? ` ${settings.accessMode}` : ''}`));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  async destroy(): Promise<void> {
    const release = await this.#mutex.lock();
    try {
      if (!this.pg.closed) await this.pg.close();
    } finally {
      release();
    }
  }
}

/** A statement `executeEach` prepares once per session under `name`; `types` are type oids. */
export interface PreparedStatement {
  name: string;
  text: string;
  types: readonly number[];
}

/** A value for a prepared statement: text, or bytes (sent in binary). */
export type StatementParam = string | Uint8Array;

/** Values per message to PGlite: a large backlog goes in several, inside one transaction. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export class PGliteDialect implements Dialect {
  /** One lock for everything that reaches PGlite: Kysely's queries and `executeEach`. */
  readonly #mutex = new Mutex();
  /** Statements prepared in PGlite's session. */
  readonly #prepared = new Set<string>();
  readonly #gate: WriteGate = { roomFor: null };
  readonly #notices = new NoticeLog();
  readonly #queryOptions: QueryOptions = { ...QUERY_OPTIONS, onNotice: (n) => this.#notices.add(n) };
  readonly #protocolOptions = { syncToFs: false, onNotice: (n: Notice) => this.#notices.add(n) };

  readonly #limits: QueueLimits;

  /**
   * `queue`: inside `withQueueLimits` (an API request), a Kysely query or transaction waits at
   * most `waitMs` for the connection and is refused at once when `maxWaiting` already wait, with
   * a DatabaseBusyError, instead of piling up behind an overload for as long as it lasts and
   * running after its caller has gone. `executeEach` (the sync store, whose rooms bound what
   * they hold) and everything outside that scope wait their turn.
   */
  constructor(
    private readonly pg: PGlite,
    options: { queue?: Partial<QueueLimits> } = {},
  ) {
    this.#limits = { ...defaultQueueLimits, ...options.queue };
  }


  /**
   * Postgres' warnings (a wraparound coming, say) and notices go to `log` from now on (at warn
   * and debug), at most one line a minute for each severity and code; without it they go
   * nowhere, as PGlite has no server log.
   */
  logNoticesTo(log: Logger | null): void {
    this.#notices.log = log;
  }

  /**
   * From now on `roomFor` is asked before each statement that may write (each message of
   * `executeEach`) with the bytes of its values; a reason it gives is thrown as a
   * StorageFullError instead of the statement reaching PGlite. Reads always run.
   */
  checkRoomWith(roomFor: ((bytes: number) => string | null) | null): void {
    this.#gate.roomFor = roomFor;
  }

  /**
   * Runs one parameterised statement once for each row of values, all in one transaction,
   * under the same lock as Kysely's queries; throws Postgres' error, and then nothing of the
   * rows is kept. For the sync store's hot INSERT: the statement is parsed and planned once
   * per session (a named prepared statement), and each call is one wire-protocol message of
   * Bind and Execute per row plus a Sync, values in binary. That skips Kysely's and PGlite's
   * query layers and Postgres' parser and planner, which cost more than the insert itself.
   * No file sync is asked for: PGlite's Node filesystem writes through on every write.
   */
  async executeEach(statement: PreparedStatement, rows: readonly (readonly StatementParam[])[]): Promise<void> {
    if (rows.length === 0) return;
    const release = await this.#mutex.lock();
    try {
      const chunks = this.#chunks(statement, rows);
      if (chunks.length === 1) {
        // One message: Sync ends the implicit transaction its Executes run in.
        admit(this.#gate, chunks[0]!.bytes);
        await this.#send(statement, chunks[0]!.parts);
        return;
      }
      admit(this.#gate, chunks[0]!.bytes);
      await this.pg.execProtocol(protocol.serialize.query('begin'), this.#protocolOptions);
      try {
        for (const chunk of chunks) {
          admit(this.#gate, chunk.bytes); // (a throw rolls back what went before)
          await this.#send(statement, chunk.parts);
        }
        await this.pg.execProtocol(protocol.serialize.query('commit'), this.#protocolOptions);
      } catch (err) {
        await this.pg.execProtocol(protocol.serialize.query('rollback'), this.#protocolOptions).catch(() => {});
        throw err;
      }
    } finally {
      release();
    }
  }

  /** Bind + Execute per row, in runs of up to MAX_MESSAGE_BYTES of values (a larger row alone). */
  #chunks(statement: PreparedStatement, rows: readonly (readonly StatementParam[])[]): { parts: Uint8Array[]; bytes: number }[] {
    const chunks: { parts: Uint8Array[]; bytes: number }[] = [];
    let current: Uint8Array[] = [];
    let bytes = 0;
    for (const values of rows) {
      const size = valueBytes(values);
      if (current.length > 0 && bytes + size > MAX_MESSAGE_BYTES) {
        chunks.push({ parts: current, bytes });
        current = [];
        bytes = 0;
      }
      current.push(protocol.serialize.bind({ statement: statement.name, values: [...values] }), protocol.serialize.execute());
      bytes += size;
    }
    chunks.push({ parts: current, bytes });
    return chunks;
  }

  async #send(statement: PreparedStatement, parts: Uint8Array[]): Promise<void> {
    // Prepared once per session. After an error it is prepared again, closed first: Close of a
    // statement that does not exist is no error, and one whose Parse went through may.
    const prepare = !this.#prepared.has(statement.name);
    const head = prepare
      ? [
          protocol.serialize.close({ type: 'S', name: statement.name }),
          protocol.serialize.parse({ name: statement.name, text: statement.text, types: [...statement.types] }),
        ]
      : [];
    const message = Buffer.concat([...head, ...parts, protocol.serialize.sync()]);
    try {
      await this.pg.execProtocol(message, this.#protocolOptions);
      this.#prepared.add(statement.name);
    } catch (err) {
      this.#prepared.delete(statement.name);
      throw err;
    }
  }

  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pg, this.#mutex, this.#gate, this.#queryOptions, this.#limits);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}
