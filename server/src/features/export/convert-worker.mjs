// @ts-check
/**
 * The worker thread convert.ts starts: converts a long document for an export (convertDocument),
 * so that the work — proportional to its whole text, seconds for the longest — holds neither
 * the event loop every request and room shares nor anyone else's export.
 */
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

// TypeScript, through tsx's loader: a worker inherits `--import tsx`, but tsx installs its
// loader on the main thread alone, so the worker installs its own.
register();
const { convertDocument } = await import('./convert-document.ts');

parentPort?.on('message', ({ id, ...job }) => {
  try {
    parentPort?.postMessage({ id, pieces: convertDocument(job) });
  } catch (err) {
    parentPort?.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
