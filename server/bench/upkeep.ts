/**
 * `npm run bench:upkeep` — what embedded PGlite's upkeep (VACUUM and CHECKPOINT, see
 * src/db/pglite-maintenance.ts) costs, and what leaving it out costs (prints figures; not a
 * test).
 *
 * Stores N small annotation edits over 200 rooms (each room's document holds 50 spans; past
 * that an edit relabels one) through the server's own store, compacting each room every 500
 * rows, in a fresh PGlite temp dir. Each time the WAL since the last checkpoint reaches the
 * threshold (checked every ~900 edits), it runs the upkeep and prints how long VACUUM and
 * CHECKPOINT took and the longest stretch in which the event loop ran nothing meanwhile (a
 * 1 ms timer's longest gap). At the end it prints the update log table's size and the WAL
 * folder's. `--no-upkeep` stores the same edits without it, for the sizes to compare.
 *
 *   npm run bench:upkeep -- [--edits 150000] [--wal-mb 32] [--no-upkeep]
 *
 * The last line printed is a one-line JSON summary.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import * as Y from 'yjs';
import { addSpan, relabel } from '@spanwise/shared';
import { openDatabase } from '../src/db/database.ts';
import { KyselyStore } from '../src/sync/adapters/kysely-store.ts';
import { logMerger } from '../src/sync/adapters/log-merger.ts';
import { stallProbe } from './stats.ts';

const { values } = parseArgs({
  options: { edits: { type: 'string', default: '150000' }, 'wal-mb': { type: 'string', default: '32' }, 'no-upkeep': { type: 'boolean', default: false } },
});
const totalEdits = Number(values.edits);
const walBytes = Number(values['wal-mb']) * 1024 * 1024;
const upkeep = !values['no-upkeep'];
const ROOMS = 200;
/** Spans a room holds; past that, an edit relabels one (the documents stay the same size). */
const SPANS = 50;

const dir = await mkdtemp(path.join(tmpdir(), 'spanwise-bench-upkeep-'));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let lastUpkeep: { walBytes: number; vacuumMs: number; checkpointMs: number } | null = null;
const log = { ...quiet, info: (event: string, fields?: Record<string, unknown>) => void (event === 'db_maintenance' && (lastUpkeep = fields as typeof lastUpkeep)) };
const database = await openDatabase({ databaseUrl: null, dataDir: dir, pgliteMaintenance: { walBytes, checkEveryMs: 0 }, log });
// Compacted every 500 rows (an open room waits for ten times that by default), so that there
// are deleted rows for VACUUM to find.
const store = new KyselyStore(database.db, { compactAfterRows: 500, compactAfterBytes: 4 * 1024 * 1024, openRoomFactor: 1, executeEach: database.executeEach ?? undefined, log: quiet });
const folderBytes = async (folder: string) => {
  let total = 0;
  for (const name of await readdir(folder, { recursive: true })) {
    const s = await stat(path.join(folder, name)).catch(() => null);
    if (s?.isFile()) total += s.size;
  }
  return total;
};
const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

try {
  await database.maintenance!.runIfDue(); // what migrating wrote
  // Loaded first, as the server does: the store then knows each log's size and compacts it.
  for (let room = 0; room < ROOMS; room++) await store.load(`doc:${room + 1}:user:1`);
  const docs = Array.from({ length: ROOMS }, () => new Y.Doc());
  const spans: string[][] = docs.map(() => []);
  const pending: Uint8Array[][] = docs.map(() => []);
  docs.forEach((doc, i) => doc.on('update', (u: Uint8Array) => pending[i]!.push(u)));
  const done: { edits: number; walBytes: number; vacuumMs: number; checkpointMs: number; stallMs: number }[] = [];
  let edits = 0;
  let sweeps = 0;
  const started = performance.now();
  while (edits < totalEdits) {
    // A sweep over the rooms, in the server's rhythm: each room's batch of the moment in one call.
    for (let r = 0; r < ROOMS && edits < totalEdits; r += 7) {
      const room = (r + edits) % ROOMS;
      const doc = docs[room]!;
      if (spans[room]!.length < SPANS) {
        spans[room]!.push(addSpan(doc, { label: `L${edits % 5}`, start: edits % 1000, end: (edits % 1000) + 3, quote: 'abc', author: 1 }));
      } else {
        relabel(doc, spans[room]![edits % SPANS]!, `L${edits % 5}`);
      }
      edits++;
      await store.append(`doc:${room + 1}:user:1`, pending[room]!.splice(0));
    }
    if (!upkeep || ++sweeps % 30 !== 0) continue;
    // What the server's timer does every 10 s, here every 30 sweeps, with a probe of the event loop.
    const probe = stallProbe();
    const ran = await database.maintenance!.runIfDue();
    const stallMs = await probe.stop();
    if (!ran) continue;
    const { walBytes: wal, vacuumMs, checkpointMs } = lastUpkeep!;
    done.push({ edits, walBytes: wal, vacuumMs, checkpointMs, stallMs });
    console.log(
      `after ${edits} edits (${mb(wal)} MB of WAL since the last checkpoint): VACUUM ${vacuumMs} ms, CHECKPOINT ${checkpointMs} ms, longest event-loop stall ${stallMs.toFixed(0)} ms`,
    );
  }
  await store.close();
  const tableBytes = Number((await sql<{ n: string }>`select pg_total_relation_size('sync_updates')::text as n`.execute(database.db)).rows[0]!.n);
  const liveRows = Number((await sql<{ n: string }>`select count(*)::text as n from sync_updates`.execute(database.db)).rows[0]!.n);
  const walFolderBytes = await folderBytes(path.join(dir, 'pg_wal'));
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${upkeep ? 'with' : 'without'} upkeep, ${edits} edits over ${ROOMS} rooms in ${seconds.toFixed(0)} s: update log ${mb(tableBytes)} MB on disk for ${liveRows} rows, WAL folder ${mb(walFolderBytes)} MB`,
  );
  const round = (n: number) => Math.round(n * 10) / 10;
  console.log(
    JSON.stringify({
      bench: 'upkeep',
      upkeep,
      walThresholdBytes: walBytes,
      edits,
      runs: done.map((d) => ({ ...d, stallMs: round(d.stallMs) })),
      tableBytes,
      liveRows,
      walFolderBytes,
    }),
  );
} finally {
  await logMerger.close();
  await database.close();
  await rm(dir, { recursive: true, force: true });
}
