// @ts-check
/**
 * The worker thread log-merger.ts starts: merges a room's update log into one snapshot
 * (mergeLog), so that the work — proportional to the whole document — holds neither the event
 * loop every room shares nor the database connection. Plain JavaScript (see merge-log.mjs).
 */
import { parentPort } from 'node:worker_threads';
import { mergeLog } from './merge-log.mjs';

/**
 * A job: the rows as one buffer and where each ends (one transfer instead of a copy of every
 * row's backing store, which for a Buffer from a pool is the whole pool).
 * @typedef {{ id: number, bytes: Uint8Array, ends: Uint32Array }} MergeJob
 */

parentPort?.on('message', (/** @type {MergeJob} */ { id, bytes, ends }) => {
  try {
    /** @type {Uint8Array[]} */
    const rows = [];
    let start = 0;
    for (const end of ends) {
      rows.push(bytes.subarray(start, end));
      start = end;
    }
    const { merged, bad } = mergeLog(rows);
    parentPort?.postMessage({ id, merged, bad }, [/** @type {ArrayBuffer} */ (merged.buffer)]);
  } catch (err) {
    parentPort?.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
