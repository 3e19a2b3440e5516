/**
 * Request body limits. Every body is limited to 64 KiB before any route reads it; the one route
 * that takes more (a new document, whose text may be 5 million characters) is left alone here
 * and applies 16 MiB itself, once it knows the caller is the project's owner: no one else can
 * make the server hold 16 MiB for a request (without a Content-Length, a limit must buffer the
 * body to measure it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AppError } from './errors.ts';

/** A new document's body: its owner only. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Every other request body: sign-in, members, statuses. */
export const MAX_SMALL_BODY_BYTES = 64 * 1024;
const NEW_DOCUMENT_PATH = /^\/api\/projects\/[^/]+\/documents\/?$/;

const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new AppError(413, 'body_too_large', `this request's body is limited to ${maxSize} bytes`);
    },
  });
const small = limit(MAX_SMALL_BODY_BYTES);
const large = limit(MAX_BODY_BYTES);

/** 64 KiB for every body, except a new document's (see withLargeBody). */
export function bodyLimits(): MiddlewareHandler {
  return (c, next) => (c.req.method === 'POST' && NEW_DOCUMENT_PATH.test(c.req.path) ? next() : small(c, next));
}

/**
 * New documents read at once at most, over every owner: each holds its body about three times
 * over while it is read (bytes, text, parsed JSON: some 100 MB at 16 MiB), so a few dozen in
 * parallel would take the process's memory.
 */
export const LARGE_BODIES_AT_ONCE = 4;
let largeBodies = 0;
/** How many new documents' bodies are being read (or used) now. */
export const largeBodiesTaken = (): number => largeBodies;

/**
 * In the new-document route, once the caller may add one: its body may take 16 MiB (past that,
 * the limit's onError throws the 413), and is read by `read` with one of LARGE_BODIES_AT_ONCE
 * places, kept while `use` runs on what it read; with none free, a 503 (`uploads_busy`,
 * Retry-After) comes back at once, before the body is read. A body of which no byte arrives for
 * `stallMs` is given up, so that stalled uploads do not hold the places until Node's request
 * timeout (300 s): the client is answered 408 `upload_stalled` and its connection closed.
 */
export async function withLargeBody<B, T>(c: Context, stallMs: number, read: () => Promise<B>, use: (body: B) => Promise<T>): Promise<T> {
  if (largeBodies >= LARGE_BODIES_AT_ONCE) {
    c.header('Retry-After', '5');
    throw new AppError(503, 'uploads_busy', `at most ${LARGE_BODIES_AT_ONCE} documents are read at once: try again in a moment`);
  }
  largeBodies++;
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  const incoming = env?.incoming;
  const stalledMessage = `no part of the document arrived for ${stallMs} ms`;
  let stalled = false;
  const stall = () => {
    stalled = true;
    const socket = incoming?.socket;
    if (!socket) return;
    // Answered on the socket itself, as Node answers its own request timeout: the response cannot
    // wait for a body that does not come, and the connection must go with the body half read.
    // (The route's own answer to the failed read then finds the socket gone.)
    // (Only while this request's response holds the socket: a pipelined one behind an earlier
    // response still going out must not have its answer read as that one's.)
    const outgoing = env?.outgoing;
    if (socket.writable && outgoing?.socket === socket && !outgoing.headersSent) socket.write(rawErrorResponse(408, 'Request Timeout', 'upload_stalled', stalledMessage));
    socket.destroy();
  };
  // (The socket's idle timer: any byte read puts it back. Until the body is read, not while it
  // is used: a slow database is no stalled client.)
  incoming?.setTimeout(stallMs, stall);
  const readDone = () => {
    incoming?.off('timeout', stall);
    incoming?.setTimeout(0);
  };
  try {
    let body: B;
    try {
      await large(c, async () => {});
      body = await read();
    } catch (err) {
      if (stalled) throw new AppError(408, 'upload_stalled', stalledMessage);
      throw err;
    } finally {
      readDone();
    }
    return await use(body);
  } finally {
    largeBodies--;
  }
}

/** An error answer in the API's JSON shape, as bytes for a socket, closing the connection. */
function rawErrorResponse(status: number, statusText: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return [
    `HTTP/1.1 ${status} ${statusText}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
