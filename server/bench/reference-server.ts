/**
 * The reference server for the sync benchmark, run as a child process: y-websocket 1.5.4's own
 * in-memory `setupWSConnection` behind a plain `ws` WebSocketServer. No auth, no persistence,
 * `gc: true`. Rooms are addressed like ours (`/sync/<room>`), so clients connect the same way.
 *
 * Env: PORT (required), HOST (default 127.0.0.1). Any HTTP request answers 200 "ok" (readiness).
 */
import { createServer, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { WebSocketServer, type WebSocket } from 'ws';

type SetupWSConnection = (conn: WebSocket, req: IncomingMessage, options: { docName: string; gc: boolean }) => void;

// Persistence and the HTTP callback are switched on by env in 1.5.4's utils; keep them off.
for (const name of ['YPERSISTENCE', 'CALLBACK_URL', 'GC']) delete process.env[name];
const require = createRequire(import.meta.url);
const { setupWSConnection } = require('y-websocket-ref/bin/utils') as { setupWSConnection: SetupWSConnection };

const port = Number(process.env.PORT);
const host = process.env.HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port <= 0) throw new Error('PORT must be set');

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
});
const wss = new WebSocketServer({ server });
wss.on('connection', (conn, req) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const docName = decodeURIComponent(url.pathname.replace(/^\/sync\//, ''));
  setupWSConnection(conn, req, { docName, gc: true });
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
