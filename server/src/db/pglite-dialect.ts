/**
 * A Kysely dialect over embedded PGlite.
 *
 * PGlite is one Postgres session, so two transactions must never interleave on it: the driver
 * hands out its single connection under a mutex, which makes every query and every transaction
 * wait for the one before it (a pool of size one).
 */
import { protocol, type PGlite, type Results } from '@electric-sql/pglite';
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
} from 'kysely';

class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Resolves with a release function once every earlier holder has released. */
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const acquired = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return acquired;
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly pg: PGlite) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    // Without parameters, the simple protocol: one round into Postgres instead of five messages.
    const result =
      query.parameters.length === 0
        ? ((await this.pg.exec(query.sql, { rowMode: 'object' })).at(-1) as Results<R>)
        : await this.pg.query<R>(query.sql, query.parameters as unknown[], { rowMode: 'object' });
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
  ) {
    this.#connection = new PGliteConnection(pg);
    this.#mutex = mutex;
  }

  async init(): Promise<void> {
    await this.pg.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    this.#release = await this.#mutex.lock();
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
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

export class PGliteDialect implements Dialect {
  /** One lock for everything that reaches PGlite: Kysely's queries and `execute`. */
  readonly #mutex = new Mutex();

  constructor(private readonly pg: PGlite) {}

  /**
   * Runs SQL without parameters (one statement, or several as one implicit transaction) as a
   * single wire-protocol Query message, under the same lock as Kysely's queries; throws
   * Postgres' error. For the sync store's hot INSERT: it skips Kysely's and PGlite's query
   * layers (their locks, promise hops and result parsing), which cost as much as the insert.
   * No file sync is asked for: PGlite's Node filesystem writes through on every write.
   */
  async execute(sqlText: string): Promise<void> {
    const release = await this.#mutex.lock();
    try {
      await this.pg.execProtocol(protocol.serialize.query(sqlText), { syncToFs: false });
    } finally {
      release();
    }
  }

  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pg, this.#mutex);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}
