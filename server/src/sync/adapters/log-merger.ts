/**
 * Merges update logs on one worker thread (merge-worker.mjs), shared by the process: compaction
 * costs time proportional to the whole document (~300 ms of Yjs work for a 5,000-row log of a
 * 1.3 MB document here), which on the event loop would stall every room's sync meanwhile.
 *
 * The worker starts with the first job and ends after IDLE_MS without one, giving its memory
 * back; jobs run one at a time, in order. A worker that dies fails the jobs it held, and the
 * next job starts a new one; so does one that holds a job past its deadline (a hostile update
 * on which Yjs never finishes, say), which is ended.
 */
import { Worker } from 'node:worker_threads';

/** What merging a log gave: the snapshot, and the rows (by index) that would not apply. */
export interface MergedLog {
  merged: Uint8Array;
  bad: Array<{ index: number; error: string }>;
}

type Reply = { id: number; merged: Uint8Array; bad: MergedLog['bad'] } | { id: number; error: string };

interface Job {
  resolve(result: MergedLog): void;
  reject(err: Error): void;
  deadline: NodeJS.Timeout;
}

const IDLE_MS = 10_000;
const WORKER_URL = new URL('./merge-worker.mjs', import.meta.url);

export interface LogMergerOptions {
  /** How long a job may take from being handed in (default 120 s: ~1.5 s for a 5 MB document here). */
  jobTimeoutMs?: number;
}

export class LogMerger {
  constructor(private readonly options: LogMergerOptions = {}) {}

  #worker: Worker | null = null;
  readonly #jobs = new Map<number, Job>();
  #nextId = 0;
  #idleTimer: NodeJS.Timeout | null = null;

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
    const id = this.#nextId++;
    const worker = this.#start();
    return new Promise<MergedLog>((resolve, reject) => {
      const timeoutMs = this.options.jobTimeoutMs ?? 120_000;
      const deadline = setTimeout(() => {
        this.#stop(worker, new Error(`the log merger took longer than ${timeoutMs} ms`));
        void worker.terminate();
      }, timeoutMs);
      deadline.unref();
      this.#jobs.set(id, { resolve, reject, deadline });
      worker.postMessage({ id, bytes, ends }, [bytes.buffer, ends.buffer]);
    });
  }

  /** Ends the worker; jobs it held fail. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#stop(worker, new Error('the log merger was closed'));
    await worker.terminate();
  }

  #start(): Worker {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_URL);
    // It never keeps the process alive: a job in flight at exit is a compaction not done, and
    // the log stays as it was.
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = this.#jobs.get(reply.id);
      this.#jobs.delete(reply.id);
      if (job) clearTimeout(job.deadline);
      if ('error' in reply) job?.reject(new Error(reply.error));
      else job?.resolve({ merged: reply.merged, bad: reply.bad });
      if (this.#jobs.size === 0 && this.#worker === worker) {
        this.#idleTimer = setTimeout(() => void this.close(), IDLE_MS).unref();
      }
    });
    worker.on('error', (err) => this.#stop(worker, new Error(`the log merger failed: ${err.message}`)));
    worker.on('exit', (code) => this.#stop(worker, new Error(`the log merger exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  /** Forgets `worker` (if still current) and fails every job it held. */
  #stop(worker: Worker, reason: Error): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    for (const job of this.#jobs.values()) {
      clearTimeout(job.deadline);
      job.reject(reason);
    }
    this.#jobs.clear();
  }
}

/** The process's merger: one worker however many stores there are. */
export const logMerger = new LogMerger();
