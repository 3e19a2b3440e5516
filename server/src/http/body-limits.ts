/**
 * Request body limits. Every body is limited to 64 KiB before any route reads it; the one route
 * that takes more (a new document, whose text may be 5 million characters) is left alone here
 * and applies 16 MiB itself, once it knows the caller is the project's owner: no one else can
 * make the server hold 16 MiB for a request (without a Content-Length, a limit must buffer the
 * body to measure it).
 */
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

/**
 * In the new-document route, once the caller may add one: its body may take 16 MiB (past that,
 * the limit's onError throws the 413), and `handle` runs with one of LARGE_BODIES_AT_ONCE places;
 * with none free, a 503 (`uploads_busy`, Retry-After) comes back at once, before the body is read.
 */
export async function withLargeBody<T>(c: Context, handle: () => Promise<T>): Promise<T> {
  if (largeBodies >= LARGE_BODIES_AT_ONCE) {
    c.header('Retry-After', '5');
    throw new AppError(503, 'uploads_busy', `at most ${LARGE_BODIES_AT_ONCE} documents are read at once: try again in a moment`);
  }
  largeBodies++;
  try {
    await large(c, async () => {});
    return await handle();
  } finally {
    largeBodies--;
  }
}
