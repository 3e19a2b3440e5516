/**
 * PostgreSQL stopped and started again during a session: the server stays up, tells clients
 * saving is delayed, and stores everything once the database is back. The test runs its own
 * throwaway cluster (Debian's initdb/pg_ctl), never the machine's shared one.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSpan, layerRoom, listSpans } from '@spanwise/shared';
import { api, connectLayer, login, startTestServer, storedDoc, waitFor, type TestServer } from './harness.ts';
import { freePort } from './ports.ts';

const ALICE = 2;
const DEBIAN_PG = '/usr/lib/postgresql';

/**
 * The PostgreSQL server binaries: the newest Debian `/usr/lib/postgresql/<major>/bin` that has
 * initdb and pg_ctl, else `pg_config --bindir` if that has them (Debian's pg_config may belong to
 * a libpq without the server). Null when there are none.
 */
function findPostgresBin(): string | null {
  const hasServer = (dir: string) => ['initdb', 'pg_ctl'].every((bin) => existsSync(path.join(dir, bin)));
  const majors = existsSync(DEBIAN_PG) ? readdirSync(DEBIAN_PG).filter((v) => /^\d+(\.\d+)?$/.test(v)) : [];
  const candidates = majors.sort((a, b) => Number(b) - Number(a)).map((v) => path.join(DEBIAN_PG, v, 'bin'));
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on the PATH
  }
  return candidates.find(hasServer) ?? null;
}

/** The `postgres` user's uid and gid, or null when the machine has no such user. */
function postgresUser(): { uid: number; gid: number } | null {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return null;
  }
}

const BIN = findPostgresBin();
// PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
const AS_ROOT = userInfo().uid === 0;
const RUN_AS = AS_ROOT ? postgresUser() : null;
const SKIP_REASON = !BIN
  ? `no initdb and pg_ctl under ${DEBIAN_PG}/*/bin or at \`pg_config --bindir\` (install postgresql to run it)`
  : AS_ROOT && !RUN_AS
    ? 'running as root and there is no postgres user to run PostgreSQL as'
    : null;
// Said in the output, so that a machine without PostgreSQL does not pass this file unnoticed.
if (SKIP_REASON) console.warn(`PostgreSQL outage test skipped: ${SKIP_REASON}`);

/** A PostgreSQL binary's command line, as the `postgres` user when we are root. */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  const file = path.join(BIN!, bin);
  return RUN_AS ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

function pg(bin: string, args: string[]): string {
  return execFileSync(...pgCommand(bin, args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

/** The same without holding the event loop (the server under test runs in this process). */
async function pgAsync(bin: string, args: string[]): Promise<void> {
  await promisify(execFile)(...pgCommand(bin, args), { encoding: 'utf8', timeout: 60_000 });
}

describe.skipIf(SKIP_REASON !== null)(`PostgreSQL outage during a session${SKIP_REASON ? ` (skipped: ${SKIP_REASON})` : ''}`, () => {
  let dir: string;
  let port: number;
  let server: TestServer;
  const startArgs = () => ['-D', dir + '/data', '-l', dir + '/log', '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start'];
  const start = () => pg('pg_ctl', startArgs());
  const stopArgs = () => ['-D', dir + '/data', '-m', 'fast', '-w', 'stop'];
  const stop = () => pg('pg_ctl', stopArgs());

  /** Should this process end without afterAll (a crash, a kill), the cluster goes with it. */
  const stopOnExit = () => {
    try {
      pg('pg_ctl', ['-D', dir + '/data', '-m', 'immediate', 'stop']);
    } catch {
      // not running
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'spanwise-pg-'));
    process.once('exit', stopOnExit);
    if (RUN_AS) chownSync(dir, RUN_AS.uid, RUN_AS.gid);
    pg('initdb', ['-D', dir + '/data', '-A', 'trust', '-U', 'postgres', '--no-sync']);
    // A free port may be taken by another process before PostgreSQL binds it: another, then.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        start();
        break;
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
    server = await startTestServer({
      database: { config: { databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, dataDir: 'memory://' }, drop: async () => {} },
    });
  }, 120_000);

  afterAll(async () => {
    // Each step whatever the one before did: a throwaway cluster must never outlive the tests.
    try {
      await server?.close();
    } finally {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
      process.off('exit', stopOnExit);
    }
  });

  // Its own waits add up to ~40 s, and pg_ctl may take its time on a loaded machine.
  it('keeps the session alive, says saving is delayed, and stores everything once back', { timeout: 180_000 }, async () => {
    const room = layerRoom(1, ALICE);
    const aliceCookie = await login(server.url, 'alice');
    const alice = connectLayer(server.url, room, aliceCookie);
    const dana = connectLayer(server.url, room, await login(server.url, 'dana'));
    // Not one socket closes through the outage: a server that dropped what it could not store
    // and had its clients reconnect (so that they sent it all again) would not pass.
    let closes = 0;
    for (const client of [alice, dana]) client.provider.on('connection-close', () => void closes++);
    let aliceLeft = false;
    try {
      await Promise.all([alice.synced, dana.synced]);
      for (let i = 0; i < 20; i++) addSpan(alice.doc, { label: 'GPE', start: i, end: i + 1, quote: 'x', author: ALICE });
      await waitFor(() => listSpans(dana.doc).length === 20, 'the first 20 spans at dana');

      // PostgreSQL stops while alice writes: some of her edits are being committed as it goes.
      let written = 20;
      const write = () => addSpan(alice.doc, { label: 'ORG', start: written, end: written + 1, quote: 'x', author: ALICE }, `s${written++}`);
      const writing = setInterval(write, 10);
      const delayed = () =>
        [...dana.provider.awareness.getStates().values()].some((s) => (s as { server?: { saving?: string } }).server?.saving === 'delayed');
      const beforeStop = written;
      try {
        await pgAsync('pg_ctl', stopArgs());
        expect(written).toBeGreaterThan(beforeStop); // she went on writing while it stopped
        await waitFor(delayed, 'the saving-delayed notice', 10_000);
      } finally {
        clearInterval(writing);
      }
      // What is not stored is not broadcast: nothing written from now on reaches dana.
      const atDana = listSpans(dana.doc).length;
      for (let i = 0; i < 5; i++) write();
      await new Promise((r) => setTimeout(r, 500));
      expect(listSpans(dana.doc)).toHaveLength(atDana);
      const health = await fetch(`${server.url}/api/health`);
      expect(health.status).toBe(503);
      // A request the database must answer is refused as such: 503 and when to try again, not a 500.
      const projects = await api<{ error: { code: string } }>(server.url, aliceCookie, '/api/projects');
      expect(projects.status).toBe(503);
      expect(projects.body.error.code).toBe('database_unavailable');
      expect(projects.headers.get('retry-after')).toBe('5');
      expect(alice.provider.wsconnected && dana.provider.wsconnected).toBe(true);
      expect(closes).toBe(0);
      // Alice closes her tab: what she wrote is the server's alone to store now.
      expect(server.sync.stats().queued).toBeGreaterThan(0);
      alice.destroy();
      aliceLeft = true;

      await pgAsync('pg_ctl', startArgs());
      await waitFor(() => listSpans(dana.doc).length === written, `all ${written} spans at dana after the restart`, 20_000);
      expect(closes).toBe(1); // alice's own, on leaving
      await waitFor(() => !delayed(), 'the notice withdrawn');
      const stored = await storedDoc(server.database.db, room);
      expect(listSpans(stored)).toHaveLength(written);
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
      expect((await api(server.url, aliceCookie, '/api/projects')).status).toBe(200);
    } finally {
      if (!aliceLeft) alice.destroy();
      dana.destroy();
    }
  });
});
