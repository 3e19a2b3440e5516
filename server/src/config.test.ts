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
    expect(() => loadConfig({ MAX_MESSAGE_BYTES: String(8 * 2 ** 20), MAX_QUEUED_BYTES_PER_ROOM: String(4 * 2 ** 20) })).toThrow(/MAX_QUEUED_BYTES_PER_ROOM: must be at least MAX_MESSAGE_BYTES/);
    expect(() => loadConfig({ MAX_QUEUED_BYTES: String(2 ** 20) })).toThrow(/MAX_QUEUED_BYTES: must be at least/);
  });

  it('names every bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', DEMO: 'maybe' })).toThrow(/PORT.*DEMO|DEMO.*PORT/);
  });
});
