import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, dataDir: './.data', databaseUrl: null, redisUrl: null, demo: true, demoPassword: 'demo' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads every variable', () => {
    const c = loadConfig({ PORT: '8080', DATA_DIR: '/tmp/x', DATABASE_URL: 'postgres://u@h/db', DEMO: '0', DEMO_PASSWORD: 'pw', MAX_MESSAGE_BYTES: '2048' });
    expect(c).toMatchObject({ port: 8080, dataDir: '/tmp/x', databaseUrl: 'postgres://u@h/db', demo: false, demoPassword: 'pw' });
    expect(c.sync.maxMessageBytes).toBe(2048);
  });

  it('reads a metrics token, and refuses a short one', () => {
    expect(loadConfig({}).metricsToken).toBeNull();
    expect(loadConfig({ METRICS_TOKEN: 'a-long-enough-token' }).metricsToken).toBe('a-long-enough-token');
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
    // A token a client could never send in an Authorization header is refused at start.
    expect(() => loadConfig({ METRICS_TOKEN: 'a long token with spaces!' })).toThrow(/METRICS_TOKEN/);
  });

  it('refuses queue bounds that could never hold a largest message', () => {
    expect(() => loadConfig({ MAX_MESSAGE_BYTES: String(8 * 2 ** 20), MAX_QUEUED_BYTES_PER_ROOM: String(4 * 2 ** 20) })).toThrow(/MAX_QUEUED_BYTES_PER_ROOM: must be at least MAX_MESSAGE_BYTES \+ 560/);
    // A largest update with its bookkeeping must fit.
    expect(() => loadConfig({ MAX_MESSAGE_BYTES: String(2 ** 20), MAX_QUEUED_BYTES_PER_ROOM: String(2 ** 20) })).toThrow(/MAX_QUEUED_BYTES_PER_ROOM/);
    expect(() => loadConfig({ MAX_MESSAGE_BYTES: String(2 ** 20), MAX_QUEUED_BYTES_PER_ROOM: String(2 ** 20 + 559) })).toThrow(/MAX_QUEUED_BYTES_PER_ROOM/);
    expect(loadConfig({ MAX_MESSAGE_BYTES: String(2 ** 20), MAX_QUEUED_BYTES_PER_ROOM: String(2 ** 20 + 560) }).sync.maxQueuedBytesPerRoom).toBe(2 ** 20 + 560);
    expect(() => loadConfig({ MAX_QUEUED_BYTES: String(2 ** 20) })).toThrow(/MAX_QUEUED_BYTES: must be at least/);
    // (A user's share, a quarter, holds one socket's: twice the largest message, 4 MiB, and 32 frames' bookkeeping.)
    expect(() => loadConfig({ MAX_WAITING_FRAME_BYTES: String(16 * 2 ** 20) })).toThrow(/MAX_WAITING_FRAME_BYTES: must be at least 4 × \(2 × MAX_MESSAGE_BYTES \+ 15360\)/);
    expect(() => loadConfig({ MAX_WAITING_FRAME_BYTES: String(32 * 2 ** 20 + 4 * 15_360 - 1) })).toThrow(/MAX_WAITING_FRAME_BYTES/);
    expect(loadConfig({ MAX_WAITING_FRAME_BYTES: String(32 * 2 ** 20 + 4 * 15_360) }).sync.maxWaitingFrameBytes).toBe(32 * 2 ** 20 + 4 * 15_360);
    expect(() => loadConfig({ STORE_WRITE_DEADLINE_MS: '500' })).toThrow(/STORE_WRITE_DEADLINE_MS/);
  });

  it('refuses delays a timer cannot wait (Node fires those after 1 ms) and frame limits ws cannot hold', () => {
    expect(loadConfig({ PING_INTERVAL_MS: '2147483647' }).sync.pingIntervalMs).toBe(2_147_483_647);
    for (const name of ['PING_INTERVAL_MS', 'ACCESS_RECHECK_MS', 'STORE_DELAY_NOTICE_MS', 'MAX_BUFFERED_MS', 'ACCESS_CACHE_MS']) {
      expect(() => loadConfig({ [name]: '9999999999' }), name).toThrow(new RegExp(name));
    }
    // A re-check of many sockets waits twice the access timeout.
    expect(() => loadConfig({ ACCESS_TIMEOUT_MS: '1073741824' })).toThrow(/ACCESS_TIMEOUT_MS/);
    expect(() => loadConfig({ MAX_MESSAGE_BYTES: String(2 ** 32) })).toThrow(/MAX_MESSAGE_BYTES/);
  });

  it('refuses REDIS_URL without DATABASE_URL (instances must share one PostgreSQL)', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/REDIS_URL: needs DATABASE_URL/);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://db/app' }).redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('refuses a session longer than a browser keeps a cookie (400 days)', () => {
    expect(loadConfig({ SESSION_TTL_HOURS: '9600' }).sessionTtlHours).toBe(9600);
    expect(() => loadConfig({ SESSION_TTL_HOURS: '9601' })).toThrow(/SESSION_TTL_HOURS/);
  });

  it('reads a number only in decimal digits (around spaces), and a blank setting as unset', () => {
    for (const port of ['0x50', '8e1', '80.', '+80', '1_000']) expect(() => loadConfig({ PORT: port }), port).toThrow(/PORT: must be a number in decimal digits/);
    expect(loadConfig({ PORT: ' 3001 ' }).port).toBe(3001);
    expect(loadConfig({ PORT: ' ', MAX_BUFFERED_MS: '\t', STORE_WARMUP_COMMITS: '  ' })).toMatchObject({ port: 3000, sync: loadConfig({}).sync });
    expect(loadConfig({ SESSION_TTL_HOURS: '0.5' }).sessionTtlHours).toBe(0.5);
    expect(loadConfig({ DEMO_PASSWORD: ' pass word ' }).demoPassword).toBe(' pass word ');
  });

  it('names every bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', DEMO: 'maybe' })).toThrow(/PORT.*DEMO|DEMO.*PORT/);
  });
});
