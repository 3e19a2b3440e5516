/**
 * Starts one Spanwise server: database (migrated, demo seeded), HTTP app and sync, on one port.
 * Used by main.ts and by the integration tests (port 0, their own database).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { waitAtMost } from './sync/wait-at-most.ts';
import { createApp, createServices } from './app.ts';
import type { Config } from './config.ts';
import { openDatabase, type OpenDatabase } from './db/database.ts';
import type { QueueLimits } from './db/pglite-dialect.ts';
import { seedDemo } from './features/demo/demo.seed.ts';
import { sessionCookieName } from './features/auth/auth.service.ts';
import { createSyncMetrics } from './features/metrics/sync-metrics.ts';
import { createLogger, logThrottle, type Logger } from './log.ts';
import { attachSync } from './sync/adapters/ws-upgrade.ts';
import { KyselyStore } from './sync/adapters/kysely-store.ts';
import { isLoopbackName } from './http/allowed-hosts.ts';
import { RedisBus } from './sync/adapters/redis-bus.ts';
import { SyncServer } from './sync/sync-server.ts';

/** How long an idle HTTP connection is kept (Node's default is 5 s). */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** On shutdown, how long HTTP requests under way may go on once the rooms have stored what they hold. */
const REQUESTS_END_MS = 5_000;

export interface RunningServer {
  url: string;
  port: number;
  database: OpenDatabase;
  sync: SyncServer;
  /** The HTTP server the app and the sync upgrades are served on. */
  httpServer: Server;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Also export Node process metrics (memory, event loop lag); main.ts turns this on. */
  processMetrics?: boolean;
  /** Embedded PGlite on disk: how free space is read (tests stand in for a disk filling up). */
  diskFreeBytes?: (dir: string) => number;
  /** Embedded PGlite: how long a query may wait for the connection, and how many may wait. */
  databaseQueue?: Partial<QueueLimits>;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  const database = await openDatabase({
    ...config,
    pgliteMaintenance: { walBytes: config.pgliteMaintenanceWalBytes },
    diskGuard: { reserveBytes: config.pgliteMinFreeBytes, ...(options.diskFreeBytes ? { freeBytes: options.diskFreeBytes, checkEveryMs: 50 } : {}) },
    queue: options.databaseQueue,
    log,
  });
  try {
    if (config.demo && (await seedDemo(database.db, { seedsDir: config.seedsDir, password: config.demoPassword }))) {
      log.info('demo_seeded', {});
    }
    if (config.demo && config.demoPassword === 'demo' && !isLoopbackName(config.host)) {
      log.warn('demo_password_default', {
        host: config.host,
        advice: 'the demo accounts sign in with the password "demo" from any machine that reaches this one: set DEMO_PASSWORD, or DEMO=0',
      });
    }
  } catch (err) {
    await database.close();
    throw err;
  }
  // The metrics read the sync server's state at scrape time; the sync server reports to them.
  let sync: SyncServer | null = null;
  const metrics = createSyncMetrics(() => sync?.stats() ?? { rooms: 0, sockets: 0, queued: 0, queuedBytes: 0 }, {
    processMetrics: options.processMetrics,
  });
  const store = new KyselyStore(database.db, {
    compactAfterRows: config.sync.compactAfterRows,
    compactAfterBytes: config.sync.compactAfterBytes,
    executeEach: database.executeEach,
    diskRoomFor: database.diskRoomFor,
    sharedDatabase: database.kind === 'postgres',
    writeDeadlineMs: config.sync.storeWriteDeadlineMs,
    log,
    observer: metrics.observer,
  });
  if (database.executeEach) {
    const started = performance.now();
    try {
      await store.warmUp(config.storeWarmupCommits);
      if (config.storeWarmupCommits > 0) log.info('store_warmed_up', { commits: config.storeWarmupCommits, ms: Math.round(performance.now() - started) });
    } catch (err) {
      // (Only a start's speed is at stake: a database that fails here fails the first write too.)
      log.warn('store_warm_up_failed', { error: String(err) });
    }
  }
  const bus = config.redisUrl
    ? new RedisBus({
        url: config.redisUrl,
        instanceId: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
        maxLen: config.sync.redisStreamMaxLen,
        keyPrefix: config.redisKeyPrefix,
        log,
        observer: metrics.observer,
      })
    : null;
  sync = new SyncServer({ store, log, limits: config.sync, storeDelayNoticeMs: config.sync.storeDelayNoticeMs, observer: metrics.observer, bus });
  const deps = { config, db: database.db, dbKind: database.kind, log, metrics: metrics.registry };
  const services = createServices(deps);
  const app = createApp(deps, services);

  let server: Server;
  try {
    server = await new Promise<Server>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s as Server));
      // Longer than a proxy keeps idle upstream connections (nginx: 60 s), so it never sends a
      // request on one this server is closing at that moment (a 502 nginx does not retry).
      (s as Server).keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      (s as Server).headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
      s.once('error', reject);
    });
  } catch (err) {
    // The port is taken, say: let go of what was opened before failing.
    await sync.close();
    await store.close();
    await database.close();
    throw err;
  }
  // Errors after the start (a failed accept: out of file descriptors or memory) are logged; the
  // one-shot listener above is spent, and an 'error' with none would end the process. Out of
  // file descriptors, accepts fail many times a second: one line a second at most.
  const serverErrors = logThrottle(1_000, { leftOut: (_, leftOut) => log.error('http_server_error', { leftOut }) });
  server.on('error', (err) => {
    const pass = serverErrors('error');
    if (pass) log.error('http_server_error', { error: String(err), ...pass });
  });
  const ws = attachSync(
    server,
    sync,
    {
      userForToken: services.auth.userForToken,
      usersForTokens: services.auth.usersForTokens,
      roomAccess: services.access.roomAccess,
      roomAccessMany: services.access.roomAccessMany,
      onChange: services.access.onChange,
    },
    log,
    {
      sessionCookie: sessionCookieName(config.secureCookies),
      allowedHosts: config.allowedHosts,
      httpsOnly: config.secureCookies,
      maxMessageBytes: config.sync.maxMessageBytes,
      pingIntervalMs: config.sync.pingIntervalMs,
      accessRecheckMs: config.sync.accessRecheckMs,
      maxSocketsPerUser: config.sync.maxSocketsPerUser,
      socketOpensPerSecond: config.sync.socketOpensPerSecond,
      maxBufferedBytes: config.sync.maxBufferedBytes,
      maxBufferedMs: config.sync.maxBufferedMs,
      accessTimeoutMs: config.sync.accessTimeoutMs,
      accessCacheMs: config.sync.accessCacheMs,
    },
  );
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' ? 'localhost' : config.host;
  let closing: Promise<void> | null = null;

  return {
    url: `http://${host}:${port}`,
    port,
    database,
    sync,
    httpServer: server,
    close() {
      closing ??= (async () => {
        ws.stopAccepting();
        // No new connection from now on (a proxy sends new requests to another instance), and
        // the idle ones go; requests under way go on while the rooms store what they hold.
        const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Rooms unloaded on the way out do not compact now (they do at their next load); one
        // under way is let finish (5 s at most) before the database closes.
        const compactionsEnded = store.close(5_000);
        await sync.close();
        ws.close();
        // Requests still under way get a few seconds more; then what is left is cut. (A socket
        // no longer HTTP's, that nothing here closes, would hold the close for good: not past 10 s.)
        await waitAtMost(httpClosed, REQUESTS_END_MS);
        server.closeAllConnections();
        await waitAtMost(httpClosed, 10_000);
        await compactionsEnded;
        // A query still waiting on a PostgreSQL that stopped answering (a route that drops
        // packets) would hold the pool's end until TCP gives up.
        await waitAtMost(database.close(), 10_000);
      })();
      return closing;
    },
  };
}
