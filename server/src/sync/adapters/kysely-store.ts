/**
 * SyncStore over Kysely (PGlite or Postgres): one `sync_updates` row per received update,
 * compacted into one snapshot row once a room's log passes a threshold.
 *
 * Compaction runs in one transaction under a per-room advisory lock, so only one process
 * compacts a room at a time and a crash mid-way leaves the log as it was.
 */
import * as Y from 'yjs';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/types.ts';
import type { StoredUpdate, SyncLogger, SyncStore } from '../types.ts';

export interface KyselyStoreOptions {
  compactAfterRows: number;
  compactAfterBytes?: number;
  log: SyncLogger;
}

interface LogSize {
  rows: number;
  bytes: number;
}

export class KyselyStore implements SyncStore {
  /** Each room's log size as this process last saw it (after a load, append or compaction). */
  readonly #size = new Map<string, LogSize>();
  readonly #compacting = new Set<string>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: KyselyStoreOptions,
  ) {}

  async load(room: string): Promise<StoredUpdate[]> {
    const rows = await this.db
      .selectFrom('sync_updates')
      .select(['id', 'data'])
      .where('room', '=', room)
      .orderBy('id')
      .execute();
    this.#grow(room, { rows: rows.length, bytes: rows.reduce((n, r) => n + r.data.byteLength, 0) }, true);
    return rows.map((r) => ({ id: String(r.id), data: r.data }));
  }

  async append(room: string, updates: readonly Uint8Array[]): Promise<void> {
    if (updates.length === 0) return;
    await this.db
      .insertInto('sync_updates')
      .values(updates.map((data) => ({ room, data })))
      .execute();
    this.#grow(room, { rows: updates.length, bytes: updates.reduce((n, u) => n + u.byteLength, 0) }, false);
  }

  #grow(room: string, by: LogSize, reset: boolean): void {
    const was = reset ? { rows: 0, bytes: 0 } : (this.#size.get(room) ?? { rows: 0, bytes: 0 });
    const size = { rows: was.rows + by.rows, bytes: was.bytes + by.bytes };
    this.#size.set(room, size);
    const maxBytes = this.options.compactAfterBytes ?? Infinity;
    if (size.rows >= 2 && (size.rows >= this.options.compactAfterRows || size.bytes >= maxBytes)) this.#compactSoon(room);
  }

  release(room: string): void {
    this.#size.delete(room);
  }

  async setAside(room: string, id: string, error: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('sync_updates').select('data').where('id', '=', id).where('room', '=', room).executeTakeFirst();
      if (!row) return;
      await trx.insertInto('sync_quarantine').values({ room, data: row.data, error }).execute();
      await trx.deleteFrom('sync_updates').where('id', '=', id).execute();
    });
  }

  #compactSoon(room: string): void {
    if (this.#compacting.has(room)) return;
    this.#compacting.add(room);
    this.compact(room)
      .catch((err) => this.options.log.error('sync_compaction_failed', { room, error: String(err) }))
      .finally(() => this.#compacting.delete(room));
  }

  /** Merges a room's rows into one snapshot row; returns how many rows it replaced. */
  async compact(room: string): Promise<number> {
    const replaced = await this.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(${'spanwise-compact:' + room}))`.execute(trx);
      const rows = await trx.selectFrom('sync_updates').select(['id', 'data']).where('room', '=', room).orderBy('id').execute();
      if (rows.length < 2) return { rows: 0, bytes: 0 };
      const good: Uint8Array[] = [];
      for (const r of rows) {
        try {
          Y.decodeUpdate(r.data);
          good.push(r.data);
        } catch {
          // Leave a bad row where it is: loading sets it aside with its error.
        }
      }
      if (good.length < 2) return { rows: 0, bytes: 0 };
      const merged = Y.mergeUpdates(good);
      const lastId = rows[rows.length - 1]!.id;
      const goodIds = rows.filter((r) => good.includes(r.data)).map((r) => r.id);
      await trx.deleteFrom('sync_updates').where('room', '=', room).where('id', 'in', goodIds).execute();
      await trx.insertInto('sync_updates').values({ room, data: merged, kind: 'snapshot' }).execute();
      this.options.log.info('sync_compacted', { room, rows: goodIds.length, upToId: String(lastId), bytes: merged.byteLength });
      return { rows: goodIds.length, bytes: merged.byteLength };
    });
    if (replaced.rows > 0) this.#size.set(room, { rows: 1, bytes: replaced.bytes });
    return replaced.rows;
  }
}
