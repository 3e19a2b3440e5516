import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { DatabaseBusyError, StorageFullError } from '../db/pglite-dialect.ts';
import { createLogger, logLeftOutCounts } from '../log.ts';
import { errorHandler } from './errors.ts';

/** An app answering errors with errorHandler, and the lines it logs. */
function appLogging() {
  const lines: Record<string, unknown>[] = [];
  const app = new Hono();
  app.onError(errorHandler(createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>))));
  return { app, lines };
}

describe('errorHandler', () => {
  it('answers 503 storage_full when the database refuses a write for want of disk, without naming the folder', async () => {
    const { app, lines } = appLogging();
    app.post('/things', () => {
      throw new StorageFullError('the disk holding the database (/srv/secret-path) has 3 MiB free');
    });
    const res = await app.request('/things', { method: 'POST' });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('storage_full');
    expect(body.error.message).not.toContain('/srv/secret-path');
    // One line for a run of them (each 10 s at most), not one for every request refused.
    for (let i = 0; i < 5; i++) expect((await app.request('/things', { method: 'POST' })).status).toBe(503);
    expect(lines.map((l) => [l.level, l.event])).toEqual([['warn', 'request_refused_disk_full']]);
  });

  it('answers 503 database_busy, with Retry-After, when PGlite has more waiting than it can serve', async () => {
    const { app, lines } = appLogging();
    app.get('/things', () => {
      throw new DatabaseBusyError('the database is busy: waited 10000 ms for a turn');
    });
    const res = await app.request('/things');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('database_busy');
    expect(lines.map((l) => [l.level, l.event])).toEqual([['warn', 'request_refused_db_busy']]);
  });

  it('answers 503 database_unavailable while the database cannot be reached, logging one line per 10 s, not a stack per request', async () => {
    const { app, lines } = appLogging();
    const unreachable: Error[] = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }),
      Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' }),
      new Error('Connection terminated unexpectedly'),
      new Error('Client was closed and is not queryable'),
    ];
    let next = 0;
    app.get('/things', () => {
      throw unreachable[next++]!;
    });
    for (let i = 0; i < unreachable.length; i++) {
      const res = await app.request('/things');
      expect(res.status, unreachable[i]!.message).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('database_unavailable');
    }
    expect(lines.map((l) => [l.level, l.event, l.error])).toEqual([['warn', 'request_refused_db_unreachable', 'ECONNREFUSED']]);
    // The window's count of those left out, as its end (or the process's exit) logs it.
    logLeftOutCounts();
    expect(lines.slice(1).map((l) => [l.level, l.event, l.leftOut])).toEqual([['warn', 'request_refused_db_unreachable', unreachable.length - 1]]);
  });

  it('still answers 500 for a database error that is the request’s own, and for a client that aborted its upload', async () => {
    const { app } = appLogging();
    app.get('/dup', () => {
      throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
    });
    // Node's error for a request body cut short: the code of a reset, but no failed call.
    app.get('/aborted', () => {
      throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    });
    expect((await app.request('/dup')).status).toBe(500);
    expect((await app.request('/aborted')).status).toBe(500);
  });

  it('still answers 500 for anything else it does not know', async () => {
    const { app } = appLogging();
    app.get('/boom', () => {
      throw new Error('boom');
    });
    expect((await app.request('/boom')).status).toBe(500);
  });
});
