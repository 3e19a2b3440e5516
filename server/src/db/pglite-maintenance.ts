/**
 * The upkeep PostgreSQL's background processes do, for embedded PGlite, which runs Postgres in
 * single-user mode without them: no checkpointer, no autovacuum.
 *
 * Without a checkpoint, the WAL keeps every write until the process stops (0.3–0.6 KB per stored
 * edit), on disk or, for `memory://`, in memory, and a restart after a crash replays all of it.
 * Without VACUUM, the rows compaction deletes leave their space unused for good, so the update
 * log's table only grows. Once the WAL written since the last checkpoint passes `walBytes`, this
 * runs a plain VACUUM (which makes dead rows' space reusable and skips pages that have not
 * changed since the last one) and then a CHECKPOINT (after which Postgres removes or recycles
 * the older WAL segments). Both run on the event loop between the store's transactions, holding
 * everything else meanwhile: measured in the README. Past a billion transactions since some
 * database of the cluster was last frozen (the templates, which only a start freezes: see
 * database.ts), each run warns: Postgres stops taking writes at ~2.1 billion.
 *
 * @example
 *   const upkeep = startPgliteMaintenance(db, { walBytes: 32 * 1024 * 1024, checkEveryMs: 10_000, log });
 *   await upkeep.stop();
 */
import { sql, type Kysely } from 'kysely';
import type { Logger } from '../log.ts';
import type { Database } from './types.ts';

export interface PgliteMaintenanceOptions {
  /** WAL written since the last checkpoint that calls for a VACUUM and a CHECKPOINT. */
  walBytes: number;
  /** How often that is checked (0: never by itself; `runIfDue` still works). */
  checkEveryMs: number;
  /** Transactions since a database was last frozen past which each run warns (Postgres stops writes at ~2.1 billion). */
  warnXidAge?: number;
  /** While this says so, nothing runs (writes are refused: the disk is nearly full). */
  paused?: () => boolean;
  log?: Logger;
}

const WARN_XID_AGE = 1_000_000_000;

export interface PgliteMaintenance {
  /** Runs VACUUM and CHECKPOINT if the WAL since the last checkpoint calls for it; whether it did. */
  runIfDue(): Promise<boolean>;
  /** No further runs; waits for one in progress. */
  stop(): Promise<void>;
}

export function startPgliteMaintenance(db: Kysely<Database>, options: PgliteMaintenanceOptions): PgliteMaintenance {
  let running: Promise<boolean> | null = null;
  let stopped = false;

  const walSinceCheckpoint = async () => {
    const { rows } = await sql<{ bytes: string }>`
      select pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::bigint::text as bytes from pg_control_checkpoint()`.execute(db);
    return Number(rows[0]!.bytes);
  };

  const run = async (): Promise<boolean> => {
    if (options.paused?.()) return false;
    const walBytes = await walSinceCheckpoint();
    if (walBytes < options.walBytes) return false;
    const started = performance.now();
    await sql`vacuum`.execute(db);
    const vacuumed = performance.now();
    // One stall after the other, not one of both lengths: what waits runs in between.
    await new Promise((resolve) => setImmediate(resolve));
    const checkpointing = performance.now();
    await sql`checkpoint`.execute(db);
    options.log?.info('db_maintenance', {
      walBytes,
      vacuumMs: Math.round(vacuumed - started),
      checkpointMs: Math.round(performance.now() - checkpointing),
    });
    // The VACUUM reaches only the open database; the templates are frozen when the server starts.
    const { rows } = await sql<{ age: number }>`select max(age(datfrozenxid))::int as age from pg_database`.execute(db);
    const age = rows[0]!.age;
    if (age > (options.warnXidAge ?? WARN_XID_AGE)) {
      options.log?.warn('db_transaction_ids_running_out', {
        age,
        stopsWritesAt: 2_100_000_000,
        advice: 'restart the server: a start freezes the template databases (not possible for a memory:// database)',
      });
    }
    return true;
  };

  const runIfDue = (): Promise<boolean> => {
    if (stopped) return Promise.resolve(false);
    running ??= run().finally(() => {
      running = null;
    });
    return running;
  };

  const timer =
    options.checkEveryMs > 0
      ? setInterval(() => {
          runIfDue().catch((err: unknown) => options.log?.warn('db_maintenance_failed', { error: String(err) }));
        }, options.checkEveryMs)
      : null;
  timer?.unref();

  return {
    runIfDue,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
