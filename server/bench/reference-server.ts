/**
 * The reference server for the sync benchmark, run as a child process: y-websocket 1.5.4's own
 * in-memory `setupWSConnection` behind a plain `ws` WebSocketServer. No auth, no persistence,
 * `gc: true`. Rooms are addressed like ours (`/sync/<room>`), so clients connect the same way.
 *
 * Env: PORT (required), HOST (default 127.0.0.1), PAUSE_US (default 0: a diagnostic; the server
 * busy-waits that long after each document update arrives, before y-websocket's handler applies
 * and sends it, as an in-thread database write before the broadcast would).
 *
 * GET /metrics answers one Prometheus histogram, `reference_fanout_seconds`: for each document update a client sends, from the socket's message
 * event to the end of y-websocket's handler, which applies it and sends it to every peer: the
 * counterpart of our `spanwise_sync_fanout_seconds`, with the same buckets. Any other HTTP
 * request answers 200 "ok" (readiness).
 */
import { createServer, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { Histogram, Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { LATENCY_BUCKETS } from '../src/features/metrics/sync-metrics.ts';

type SetupWSConnection = (conn: WebSocket, req: IncomingMessage, options: { docName: string; gc: boolean }) => void;

// Persistence and the HTTP callback are switched on by env in 1.5.4's utils; keep them off.
for (const name of ['YPERSISTENCE', 'CALLBACK_URL', 'GC']) delete process.env[name];
const require = createRequire(import.meta.url);
const { setupWSConnection } = require('y-websocket-ref/bin/utils') as { setupWSConnection: SetupWSConnection };

const port = Number(process.env.PORT);
const host = process.env.HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port <= 0) throw new Error('PORT must be set');
const pauseMs = Number(process.env.PAUSE_US ?? 0) / 1000;
if (!Number.isFinite(pauseMs) || pauseMs < 0) throw new Error('PAUSE_US must be a number ≥ 0');

// y-protocols' message numbers, written out: importing y-protocols (or @spanwise/shared) here
// would load a second Yjs beside y-websocket 1.5.4's, and Yjs warns about that on stderr.
const MESSAGE_SYNC = 0;
const SYNC_STEP_2 = 1;
const SYNC_UPDATE = 2;

/** A sync update or step 2: the messages that carry document edits (each kind fits one byte). */
function isEdit(data: ArrayBuffer): boolean {
  const bytes = new Uint8Array(data); // setupWSConnection sets binaryType 'arraybuffer'
  return bytes[0] === MESSAGE_SYNC && (bytes[1] === SYNC_UPDATE || bytes[1] === SYNC_STEP_2);
}

const registry = new Registry();
const fanOut = new Histogram({
  name: 'reference_fanout_seconds',
  help: 'Document update received → applied and sent to every peer',
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

const server = createServer((req, res) => {
  if (req.url === '/metrics') {
    void registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
});
const wss = new WebSocketServer({ server });
wss.on('connection', (conn, req) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const docName = decodeURIComponent(url.pathname.replace(/^\/sync\//, ''));
  setupWSConnection(conn, req, { docName, gc: true });
  // y-websocket's handler runs synchronously between these two listeners.
  let receivedAt = 0;
  conn.prependListener('message', (data: ArrayBuffer) => {
    receivedAt = performance.now();
    if (pauseMs > 0 && isEdit(data)) while (performance.now() - receivedAt < pauseMs);
  });
  conn.on('message', (data: ArrayBuffer) => {
    if (isEdit(data)) fanOut.observe((performance.now() - receivedAt) / 1000);
  });
});
server.listen(port, host);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
