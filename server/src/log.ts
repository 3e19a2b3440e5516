/**
 * Structured JSON logs: one line per event with its fields. Never log message contents or
 * passwords; room and user ids are fine.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

let sharedStdoutWriter: ((line: string) => void) | null = null;
/** One writer for every logger on stdout, so that what waits is counted once. */
const stdoutWriter = () => (sharedStdoutWriter ??= streamWriter());

/** What the log may hold in memory waiting for its reader, past which lines are dropped. */
export const MAX_WAITING_LOG_BYTES = 8 * 1024 * 1024;

/**
 * Writes lines to `out` (stdout), dropping them once more than `maxWaiting` bytes wait for a
 * reader that has stalled (a log shipper on a full disk, a slow journald) — Node would otherwise
 * hold every line in memory — until what waits has all gone out; then one line says how many
 * were dropped.
 */
export function streamWriter(out: NodeJS.WritableStream & { writableLength: number } = process.stdout, maxWaiting = MAX_WAITING_LOG_BYTES): (line: string) => void {
  let dropped = 0;
  let dropping = false;
  const resume = () => {
    dropping = false;
    if (dropped === 0) return;
    out.write(JSON.stringify({ time: new Date().toISOString(), level: 'warn', event: 'log_lines_dropped', count: dropped }) + '\n');
    dropped = 0;
  };
  return (line) => {
    if (!dropping && out.writableLength > maxWaiting) {
      dropping = true;
      out.once('drain', resume);
    }
    if (dropping) {
      dropped++;
      return;
    }
    out.write(line + '\n');
  };
}

/** Throttled events' counts waiting for their window to end (see logThrottle's `leftOut`). */
const waitingCounts = new Set<() => void>();

/**
 * Logs now every count of left-out lines that waits for its window to end: their timers do not
 * keep the process alive, so a process about to exit calls this (exitAfterLog does).
 */
export function logLeftOutCounts(): void {
  for (const flush of [...waitingCounts]) flush();
}

/** How many counts wait for their window to end (for tests: none may be kept once handed over). */
export function leftOutCountsWaiting(): number {
  return waitingCounts.size;
}

/**
 * For events that can come many times a second (a warning at every transaction, an error at
 * every failed accept): lets one line per key through every `everyMs`, with the fields to add to
 * it: `leftOut`, how many of that key were left out since the last, when any were. At most
 * `maxKeys` keys are remembered (then all are forgotten at once).
 *
 * With `leftOut`, a key's count is not kept for its next line (which may never come: a burst
 * that ends): it is handed to `leftOut` when its `everyMs` is over, and the key forgotten, so
 * that its next event is let through whole (a steady stream makes two lines each `everyMs`: one
 * in full, and the count of the others).
 *
 * @example
 *   const throttle = logThrottle(1_000, { leftOut: (key, leftOut) => log.error('http_server_error', { error: key, leftOut }) });
 *   const pass = throttle('accept');
 *   if (pass) log.error('http_server_error', { error: String(err), ...pass });
 */
export function logThrottle(
  everyMs: number,
  options: { maxKeys?: number; leftOut?: (key: string, leftOut: number) => void } = {},
): (key: string) => { leftOut?: number } | null {
  const { maxKeys = 100, leftOut: report } = options;
  interface Seen {
    at: number;
    leftOut: number;
    timer?: ReturnType<typeof setTimeout>;
    /** Hands its count on now (while its timer waits: see logLeftOutCounts). */
    flush?: () => void;
  }
  const keys = new Map<string, Seen>();
  const hand = (key: string, seen: Seen) => {
    clearTimeout(seen.timer);
    seen.timer = undefined;
    if (seen.flush) waitingCounts.delete(seen.flush);
    seen.flush = undefined;
    if (seen.leftOut === 0) return;
    const count = seen.leftOut;
    seen.leftOut = 0;
    try {
      report?.(key, count);
    } catch {
      // A count not logged (this may run on a timer, where a throw would end the process).
    }
  };
  return (key) => {
    const now = performance.now();
    const seen = keys.get(key);
    if (seen && now - seen.at < everyMs) {
      seen.leftOut++;
      if (report && !seen.timer) {
        const flush = () => {
          if (keys.get(key) !== seen) return;
          hand(key, seen);
          keys.delete(key);
        };
        seen.timer = setTimeout(flush, seen.at + everyMs - now);
        seen.timer.unref?.();
        seen.flush = flush;
        waitingCounts.add(flush);
      }
      return null;
    }
    if (!seen && keys.size >= maxKeys) {
      if (report) for (const [k, s] of keys) hand(k, s);
      keys.clear();
    }
    if (seen) {
      // (Its window is over and its timer late: the count goes on this line instead.)
      clearTimeout(seen.timer);
      if (seen.flush) waitingCounts.delete(seen.flush);
    }
    keys.set(key, { at: now, leftOut: 0 });
    return seen?.leftOut ? { leftOut: seen.leftOut } : {};
  };
}

/** Values JSON has no form for: a BigInt as its digits, an Error as `String(err)`, not `{}`. */
function fieldValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return String(value);
  return value;
}

/**
 * Exits with `code` once the lines waiting for stdout's reader have gone out, or after
 * `waitMs`: `process.exit` throws away what a slow pipe has not taken yet, and the last lines
 * (why a start or shutdown failed) matter most.
 */
export function exitAfterLog(code: number, waitMs = 2_000): Promise<never> {
  logLeftOutCounts();
  process.exitCode = code;
  const exit = () => process.exit(code);
  setTimeout(exit, waitMs);
  // Writes go out in order: the callback of this one runs once everything before it has.
  if (process.stdout.writableLength === 0) exit();
  else process.stdout.write('', exit);
  return new Promise<never>(() => {});
}

export function createLogger(level: LogLevel, write: (line: string) => void = stdoutWriter()): Logger {
  const at = (lvl: Exclude<LogLevel, 'silent'>) => (event: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const entry = { time: new Date().toISOString(), level: lvl, event };
    let line: string;
    try {
      // A field may not pass itself off as the time, level or event (they stay first, too).
      line = JSON.stringify({ ...entry, ...fields, ...entry }, fieldValue);
    } catch (err) {
      // A circular value, say: the event is still logged (a log call must never throw: some
      // are made where a throw would break what called them).
      line = JSON.stringify({ ...entry, logError: `fields not written: ${err instanceof Error ? err.name : typeof err}` });
    }
    write(line);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
