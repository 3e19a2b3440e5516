/**
 * Jobs for one worker thread, shared by the process: for work proportional to a whole document
 * that on the event loop would stall every request and room meanwhile (merging a room's log,
 * converting a long document for an export).
 *
 * Jobs go to the worker one at a time, in order; each has a deadline from when it is sent. The
 * worker starts with the first job and ends after `idleMs` without one, giving its memory back.
 * A worker that dies, or holds a job past its deadline (a hostile update on which Yjs never
 * finishes, say, and then it is ended), fails that job; the jobs waiting behind it go to a new
 * one.
 *
 * The worker gets `{ id, ...request }` and answers `{ id, ...result }`, or `{ id, error }` with
 * a message.
 */
import { Worker, type Transferable } from 'node:worker_threads';

export interface WorkerQueueOptions {
  /** What the worker is, as errors name it ("the log merger took longer than …"). */
  name: string;
  /** The worker's module. */
  url: URL;
  /** How long a job may take once sent to the worker. */
  jobTimeoutMs: number;
  /** How long the worker stays without a job (default 10 s). */
  idleMs?: number;
  /** Starts a worker (tests stand in one of their own). */
  startWorker?: () => Worker;
}

interface Job<Req, Res> {
  id: number;
  request: Req;
  transfer: readonly Transferable[];
  resolve(result: Res): void;
  reject(err: Error): void;
}

type Reply<Res> = ({ id: number } & Res) | { id: number; error: string };

export class WorkerQueue<Req extends object, Res extends object> {
  readonly #waiting: Array<Job<Req, Res>> = [];
  #current: { job: Job<Req, Res>; worker: Worker; deadline: NodeJS.Timeout } | null = null;
  #worker: Worker | null = null;
  #nextId = 0;
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: WorkerQueueOptions) {}

  /** `request` done on the worker; `transfer`: buffers of it handed over rather than copied. */
  run(request: Req, transfer: readonly Transferable[] = []): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.#waiting.push({ id: this.#nextId++, request, transfer, resolve, reject });
      this.#next();
    });
  }

  /** Ends the worker; the job it held and those waiting fail. */
  async close(): Promise<void> {
    const reason = new Error(`the ${this.options.name} was closed`);
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
        this.#idleTimer = setTimeout(() => void this.close(), this.options.idleMs ?? 10_000);
        this.#idleTimer.unref();
      }
      return;
    }
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const worker = this.#worker ?? this.#start();
    const timeoutMs = this.options.jobTimeoutMs;
    const deadline = setTimeout(() => {
      this.#drop(worker, new Error(`the ${this.options.name} took longer than ${timeoutMs} ms`));
      void worker.terminate();
      this.#next();
    }, timeoutMs);
    deadline.unref();
    this.#current = { job, worker, deadline };
    try {
      worker.postMessage({ ...job.request, id: job.id }, [...job.transfer]);
    } catch (err) {
      // (A request that cannot be cloned, or a buffer handed over already: that job fails alone.)
      clearTimeout(deadline);
      this.#current = null;
      job.reject(err instanceof Error ? err : new Error(String(err)));
      this.#next();
    }
  }

  #start(): Worker {
    const worker = this.options.startWorker?.() ?? new Worker(this.options.url);
    worker.unref();
    worker.on('message', (reply: Reply<Res>) => {
      const current = this.#current;
      if (!current || current.worker !== worker || current.job.id !== reply.id) return;
      clearTimeout(current.deadline);
      this.#current = null;
      if ('error' in reply) current.job.reject(new Error(reply.error));
      else {
        const { id: _id, ...result } = reply;
        current.job.resolve(result as unknown as Res);
      }
      this.#next();
    });
    const died = (reason: Error) => {
      this.#drop(worker, reason);
      this.#next();
    };
    worker.on('error', (err) => died(new Error(`the ${this.options.name} failed: ${err.message}`)));
    worker.on('exit', (code) => died(new Error(`the ${this.options.name} exited (code ${code})`)));
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
