/** Entry point: reads the config, starts the server, and shuts down cleanly on SIGTERM/SIGINT. */
import { loadConfig, type Config } from './config.ts';
import { createLogger, exitAfterLog, logLeftOutCounts } from './log.ts';
import { startServer, type RunningServer } from './server.ts';

/** A start that cannot go on says why in one log line (no stack trace) and exits 1. */
function cannotStart(err: unknown): Promise<never> {
  logLeftOutCounts(); // (before the line that says why: the last matters most)
  createLogger('error').error('start_failed', { error: err instanceof Error ? err.message : String(err), code: (err as { code?: unknown })?.code });
  return exitAfterLog(1);
}

// The log goes to stdout; a reader that goes away (a pipe closed, `| head`, a log shipper
// restarting) makes the next write fail with EPIPE, emitted as an 'error' on stdout that would
// otherwise end the process. The log is best effort: the server goes on without it.
process.stdout.on('error', () => {});

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  await cannotStart(err);
  throw err; // (never reached: cannotStart exits)
}
const log = createLogger(config.logLevel);
// Heard from the start: a signal while the server starts (creating its database, migrating, warming
// up) lets it finish starting, then closes it as cleanly as later, its database folder let go.
let stopping = false;
let started: RunningServer | null = null;
const stop = (server: RunningServer) =>
  server.close().then(
    () => exitAfterLog(0),
    (err) => {
      log.error('shutdown_failed', { error: String(err) });
      return exitAfterLog(1);
    },
  );
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      // A second one while it still starts (stuck on a lock, or a migration waiting on one): at once.
      if (started === null) {
        log.warn('start_abandoned', { signal });
        void exitAfterLog(1);
      }
      return;
    }
    stopping = true;
    log.info('shutting_down', { signal, starting: started === null });
    if (started) void stop(started);
  });
}
try {
  started = await startServer(config, { log, processMetrics: true });
} catch (err) {
  await cannotStart(err);
  throw err; // (never reached: cannotStart exits)
}
log.info('listening', { url: started.url, db: started.database.kind, scaleOut: config.redisUrl !== null });
if (stopping) void stop(started);
