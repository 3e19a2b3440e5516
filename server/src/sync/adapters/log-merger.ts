/**
 * Merges update logs on one worker thread (merge-worker.mjs), shared by the process: compaction
 * costs time proportional to the whole document (~300 ms of Yjs work for a 5,000-row log of a
 * 1.3 MB document here), which on the event loop would stall every room's sync meanwhile.
 * The worker's jobs go as WorkerQueue sends them: one at a time, each with a deadline.
 */
import type { Worker } from 'node:worker_threads';
import { WorkerQueue } from '../../worker-queue.ts';

/** What merging a log gave: the snapshot, and the rows (by index) that would not apply. */
export interface MergedLog {
  merged: Uint8Array;
  bad: Array<{ index: number; error: string }>;
}

/** A job: the rows as one buffer and where each ends (see merge-worker.mjs). */
interface MergeJob {
  bytes: Uint8Array<ArrayBuffer>;
  ends: Uint32Array<ArrayBuffer>;
}

export interface LogMergerOptions {
  /** How long a job may take once sent to the worker (default 120 s; a 5 MB document takes ~1.5 s here). */
  jobTimeoutMs?: number;
  /** Starts a worker (tests stand in one of their own). */
  startWorker?: () => Worker;
}

export class LogMerger {
  readonly #jobs: WorkerQueue<MergeJob, MergedLog>;

  constructor(options: LogMergerOptions = {}) {
    this.#jobs = new WorkerQueue({
      name: 'log merger',
      url: new URL('./merge-worker.mjs', import.meta.url),
      jobTimeoutMs: options.jobTimeoutMs ?? 120_000,
      startWorker: options.startWorker,
    });
  }

  /** The rows, in order, merged into one snapshot off the event loop. */
  merge(rows: readonly Uint8Array[]): Promise<MergedLog> {
    const ends = new Uint32Array(rows.length);
    let total = 0;
    rows.forEach((r, i) => (ends[i] = total += r.byteLength));
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const r of rows) {
      bytes.set(r, at);
      at += r.byteLength;
    }
    return this.#jobs.run({ bytes, ends }, [bytes.buffer, ends.buffer]);
  }

  /** Ends the worker; the job it held and those waiting fail. */
  close(): Promise<void> {
    return this.#jobs.close();
  }
}

/** The process's merger: one worker however many stores there are. */
export const logMerger = new LogMerger();
