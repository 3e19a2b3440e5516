import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log.ts';

/**
 * Gives every request an id (echoed as `x-request-id`) and logs one JSON line per request:
 * method, path, status, duration and the signed-in user's id. Never bodies or cookies.
 * `answered` is told each API request's status (for the metrics).
 */
export function requestLog(log: Logger, answered: (status: number) => void = () => {}): MiddlewareHandler {
  return async (c, next) => {
    const requestId = randomUUID();
    const started = performance.now();
    c.header('x-request-id', requestId);
    await next();
    const user = c.get('user' as never) as { id: number } | null | undefined;
    const fields = {
      requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      userId: user?.id ?? null,
    };
    if (c.req.path.startsWith('/api/')) {
      log.info('http_request', fields);
      answered(c.res.status);
    } else log.debug('http_request', fields);
  };
}
