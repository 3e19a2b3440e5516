/**
 * Watches the free space on the disk that holds embedded PGlite's data folder, and has writes
 * refused while it is below a reserve. PGlite that runs out of disk while writing its WAL does
 * not fail: it spins at full CPU inside WebAssembly for good, holding the event loop and so the
 * whole server (reproduced on a full tmpfs). Refused, a write fails at once with a clear error
 * instead: the sync rooms keep their updates queued and tell their peers saving is delayed, as
 * when PostgreSQL is unreachable, and store them once space is freed; the API answers 503.
 * Reads go on, and the reserve leaves room for what they and a checkpoint may still write. Each
 * write is also measured against the space left just before it goes (`roomFor`).
 *
 * @example
 *   const guard = startDiskGuard({ dir, reserveBytes: 64 << 20, checkEveryMs: 1000, onChange });
 *   guard.stop();
 */
import { statfsSync } from 'node:fs';
import type { Logger } from '../log.ts';

export interface DiskGuardOptions {
  dir: string;
  /** Free bytes below which writes are refused. */
  reserveBytes: number;
  checkEveryMs: number;
  /** Free bytes for an unprivileged user on the disk holding `dir` (statfs by default). */
  freeBytes?: (dir: string) => number;
  /** Called with the reason writes are refused, or null once they may go on again. */
  onChange(refusedBecause: string | null): void;
  log?: Logger;
}

export interface DiskGuard {
  /** Whether writes are refused now. */
  readonly refusing: boolean;
  /**
   * Measured now (statfs, a few µs): why a write of `bytes` of values must not go ahead, or null
   * when the space it may take still leaves the reserve free. Between two checks a single large
   * write (a backlog stored once space is back, a compaction's snapshot) can take more than the
   * reserve, and PGlite out of disk mid-WAL never comes back.
   */
  roomFor(bytes: number): string | null;
  check(): void;
  stop(): void;
}

export const statfsFreeBytes = (dir: string): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/**
 * Disk a write of `bytes` of values may take: the row, its TOAST copy and its WAL record (with
 * a full-page image or two), measured at 2–2.5 times what is written.
 */
export const DISK_PER_BYTE_WRITTEN = 3;

const mib = (bytes: number) => Math.floor(bytes / 1024 / 1024);

/** Checks once before it returns, so a start on a full disk refuses writes from the first. */
export function startDiskGuard(options: DiskGuardOptions): DiskGuard {
  const freeBytes = options.freeBytes ?? statfsFreeBytes;
  let refusing = false;
  let failedBefore = false;
  const measure = (): number | null => {
    try {
      const free = freeBytes(options.dir);
      failedBefore = false;
      return free;
    } catch (err) {
      if (!failedBefore) options.log?.warn('db_disk_check_failed', { dir: options.dir, error: String(err) });
      failedBefore = true;
      return null;
    }
  };
  const reason = (free: number, bytes = 0) =>
    `the disk holding the database (${options.dir}) has ${mib(free)} MiB free, ` +
    (bytes > 0 ? `too little for a write of ${mib(bytes)} MiB with ${mib(options.reserveBytes)} MiB kept in reserve` : `less than the ${mib(options.reserveBytes)} MiB kept in reserve`) +
    ' (PGLITE_MIN_FREE_MB): nothing is stored until space is freed';
  const check = () => {
    const free = measure();
    if (free === null) return;
    if (free < options.reserveBytes && !refusing) {
      refusing = true;
      options.log?.warn('db_disk_low', { dir: options.dir, freeBytes: free, reserveBytes: options.reserveBytes });
      options.onChange(reason(free));
    } else if (free >= options.reserveBytes && refusing) {
      refusing = false;
      options.log?.info('db_disk_ok', { dir: options.dir, freeBytes: free });
      options.onChange(null);
    }
  };
  check();
  const timer = setInterval(check, options.checkEveryMs);
  timer.unref();
  return {
    get refusing() {
      return refusing;
    },
    roomFor(bytes) {
      const free = measure();
      if (free === null) return null; // (the timer's reading stands)
      return free - bytes * DISK_PER_BYTE_WRITTEN < options.reserveBytes ? reason(free, bytes) : null;
    },
    check,
    stop() {
      clearInterval(timer);
    },
  };
}
