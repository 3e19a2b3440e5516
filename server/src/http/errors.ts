/**
 * Typed errors, mapped to JSON in one place: `{ error: { code, message, field? } }`.
 *
 * @example
 *   throw new AppError(404, 'not_found', 'document 7 not found');
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import { logThrottle, type Logger } from '../log.ts';
import { DatabaseBusyError, isDiskFull } from '../db/pglite-dialect.ts';

export class AppError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found`);
export const unauthenticated = () => new AppError(401, 'unauthenticated', 'sign in first');
export const forbidden = (message = 'you may not do this') => new AppError(403, 'forbidden', message);

/** Parses a positive integer route parameter, or answers 404 (an id that cannot exist). */
export function idParam(value: string | undefined, what: string): number {
  const n = Number(value);
  if (!value || !/^[1-9][0-9]{0,9}$/.test(value) || n > 2147483647) throw notFound(what);
  return n;
}

/**
 * Refuses (415) a body not sent as JSON: a page elsewhere can post a form (text/plain, say)
 * without asking, and the browser sends this site's cookie with it when the page is same-site;
 * JSON from another origin needs a CORS preflight, which this server never grants. jsonBody
 * checks it; a route that buffers a large body first checks it before that.
 */
export function requireJson(c: Context): void {
  if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
    throw new AppError(415, 'unsupported_media_type', 'send the body as JSON (content-type: application/json)');
  }
}

/** Reads a JSON body and validates it; errors are 400s naming the first bad field. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  requireJson(c);
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new AppError(400, 'invalid_json', 'the request body is not valid JSON');
  }
  return validated(schema, raw, 'invalid_body');
}

/** Validates the query string; errors are 400s naming the first bad parameter. */
export function queryParams<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return validated(schema, c.req.query(), 'invalid_query');
}

function validated<S extends z.ZodType>(schema: S, raw: unknown, code: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || undefined;
    const message = field ? `${field}: ${issue?.message}` : (issue?.message ?? 'invalid input');
    throw new AppError(400, code, message, field);
  }
  return parsed.data;
}

/**
 * Errors that say the database cannot be reached just now, not that the request is wrong: a
 * connection refused, reset or timed out, PostgreSQL shutting down or starting up, too many
 * connections, a standby that takes no writes. Request handlers talk to nothing else.
 */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction: a standby, during a failover
]);
/** A connection's socket failing: only with the failed call named (a client aborting a body read has the code, not the call). */
const SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);
const UNREACHABLE_MESSAGES = /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable)/;

function databaseUnreachable(err: unknown): boolean {
  const { code, message, syscall } = (err ?? {}) as { code?: unknown; message?: unknown; syscall?: unknown };
  if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  if (typeof code === 'string' && SOCKET_CODES.has(code) && typeof syscall === 'string') return true;
  return typeof message === 'string' && UNREACHABLE_MESSAGES.test(message);
}

/**
 * The database has more to do than it can take on in time: PGlite's line, or pg's pool with
 * every connection taken (database.ts tells that from a pool that cannot connect at all).
 */
function databaseBusy(err: unknown): boolean {
  // (57014, query_canceled: a query past its deadline, cancelled: see withDeadline in database.ts.)
  return err instanceof DatabaseBusyError || (err as { code?: unknown } | null)?.code === '57014';
}

export function errorHandler(log: Logger) {
  // One line per kind every 10 s, with how many were left out: an outage fails every request.
  const refusals = logThrottle(10_000, { leftOut: (event, leftOut) => log.warn(event, { leftOut }) });
  const refused = (event: string, c: Context, fields: Record<string, unknown> = {}) => {
    const pass = refusals(event);
    if (pass) log.warn(event, { path: c.req.path, method: c.req.method, ...fields, ...pass });
  };
  return (err: Error, c: Context) => {
    if (err instanceof AppError) {
      return c.json({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } }, err.status);
    }
    if (isDiskFull(err)) {
      // The embedded database's disk is nearly full (StorageFullError), or PostgreSQL's is.
      refused('request_refused_disk_full', c);
      return c.json({ error: { code: 'storage_full', message: 'the server’s disk is full: nothing can be saved until space is freed' } }, 503);
    }
    if (databaseBusy(err)) {
      // PGlite's one connection has more waiting than it can serve in time (see pglite-dialect.ts),
      // or every pooled connection to PostgreSQL is in use.
      refused('request_refused_db_busy', c);
      c.header('Retry-After', '1');
      return c.json({ error: { code: 'database_busy', message: 'the server is too busy to answer just now: try again in a moment' } }, 503);
    }
    if (databaseUnreachable(err)) {
      refused('request_refused_db_unreachable', c, { error: String((err as { code?: unknown }).code ?? err.message) });
      c.header('Retry-After', '5');
      return c.json({ error: { code: 'database_unavailable', message: 'the database cannot be reached just now: try again shortly' } }, 503);
    }
    if (err instanceof HTTPException) {
      // Hono's own refusals (bearerAuth's 401, say); the body limit throws an AppError instead.
      // Their headers are kept: a 401 must say how to authenticate (WWW-Authenticate).
      err.getResponse().headers.forEach((value, name) => {
        if (name !== 'content-type' && name !== 'content-length') c.header(name, value);
      });
      return c.json({ error: { code: 'http_error', message: err.message || 'request refused' } }, err.status);
    }
    log.error('request_failed', { path: c.req.path, method: c.req.method, error: String(err?.stack ?? err) });
    return c.json({ error: { code: 'internal', message: 'internal server error' } }, 500);
  };
}
