import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../src/config.ts';
import { startServer } from '../src/server.ts';
import { createLogger } from '../src/log.ts';
import { api, createTestDatabase, databaseKinds, login, startTestServer, waitFor, type TestDatabase } from './harness.ts';
import { spawnServer } from './processes.ts';
import { INLINE_MAX_CHARS } from '../src/features/export/convert.ts';

/** Sessions PostgreSQL has open on the database `url` names (the asking one left out). */
async function sessionsOn(url: string): Promise<number> {
  const name = new URL(url).pathname.slice(1);
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('select count(*) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

describe.each(databaseKinds())('start-up on a port already taken (%s)', (kind) => {
  let taken: Server;
  let port: number;
  let database: TestDatabase;

  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as AddressInfo).port;
    database = await createTestDatabase(kind, { persistent: true });
  });
  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
    await database.drop();
  });

  it('fails with the listen error, having let go of the database it opened, which a later start opens', async () => {
    const config = testConfig({ ...database.config, port, host: '127.0.0.1' });
    await expect(startServer(config)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // The database was opened and migrated before listening: its connections are closed again.
    if (config.databaseUrl) expect(await sessionsOn(config.databaseUrl)).toBe(0);

    const server = await startTestServer({ kind, database });
    try {
      const res = await fetch(`${server.url}/api/health`);
      expect(await res.json()).toEqual({ ok: true, db: kind });
    } finally {
      await server.stop();
    }
  });
});

describe('npm start that cannot start', () => {
  /** Runs the entry point as `npm start` does; resolves its exit code and output. */
  const runMain = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const root = path.resolve(import.meta.dirname, '../..');
      execFile(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  it('says why in one log line and exits 1: a bad setting, and a disk below the database’s reserve', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'spanwise-start-'));
    try {
      for (const [env, why] of [
        [{ PORT: 'abc' }, /invalid configuration: PORT/],
        [{ PORT: '0', DATA_DIR: path.join(dir, 'data'), PGLITE_MIN_FREE_MB: '100000000' }, /MiB free; the embedded database needs at least 100000048 MiB/],
      ] as const) {
        const { code, stdout, stderr } = await runMain(env);
        expect(code).toBe(1);
        const line = JSON.parse(stdout.trim().split('\n').pop()!) as { level: string; event: string; error: string };
        expect(line).toMatchObject({ level: 'error', event: 'start_failed', error: expect.stringMatching(why) });
        expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
      }
      expect(await readdir(dir)).toEqual([]); // nothing made on that disk
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finishes starting when stopped while it creates its database, then closes cleanly, its folder let go', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'spanwise-stop-'));
    try {
      const root = path.resolve(import.meta.dirname, '../..');
      const proc = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
        cwd: root,
        env: { ...process.env, PORT: '0', DATA_DIR: path.join(parent, 'data'), LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      proc.stdout!.on('data', (d) => (stdout += String(d)));
      const exited = new Promise<[number | null, string | null]>((resolve) => proc.once('exit', (code, signal) => resolve([code, signal])));
      // Its database is being created (beside its folder, then moved into place): stopped now.
      await waitFor(async () => (await readdir(parent)).some((name) => name.startsWith('data.creating-')), 'the database being created', 30_000);
      proc.kill('SIGTERM');
      expect(await exited).toEqual([0, null]);
      const events = stdout.trim().split('\n').map((line) => (JSON.parse(line) as { event: string; starting?: boolean }));
      expect(events.find((e) => e.event === 'shutting_down')).toMatchObject({ starting: true });
      expect(events.map((e) => e.event)).toContain('listening');
      expect((await readdir(path.join(parent, 'data'))).sort()).toEqual(expect.arrayContaining(['PG_VERSION']));
      expect(await readdir(path.join(parent, 'data'))).not.toContain('spanwise.lock');
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  }, 90_000);

  it('goes on serving when whatever reads its log goes away (a closed pipe)', async () => {
    const server = await spawnServer({ DATA_DIR: 'memory://', DEMO: '0' });
    try {
      server.proc.stdout!.destroy(); // the reader of its stdout is gone: the next log line meets EPIPE
      for (let i = 0; i < 20; i++) {
        // Each request is a log line.
        expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(server.proc.exitCode).toBeNull();
    } finally {
      await server.kill();
    }
  });

  it('logs an error of its HTTP server after the start (a failed accept), and goes on', async () => {
    const lines: Array<{ event?: string; error?: string }> = [];
    const log = createLogger('info', (line) => lines.push(JSON.parse(line) as { event?: string }));
    const server = await startServer(testConfig({ databaseUrl: null, dataDir: 'memory://', port: 0, host: '127.0.0.1', demo: false }), { log });
    try {
      for (const n of [1, 2, 3]) server.httpServer.emit('error', Object.assign(new Error(`accept failed ${n}`), { code: 'ENFILE' }));
      // The first is logged; a burst is not (at most one line a second, with how many were left out).
      expect(lines.filter((l) => l.event === 'http_server_error').map((l) => l.error)).toEqual(['Error: accept failed 1']);
      // The burst over, its count (even if no other error comes).
      await new Promise((r) => setTimeout(r, 1_050));
      expect(lines.filter((l) => l.event === 'http_server_error')).toEqual([
        expect.objectContaining({ error: 'Error: accept failed 1' }),
        { level: 'error', event: 'http_server_error', leftOut: 2, time: expect.any(String) },
      ]);
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('npm start, exporting a long document', () => {
  it('converts it on its worker thread, which loads the TypeScript it needs as the server does', async () => {
    const server = await spawnServer({ DATA_DIR: 'memory://' });
    try {
      const admin = await login(server.url, 'admin');
      const text = 'Vienna and Prague signed the accord. '.repeat(Math.ceil((INLINE_MAX_CHARS + 1) / 37));
      const { id } = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Long', text }) })).body;
      for (const format of ['conll', 'jsonl', 'w3c']) {
        const res = await fetch(`${server.url}/api/projects/1/export?format=${format}`, { headers: { cookie: admin } });
        expect(res.status).toBe(200);
        const body = await res.text(); // (a conversion that failed would break the transfer off)
        if (format === 'conll') expect(body).toContain(`-DOCSTART- -X- document=${id};layer=gold O`);
        if (format === 'jsonl') expect(body.trimEnd().split('\n').map((l) => JSON.parse(l).document_id)).toContain(id);
        if (format === 'w3c') expect(JSON.parse(body)).toMatchObject({ type: 'AnnotationCollection' });
      }
    } finally {
      await server.kill('SIGTERM');
    }
  });
});

describe('shutting down', () => {
  it('lets a request under way finish, takes no new connection, and ends though a client holds a refused upgrade open', async () => {
    const server = await startTestServer({});
    const admin = await login(server.url, 'admin');
    const { port } = new URL(server.url);
    // An upload whose body is half sent when the shutdown begins.
    const body = JSON.stringify({ title: 'Late', text: 'Iran denied it.' });
    const upload = request({ host: '127.0.0.1', port, path: '/api/projects/1/documents', method: 'POST', headers: { cookie: admin, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
    const answered = new Promise<number>((resolve, reject) => {
      upload.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      upload.on('error', reject);
    });
    upload.write(body.slice(0, 10));
    // A client that never ends its side of an upgrade the server refuses.
    const stray = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true }, () =>
      stray.write('GET /nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
    );
    stray.on('error', () => {});
    await new Promise((r) => setTimeout(r, 200));
    const stopped = server.stop();
    await new Promise((r) => setTimeout(r, 200));
    await expect(fetch(`${server.url}/api/health`)).rejects.toThrow();
    upload.end(body.slice(10));
    expect(await answered).toBe(201);
    await stopped;
    stray.destroy();
  });
});
