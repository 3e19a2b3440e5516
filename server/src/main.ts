/** Entry point: reads the config, starts the server, and shuts down cleanly on SIGTERM/SIGINT. */
import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { startServer } from './server.ts';

const config = loadConfig();
const log = createLogger(config.logLevel);
const server = await startServer(config, { log, processMetrics: true });
log.info('listening', { url: server.url, db: server.database.kind, scaleOut: config.redisUrl !== null });

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info('shutting_down', { signal });
    server.close().then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown_failed', { error: String(err) });
        process.exit(1);
      },
    );
  });
}
