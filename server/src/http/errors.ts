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
import type { Logger } from '../log.ts';
import { isDiskFull } from '../db/pglite-dialect.ts';

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

export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof AppError) {
      return c.json({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } }, err.status);
    }
    if (isDiskFull(err)) {
      // The embedded database's disk is nearly full (StorageFullError), or PostgreSQL's is.
      log.warn('request_refused_disk_full', { path: c.req.path, method: c.req.method });
      return c.json({ error: { code: 'storage_full', message: 'the server’s disk is full: nothing can be saved until space is freed' } }, 503);
    }
    if (err instanceof HTTPException) {
      // Hono's own refusals (bearerAuth's 401, say); the body limit throws an AppError instead.
      return c.json({ error: { code: 'http_error', message: err.message || 'request refused' } }, err.status);
    }
    log.error('request_failed', { path: c.req.path, method: c.req.method, error: String(err?.stack ?? err) });
    return c.json({ error: { code: 'internal', message: 'internal server error' } }, 500);
  };
}
