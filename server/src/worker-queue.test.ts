import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { WorkerQueue } from './worker-queue.ts';

/** A worker that answers each job with its `n` doubled. */
const doubler = () =>
  new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', ({ id, n }) => parentPort.postMessage({ id, doubled: n * 2 }));`,
    { eval: true },
  );

describe('WorkerQueue', () => {
  it('fails a job that cannot be sent to the worker, alone, and goes on with the next at once', async () => {
    const jobs = new WorkerQueue<{ n: number; extra?: unknown }, { doubled: number }>({
      name: 'doubler',
      url: new URL('data:,'),
      jobTimeoutMs: 60_000,
      startWorker: doubler,
    });
    try {
      expect(await jobs.run({ n: 1 })).toEqual({ doubled: 2 });
      const started = performance.now();
      await expect(jobs.run({ n: 2, extra: () => {} })).rejects.toThrow(/could not be cloned/);
      expect(await jobs.run({ n: 3 })).toEqual({ doubled: 6 });
      expect(performance.now() - started).toBeLessThan(30_000); // (not once the failed job's deadline passed)
    } finally {
      await jobs.close();
    }
  });
});
