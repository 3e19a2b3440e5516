/**
 * Watches the free space on the disk that holds embedded PGlite's data folder, and has writes
 * refused while it is below a reserve. PGlite that runs out of disk while writing its WAL does
 * not fail: it spins at full CPU inside WebAssembly for good, holding the event loop and so the
 * whole server (reproduced on a full tmpfs). Refused, a write fails at once with a clear error
 * instead: the sync rooms keep their updates queued and tell their peers saving is delayed, as
 * when PostgreSQL is unreachable, and store them once space is freed; the API answers 503.
 * Reads go on, and the reserve leaves room for what they and a checkpoint may still write.
 *
 * @example
 *   const guard = await startDiskGuard({ dir, reserveBytes: 64 << 20, checkEveryMs: 1000, onChange });
 *   guard.stop();
 */
import { statfs } from 'node:fs/promises';
import type { Logger } from '../log.ts';

export interface DiskGuardOptions {
  dir: string;
  /** Free bytes below which writes are refused. */
  reserveBytes: number;
  checkEveryMs: number;
  /** Free bytes for an unprivileged user on the disk holding `dir` (statfs by default). */
  freeBytes?: (dir: string) => Promise<number>;
  /** Called with the reason writes are refused, or null once they may go on again. */
  onChange(refusedBecause: string | null): void;
  log?: Logger;
}

export interface DiskGuard {
  /** Whether writes are refused now. */
  readonly refusing: boolean;
  check(): Promise<void>;
  stop(): void;
}

export const statfsFreeBytes = async (dir: string): Promise<number> => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

const mib = (bytes: number) => Math.floor(bytes / 1024 / 1024);

/** Checks once before it resolves, so a start on a full disk refuses writes from the first. */
export async function startDiskGuard(options: DiskGuardOptions): Promise<DiskGuard> {
  const freeBytes = options.freeBytes ?? statfsFreeBytes;
  let refusing = false;
  let stopped = false;
  const check = async () => {
    let free: number;
    try {
      free = await freeBytes(options.dir);
    } catch (err) {
      options.log?.warn('db_disk_check_failed', { dir: options.dir, error: String(err) });
      return;
    }
    if (stopped) return;
    if (free < options.reserveBytes && !refusing) {
      refusing = true;
      options.log?.warn('db_disk_low', { dir: options.dir, freeBytes: free, reserveBytes: options.reserveBytes });
      options.onChange(
        `the disk holding the database (${options.dir}) has ${mib(free)} MiB free, less than the ${mib(options.reserveBytes)} MiB kept in reserve (PGLITE_MIN_FREE_MB): nothing is stored until space is freed`,
      );
    } else if (free >= options.reserveBytes && refusing) {
      refusing = false;
      options.log?.info('db_disk_ok', { dir: options.dir, freeBytes: free });
      options.onChange(null);
    }
  };
  await check();
  const timer = setInterval(() => void check(), options.checkEveryMs);
  timer.unref();
  return {
    get refusing() {
      return refusing;
    },
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
