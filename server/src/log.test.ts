import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createApp, createServices } from './app.ts';
import { testConfig } from './config.ts';
import { openDatabase } from './db/database.ts';
import { createLogger, leftOutCountsWaiting, logLeftOutCounts, logThrottle, streamWriter } from './log.ts';

describe('structured logs', () => {
  it('writes one JSON line per event, at or above the level', () => {
    const lines: string[] = [];
    const log = createLogger('warn', (l) => lines.push(l));
    log.info('ignored');
    log.warn('sync_store_failed', { room: 'doc:1:gold', queued: 3 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', event: 'sync_store_failed', room: 'doc:1:gold', queued: 3 });
  });

  it('keeps its own time, level and event whatever the fields hold', () => {
    const lines: string[] = [];
    createLogger('info', (l) => lines.push(l)).error('sync_apply_failed', { level: 'debug', event: 'forged', time: 'never', room: 'r' });
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 'error', event: 'sync_apply_failed', room: 'r' });
    expect(Number.isNaN(Date.parse(entry.time))).toBe(false);
    expect(Object.keys(entry).slice(0, 3)).toEqual(['time', 'level', 'event']);
  });

  it('writes a line for fields JSON cannot hold, and never throws', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    log.info('counted', { rows: 12n, error: new TypeError('bad offset') });
    const circular: Record<string, unknown> = { room: 'doc:1:gold' };
    circular.self = circular;
    expect(() => log.warn('odd_fields', { circular })).not.toThrow();
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'counted', rows: '12', error: 'TypeError: bad offset' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'warn', event: 'odd_fields', logError: 'fields not written: TypeError' });
  });

  it('exits only once the lines a slow reader has not taken yet have gone out', async () => {
    // A process that logs 2,000 lines and exits at once, into a pipe nobody reads for 1 s.
    const log = fileURLToPath(new URL('./log.ts', import.meta.url));
    const script = `
      import { createLogger, exitAfterLog } from ${JSON.stringify(log)};
      const log = createLogger('info');
      for (let i = 0; i < 2000; i++) log.info('filler', { i, pad: 'x'.repeat(100) });
      log.error('shutdown_failed', { error: 'the last line' });
      await exitAfterLog(3, 10_000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const ended = once(child.stdout, 'end');
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 1_000));
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stdout.resume();
    const [[code]] = await Promise.all([exited, ended]);
    const lines = Buffer.concat(chunks).toString().trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(code).toBe(3);
    expect(lines.filter((l) => l.event === 'filler')).toHaveLength(2000);
    expect(lines.at(-1)).toMatchObject({ event: 'shutdown_failed', error: 'the last line' });
  });

  it('logs each API request with its id, status and user, never its body', async () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    const database = await openDatabase({ databaseUrl: null, dataDir: 'memory://' });
    try {
      const deps = { config: testConfig(), db: database.db, dbKind: database.kind, log };
      const app = createApp(deps, createServices(deps));
      const res = await app.request('/api/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'nobody', password: 'secret-password' }),
      });
      expect(res.status).toBe(401);
      const entry = lines.map((l) => JSON.parse(l)).find((e) => e.event === 'http_request');
      expect(entry).toMatchObject({ method: 'POST', path: '/api/auth/login', status: 401, userId: null });
      expect(entry.requestId).toBe(res.headers.get('x-request-id'));
      expect(lines.join('\n')).not.toContain('secret-password');
    } finally {
      await database.close();
    }
  });

  it('drops lines while too much waits for a stalled reader, and says how many once it reads again', async () => {
    const taken: string[] = [];
    const pending: Array<() => void> = [];
    // A reader that takes nothing until told to: what is written waits in memory.
    const out = new Writable({
      write(chunk, _enc, done) {
        taken.push(String(chunk));
        pending.push(done);
      },
      highWaterMark: 1,
    });
    const write = streamWriter(out, 1_000);
    for (let i = 0; i < 100; i++) write(JSON.stringify({ event: 'e', i, pad: 'x'.repeat(50) }));
    expect(out.writableLength).toBeLessThan(1_000 + 200);
    while (pending.length > 0) pending.shift()!(); // the reader catches up
    expect(out.writableLength).toBe(0);
    await new Promise((r) => setImmediate(r)); // ('drain')
    while (pending.length > 0) pending.shift()!();
    write(JSON.stringify({ event: 'after' }));
    while (pending.length > 0) pending.shift()!();
    const lines = taken.join('').trim().split('\n').map((l) => JSON.parse(l) as { event: string; count?: number });
    const kept = lines.filter((l) => l.event === 'e').length;
    expect(kept).toBeGreaterThan(0);
    expect(lines.at(-2)).toMatchObject({ event: 'log_lines_dropped', count: 100 - kept });
    expect(lines.at(-1)).toMatchObject({ event: 'after' });
  });
});

describe('logThrottle', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('lets one line a key through each window, and counts the rest for the next', async () => {
    const throttle = logThrottle(50);
    expect(throttle('a')).toEqual({});
    expect(throttle('a')).toBeNull();
    expect(throttle('b')).toEqual({});
    expect(throttle('a')).toBeNull();
    await sleep(60);
    expect(throttle('a')).toEqual({ leftOut: 2 });
    expect(throttle('b')).toEqual({});
  });

  it('with leftOut, hands a burst its count when its window ends, though no other line comes', async () => {
    const counts: Array<[string, number]> = [];
    const throttle = logThrottle(50, { leftOut: (key, n) => counts.push([key, n]) });
    expect(throttle('a')).toEqual({});
    for (let i = 0; i < 3; i++) expect(throttle('a')).toBeNull();
    expect(throttle('b')).toEqual({});
    await sleep(120);
    expect(counts).toEqual([['a', 3]]);
    // Forgotten once counted: the next is let through whole, and nothing more is counted.
    expect(throttle('a')).toEqual({});
    await sleep(120);
    expect(counts).toEqual([['a', 3]]);
  });

  it('with leftOut, keeps going when the count cannot be logged', async () => {
    const throttle = logThrottle(20, {
      leftOut: () => {
        throw new Error('no log');
      },
    });
    throttle('a');
    throttle('a');
    await sleep(60);
    expect(throttle('a')).toEqual({});
  });

  it('with leftOut, hands every waiting count over at once when asked (before an exit), and only once', async () => {
    const counts: Array<[string, number]> = [];
    const throttle = logThrottle(40, { leftOut: (key, n) => counts.push([key, n]) });
    throttle('a');
    throttle('a');
    throttle('a');
    throttle('b');
    throttle('b');
    logLeftOutCounts();
    expect(counts).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    await sleep(80); // (its timers found nothing left to hand over)
    logLeftOutCounts();
    expect(counts).toHaveLength(2);
    expect(throttle('a')).toEqual({});
  });

  it('with leftOut, a count that went on the next line (its timer late) is not handed over again', async () => {
    const counts: Array<[string, number]> = [];
    const throttle = logThrottle(30, { leftOut: (key, n) => counts.push([key, n]) });
    const waitingBefore = leftOutCountsWaiting();
    throttle('a');
    throttle('a');
    expect(leftOutCountsWaiting()).toBe(waitingBefore + 1);
    const start = performance.now();
    while (performance.now() - start < 40); // the window ends while the timer cannot run
    expect(throttle('a')).toEqual({ leftOut: 1 });
    expect(leftOutCountsWaiting()).toBe(waitingBefore); // (nothing kept for it)
    logLeftOutCounts();
    await sleep(50);
    expect(counts).toEqual([]);
  });

  it('logs the waiting counts of a process that exits through exitAfterLog', async () => {
    const log = fileURLToPath(new URL('./log.ts', import.meta.url));
    const script = `
      import { createLogger, exitAfterLog, logThrottle } from ${JSON.stringify(log)};
      const log = createLogger('info');
      const throttle = logThrottle(60_000, { leftOut: (key, leftOut) => log.warn('burst', { key, leftOut }) });
      for (let i = 0; i < 5; i++) if (throttle('k')) log.warn('burst', { key: 'k' });
      await exitAfterLog(0);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const [[code]] = await Promise.all([once(child, 'exit'), once(child.stdout, 'end')]);
    expect(code).toBe(0);
    const lines = Buffer.concat(chunks).toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map(({ event, key, leftOut }) => ({ event, key, leftOut }))).toEqual([
      { event: 'burst', key: 'k', leftOut: undefined },
      { event: 'burst', key: 'k', leftOut: 4 },
    ]);
  });

  it('with leftOut, hands over the counts of every key it forgets for want of room', () => {
    const counts: Array<[string, number]> = [];
    const throttle = logThrottle(60_000, { maxKeys: 2, leftOut: (key, n) => counts.push([key, n]) });
    throttle('a');
    throttle('a');
    throttle('b');
    expect(throttle('c')).toEqual({});
    expect(counts).toEqual([['a', 1]]);
    expect(throttle('a')).toEqual({}); // forgotten, so let through
  });
});
