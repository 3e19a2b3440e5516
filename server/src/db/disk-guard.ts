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
import { existsSync, statfsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.ts';

export interface DiskGuardOptions {
  dir: string;
  /** Free bytes below which writes are refused. */
  reserveBytes: number;
  checkEveryMs: number;
  /** Free bytes for an unprivileged user on the disk holding `dir` (statfs by default). */
  freeBytes?: (dir: string) => number;
  log?: Logger;
}

export interface DiskGuard {
  /** Whether the last reading was below the reserve (writes are refused). */
  readonly refusing: boolean;
  /**
   * Why a write of `bytes` of values must not go ahead, or null when the space it may take still
   * leaves the reserve free. Between two checks a single large write (a backlog stored once
   * space is back, a compaction's snapshot) can take more than the reserve, and PGlite out of
   * disk mid-WAL never comes back: the free space is measured again (statfs) before a write that
   * would come within NEAR_BYTES of the reserve, counting what the writes since the last reading
   * may have taken, and at least every REREAD_MS while writes go on.
   */
  roomFor(bytes: number): string | null;
  /** The same for a write whose disk is known otherwise than by its values (a DELETE's WAL, say): `diskBytes` of disk. */
  roomForDisk(diskBytes: number): string | null;
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

/** What creating a cluster takes (~40 MiB, a 16 MiB WAL segment among it), beyond the reserve. */
const NEW_CLUSTER_BYTES = 48 * 1024 * 1024;

const mib = (bytes: number) => Math.floor(bytes / 1024 / 1024);

/**
 * Writes that leave more than this above the reserve, by the last reading less what the writes
 * since may have taken, go ahead on that reading if it is younger than REREAD_MS: a statfs
 * costs ~30 µs here, which every stored edit would otherwise wait for.
 */
const NEAR_BYTES = 256 * 1024 * 1024;
const REREAD_MS = 100;

/**
 * Throws, saying so, when the disk that holds (or would hold) `dir` has less free than the
 * reserve, and than what creating the cluster takes when `creating`: creating or recovering a
 * cluster writes too, and PGlite does not survive a full disk.
 */
export function checkRoomToStart(dir: string, reserveBytes: number, creating: boolean, freeBytes = statfsFreeBytes): void {
  let at = path.resolve(dir);
  while (!existsSync(at) && at !== path.dirname(at)) at = path.dirname(at);
  const free = freeBytes(at);
  const needed = reserveBytes + (creating ? NEW_CLUSTER_BYTES : 0);
  if (free >= needed) return;
  throw new Error(
    `the disk holding ${dir} has ${mib(free)} MiB free; the embedded database needs at least ${mib(needed)} MiB ` +
      `(PGLITE_MIN_FREE_MB${creating ? `, plus ${mib(NEW_CLUSTER_BYTES)} MiB to create it` : ''}): free some space, or set DATA_DIR to a folder on another disk`,
  );
}

/** Reads once before it returns, so a start on a full disk refuses writes from the first. */
export function startDiskGuard(options: DiskGuardOptions): DiskGuard {
  const freeBytes = options.freeBytes ?? statfsFreeBytes;
  let refusing = false;
  let lastFree = Number.POSITIVE_INFINITY;
  let readAt = Number.NEGATIVE_INFINITY;
  /** Disk the writes let through since the last reading may have taken. */
  let spent = 0;
  let failedBefore = false;
  /** Measures, notes a crossing of the reserve either way (logged once each), and gives the reading. */
  const read = (): number => {
    try {
      lastFree = freeBytes(options.dir);
      readAt = performance.now();
      spent = 0;
      failedBefore = false;
    } catch (err) {
      // The last reading stands.
      if (!failedBefore) options.log?.warn('db_disk_check_failed', { dir: options.dir, error: String(err) });
      failedBefore = true;
      return lastFree;
    }
    if (lastFree < options.reserveBytes && !refusing) {
      refusing = true;
      options.log?.warn('db_disk_low', { dir: options.dir, freeBytes: lastFree, reserveBytes: options.reserveBytes });
    } else if (lastFree >= options.reserveBytes && refusing) {
      refusing = false;
      options.log?.info('db_disk_ok', { dir: options.dir, freeBytes: lastFree });
    }
    return lastFree;
  };
  read();
  const timer = setInterval(read, options.checkEveryMs);
  timer.unref();
  return {
    get refusing() {
      return refusing;
    },
    roomFor(bytes) {
      return room(bytes * DISK_PER_BYTE_WRITTEN, bytes);
    },
    roomForDisk(diskBytes) {
      return room(diskBytes, null);
    },
    stop() {
      clearInterval(timer);
    },
  };

  /** `valueBytes`: what the write's values come to (null: its disk is all that is known). */
  function room(needed: number, valueBytes: number | null): string | null {
    const far = lastFree - spent - needed >= options.reserveBytes + NEAR_BYTES;
    const free = far && performance.now() - readAt < REREAD_MS ? lastFree - spent : read() - spent;
    const reserve = mib(options.reserveBytes);
    if (free < options.reserveBytes) return refusal(free, `less than the ${reserve} MiB kept in reserve`);
    if (free - needed < options.reserveBytes) {
      const write = valueBytes === null ? `a write that may take ${mib(needed)} MiB of disk` : `a write of ${mib(valueBytes)} MiB`;
      return refusal(free, `too little for ${write} with ${reserve} MiB kept in reserve`);
    }
    spent += needed;
    return null;
  }

  function refusal(free: number, why: string): string {
    // While the free space cannot be measured, the last reading less what was written since stands.
    const has = failedBefore ? `has about ${mib(free)} MiB free (it could not be measured since ${Math.round(performance.now() - readAt)} ms)` : `has ${mib(free)} MiB free`;
    return `the disk holding the database (${options.dir}) ${has}, ${why} (PGLITE_MIN_FREE_MB): nothing is stored until space is freed`;
  }
}
