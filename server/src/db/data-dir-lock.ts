/**
 * One server at a time on an embedded database's folder. PGlite takes no lock of its own (it
 * writes no postmaster.pid): two processes on one folder each write their own pages over the
 * other's, and stored data is silently lost (a second `npm start` by mistake, a new container
 * started on the volume before the old one stopped).
 *
 * The lock is a folder, `spanwise.lock`, inside the data folder (a volume's root can hold it
 * where its parent cannot), made whole beside it and moved into place (a rename onto a folder
 * that exists fails), with an `owner` file naming the process (host, pid namespace, pid) and a
 * token of its own. Its holder touches it every RENEW_MS. A later start waits for it to go (an
 * instance shutting down lets go once its database is closed), and takes it over when its holder
 * is gone: at once on the same host and pid namespace when that pid no longer runs (or is this
 * very process's, from a life before: a container restarted as pid 1 again), else once it has
 * not been renewed for STALE_MS (another container, whose pids this one cannot see).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from '../log.ts';

const LOCK_NAME = 'spanwise.lock';
const RENEW_MS = 5_000;
const STALE_MS = 20_000;
/** How long a start waits for the folder by default: longer than an instance takes to shut down. */
const DEFAULT_LOCK_WAIT_MS = 45_000;
const RETRY_MS = 500;

interface Owner {
  host: string;
  /** The pid namespace the pid is of (Linux: containers sharing a hostname have their own). */
  ns?: string;
  pid: number;
  token: string;
}

/** This process's pid namespace ('' where /proc does not say). */
const PID_NAMESPACE = await fs.readlink('/proc/self/ns/pid').catch(() => '');

/** Whether `owner`'s pid is one this process can look up: the same host, and the same pid namespace. */
const sameMachine = (owner: Owner) => owner.host === hostname() && (owner.ns ?? '') === PID_NAMESPACE;

/** Lock folders this process holds (a second open of one here is refused at once). */
const heldHere = new Set<string>();

export class DataDirInUseError extends Error {
  constructor(dataDir: string, owner: Owner | null) {
    const who = owner ? `process ${owner.pid} on ${sameMachine(owner) ? 'this host' : `host ${owner.host}`}` : 'another process';
    super(`DATA_DIR ${dataDir} is in use by ${who} (its ${LOCK_NAME}): stop that server first, or set DATA_DIR to another folder`);
    this.name = 'DataDirInUseError';
  }
}

/** Whether a process of this pid runs (one of another user's counts). */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(lockDir: string): Promise<Owner | null> {
  try {
    const owner = JSON.parse(await fs.readFile(path.join(lockDir, 'owner'), 'utf8')) as Owner;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' && typeof owner.token === 'string' ? owner : null;
  } catch {
    return null;
  }
}

/**
 * Whether the lock `lockDir` holds (owned by `owner`, null: not readable) is left by a holder
 * gone. One whose pid this process can see running is not, however long since it was renewed
 * (an event loop held up past STALE_MS by a long query): the others' only by staleness.
 */
async function gone(lockDir: string, owner: Owner | null): Promise<boolean> {
  if (owner && sameMachine(owner)) {
    if (owner.pid === process.pid) return !heldHere.has(lockDir);
    return !running(owner.pid);
  }
  const renewed = await fs.stat(lockDir).then((s) => s.mtimeMs, () => null);
  return renewed !== null && Date.now() - renewed > STALE_MS;
}

/**
 * Takes the lock on `dataDir` (which must exist), waiting at most `waitMs` for it; resolves a
 * function that lets it go. Rejects with DataDirInUseError if it is still held then.
 */
export async function lockDataDir(dataDir: string, options: { waitMs?: number; log?: Logger } = {}): Promise<() => Promise<void>> {
  const lockDir = path.join(await fs.realpath(dataDir), LOCK_NAME);
  if (heldHere.has(lockDir)) throw new DataDirInUseError(dataDir, { host: hostname(), ns: PID_NAMESPACE, pid: process.pid, token: '' });
  const mine: Owner = { host: hostname(), ns: PID_NAMESPACE, pid: process.pid, token: randomUUID() };
  const deadline = Date.now() + (options.waitMs ?? DEFAULT_LOCK_WAIT_MS);
  for (let told = false; ; ) {
    // Made whole (its owner written) beside it, then moved into place: a lock folder is never
    // seen without its owner, and a move onto one that exists fails.
    const made = `${lockDir}.new-${mine.token}`;
    await fs.mkdir(made, { recursive: true });
    await fs.writeFile(path.join(made, 'owner'), JSON.stringify(mine));
    try {
      await fs.rename(made, lockDir);
      break;
    } catch (err) {
      await fs.rm(made, { recursive: true, force: true });
      if (!['EEXIST', 'ENOTEMPTY'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
    const owner = await readOwner(lockDir);
    if (await gone(lockDir, owner)) {
      // Taken over: moved aside first, so that of two starts taking it over one gets it; and
      // put back if what was moved is not the lock judged gone (another start took it over
      // between the look and the move).
      const aside = `${lockDir}.gone-${mine.token}`;
      if (await fs.rename(lockDir, aside).then(() => true, () => false)) {
        if ((await readOwner(aside))?.token !== owner?.token) await fs.rename(aside, lockDir).catch(() => {});
        else {
          await fs.rm(aside, { recursive: true, force: true });
          // (Info: the last server there ended without closing, and PGlite recovers as after any crash.)
          options.log?.info('db_lock_taken_over', { dataDir, pid: owner?.pid ?? null, host: owner?.host ?? null });
        }
      }
      continue;
    }
    if (Date.now() >= deadline) throw new DataDirInUseError(dataDir, owner);
    if (!told) options.log?.info('db_lock_waiting', { dataDir, pid: owner?.pid ?? null, host: owner?.host ?? null });
    told = true;
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  heldHere.add(lockDir);
  let lost = false;
  const renew = setInterval(() => {
    void readOwner(lockDir).then(async (owner) => {
      if (owner?.token === mine.token) {
        const now = new Date();
        await fs.utimes(lockDir, now, now);
      } else if (!lost) {
        lost = true; // (this process stalled past STALE_MS, and another took the folder over)
        options.log?.error('db_lock_lost', { dataDir, pid: owner?.pid ?? null, host: owner?.host ?? null });
      }
    }).catch(() => {});
  }, RENEW_MS);
  renew.unref();
  return async () => {
    clearInterval(renew);
    heldHere.delete(lockDir);
    if ((await readOwner(lockDir))?.token === mine.token) await fs.rm(lockDir, { recursive: true, force: true });
  };
}

/** Whether `name`, an entry of a data folder, is the lock's (not the database's). */
export const isLockEntry = (name: string) => name === LOCK_NAME || name.startsWith(`${LOCK_NAME}.gone-`) || name.startsWith(`${LOCK_NAME}.new-`);

