/**
 * Merges update logs on one worker thread (merge-worker.mjs), shared by the process: compaction
 * costs time proportional to the whole document (~300 ms of Yjs work for a 5,000-row log of a
 * 1.3 MB document here), which on the event loop would stall every room's sync meanwhile.
 *
 * Jobs go to the worker one at a time, in order; each has a deadline from when it is sent. The
 * worker starts with the first job and ends after IDLE_MS without one, giving its memory back.
 * A worker that dies, or holds a job past its deadline (a hostile update on which Yjs never
 * finishes, say, and then it is ended), fails that job; the jobs waiting behind it go to a new
 * one.
 */
import { Worker } from 'node:worker_threads';

/** What merging a log gave: the snapshot, and the rows (by index) that would not apply. */
export interface MergedLog {
  merged: Uint8Array;
  bad: Array<{ index: number; error: string }>;
}

type Reply = { id: number; merged: Uint8Array; bad: MergedLog['bad'] } | { id: number; error: string };

interface Job {
  id: number;
  bytes: Uint8Array<ArrayBuffer>;
  ends: Uint32Array<ArrayBuffer>;
  resolve(result: MergedLog): void;
  reject(err: Error): void;
}

const IDLE_MS = 10_000;
const WORKER_URL = new URL('./merge-worker.mjs', import.meta.url);

export interface LogMergerOptions {
  /** How long a job may take once sent to the worker (default 120 s; a 5 MB document takes ~1.5 s here). */
  jobTimeoutMs?: number;
  /** Starts a worker (tests stand in one of their own). */
  startWorker?: () => Worker;
}

export class LogMerger {
  readonly #waiting: Job[] = [];
  #current: { job: Job; worker: Worker; deadline: NodeJS.Timeout } | null = null;
  #worker: Worker | null = null;
  #nextId = 0;
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: LogMergerOptions = {}) {}

  /** The rows, in order, merged into one snapshot off the event loop. */
  merge(rows: readonly Uint8Array[]): Promise<MergedLog> {
    // One buffer and where each row ends: one transfer, instead of a copy of every row's backing
    // store (for a Buffer from a pool, the whole pool).
    const ends = new Uint32Array(rows.length);
    let total = 0;
    rows.forEach((r, i) => (ends[i] = total += r.byteLength));
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const r of rows) {
      bytes.set(r, at);
      at += r.byteLength;
    }
    return new Promise<MergedLog>((resolve, reject) => {
      this.#waiting.push({ id: this.#nextId++, bytes, ends, resolve, reject });
      this.#next();
    });
  }

  /** Ends the worker; the job it held and those waiting fail. */
  async close(): Promise<void> {
    const reason = new Error('the log merger was closed');
    for (const job of this.#waiting.splice(0)) job.reject(reason);
    const worker = this.#worker;
    if (worker) {
      this.#drop(worker, reason);
      await worker.terminate();
    }
  }

  /** Sends the next waiting job, if none is under way. */
  #next(): void {
    if (this.#current) return;
    const job = this.#waiting.shift();
    if (!job) {
      if (this.#worker && !this.#idleTimer) {
        this.#idleTimer = setTimeout(() => void this.close(), IDLE_MS);
        this.#idleTimer.unref();
      }
      return;
    }
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const worker = this.#worker ?? this.#start();
    const timeoutMs = this.options.jobTimeoutMs ?? 120_000;
    const deadline = setTimeout(() => {
      this.#drop(worker, new Error(`the log merger took longer than ${timeoutMs} ms`));
      void worker.terminate();
      this.#next();
    }, timeoutMs);
    deadline.unref();
    this.#current = { job, worker, deadline };
    worker.postMessage({ id: job.id, bytes: job.bytes, ends: job.ends }, [job.bytes.buffer, job.ends.buffer]);
  }

  #start(): Worker {
    const worker = this.options.startWorker?.() ?? new Worker(WORKER_URL);
    // It never keeps the process alive: a job in flight at exit is a compaction not done, and
    // the log stays as it was.
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const current = this.#current;
      if (!current || current.worker !== worker || current.job.id !== reply.id) return;
      clearTimeout(current.deadline);
      this.#current = null;
      if ('error' in reply) current.job.reject(new Error(reply.error));
      else current.job.resolve({ merged: reply.merged, bad: reply.bad });
      this.#next();
    });
    const died = (reason: Error) => {
      this.#drop(worker, reason);
      this.#next();
    };
    worker.on('error', (err) => died(new Error(`the log merger failed: ${err.message}`)));
    worker.on('exit', (code) => died(new Error(`the log merger exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  /** Forgets `worker` (if still current) and fails the job it held. */
  #drop(worker: Worker, reason: Error): void {
    if (this.#worker === worker) {
      this.#worker = null;
      if (this.#idleTimer) clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
    const current = this.#current;
    if (current?.worker === worker) {
      clearTimeout(current.deadline);
      this.#current = null;
      current.job.reject(reason);
    }
  }
}

/** The process's merger: one worker however many stores there are. */
export const logMerger = new LogMerger();
