/**
 * `npm run bench:compaction` — what compacting one room's log costs everyone else (prints
 * figures; not a test).
 *
 * Stores N small annotation edits in one room (embedded PGlite in a fresh temp dir, or
 * BENCH_DATABASE_URL), then compacts the room while another room keeps appending one update
 * every 2 ms, and prints how long compaction took, the longest stretch in which the event loop
 * ran nothing (a 1 ms timer's longest gap), and how many of the other room's appends went
 * through meanwhile and the slowest of them.
 *
 *   npm run bench:compaction -- [--edits 5000]
 *
 * The last line printed is a one-line JSON summary.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as Y from 'yjs';
import { addSpan } from '@spanwise/shared';
import { openDatabase } from '../src/db/database.ts';
import { KyselyStore } from '../src/sync/adapters/kysely-store.ts';
import { logMerger } from '../src/sync/adapters/log-merger.ts';
import { stallProbe } from './stats.ts';

const { values } = parseArgs({ options: { edits: { type: 'string', default: '5000' } } });
const edits = Number(values.edits);
const databaseUrl = process.env.BENCH_DATABASE_URL ?? null;
const dir = await mkdtemp(path.join(tmpdir(), 'spanwise-bench-compaction-'));
const database = await openDatabase({ databaseUrl, dataDir: dir });
try {
  const store = new KyselyStore(database.db, { compactAfterRows: Number.MAX_SAFE_INTEGER, executeEach: database.executeEach ?? undefined, log: { info() {}, warn() {}, error() {} } });
  const room = `bench-compaction-${process.pid}-${Date.now()}`;
  const other = `${room}-other`;
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  for (let i = 0; i < edits; i++) addSpan(doc, { label: `L${i % 5}`, start: i, end: i + 3, quote: 'abc', author: 1 });
  for (let i = 0; i < updates.length; i += 100) await store.append(room, updates.slice(i, i + 100));
  const documentBytes = Y.encodeStateAsUpdate(doc).byteLength;
  await logMerger.merge([updates[0]!]); // the worker started, as in a server that compacted before

  const probe = stallProbe();
  let appends = 0;
  let slowestAppend = 0;
  let stop = false;
  const appending = (async () => {
    while (!stop) {
      const started = performance.now();
      await store.append(other, [new Uint8Array([0, 0])]);
      slowestAppend = Math.max(slowestAppend, performance.now() - started);
      appends++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const started = performance.now();
  const replaced = await store.compact(room);
  const tookMs = performance.now() - started;
  stop = true;
  await appending;
  const longestGap = await probe.stop();

  console.log(`compaction of ${replaced} rows (a ${(documentBytes / 1e6).toFixed(1)} MB document) on ${database.kind}: ${tookMs.toFixed(0)} ms`);
  console.log(`  longest event-loop stall meanwhile: ${longestGap.toFixed(1)} ms`);
  console.log(`  another room's appends meanwhile: ${appends}, slowest ${slowestAppend.toFixed(1)} ms`);
  const round = (n: number) => Math.round(n * 10) / 10;
  console.log(JSON.stringify({ bench: 'compaction', database: database.kind, edits, rowsReplaced: replaced, documentBytes, tookMs: round(tookMs), longestStallMs: round(longestGap), otherAppends: appends, slowestOtherAppendMs: round(slowestAppend) }));
  if (databaseUrl) await database.db.deleteFrom('sync_updates').where('room', 'in', [room, other]).execute();
} finally {
  await logMerger.close();
  await database.close();
  await rm(dir, { recursive: true, force: true });
}
