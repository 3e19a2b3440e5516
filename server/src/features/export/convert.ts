/**
 * Converts a document for a text export where it costs least: on the event loop when its text
 * is short (a news article: a few ms), else on a worker thread shared by the process (a
 * 5,000,000-character document takes seconds to cut into CoNLL's tokens and sentences).
 */
import { WorkerQueue } from '../../worker-queue.ts';
import { convertDocument, type ConvertJob } from './convert-document.ts';

export type { ConvertJob, TextFormat } from './convert-document.ts';

/** Longer texts than this go to the worker (~25 ms of CoNLL on the event loop at most here). */
export const INLINE_MAX_CHARS = 50_000;

const converter = new WorkerQueue<ConvertJob, { pieces: string[] }>({
  name: 'export converter',
  url: new URL('./convert-worker.mjs', import.meta.url),
  jobTimeoutMs: 300_000,
});

/** convertDocument's pieces, off the event loop for a long text, one layer at a time. */
export async function* convert(job: ConvertJob): AsyncGenerator<string> {
  if (job.doc.text.length <= INLINE_MAX_CHARS) {
    yield* convertDocument(job);
    return;
  }
  for (const layer of job.layers) yield* (await converter.run({ ...job, layers: [layer] })).pieces;
}
