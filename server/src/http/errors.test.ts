import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { StorageFullError } from '../db/pglite-dialect.ts';
import { createLogger } from '../log.ts';
import { errorHandler } from './errors.ts';

describe('errorHandler', () => {
  it('answers 503 storage_full when the database refuses a write for want of disk, without naming the folder', async () => {
    const lines: Record<string, unknown>[] = [];
    const app = new Hono();
    app.onError(errorHandler(createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>))));
    app.post('/things', () => {
      throw new StorageFullError('the disk holding the database (/srv/secret-path) has 3 MiB free');
    });
    const res = await app.request('/things', { method: 'POST' });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('storage_full');
    expect(body.error.message).not.toContain('/srv/secret-path');
    expect(lines.map((l) => [l.level, l.event])).toEqual([['warn', 'request_refused_disk_full']]);
  });

  it('still answers 500 for anything else it does not know', async () => {
    const app = new Hono();
    app.onError(errorHandler(createLogger('silent')));
    app.get('/boom', () => {
      throw new Error('boom');
    });
    expect((await app.request('/boom')).status).toBe(500);
  });
});
