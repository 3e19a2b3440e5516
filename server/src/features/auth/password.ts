/**
 * Password hashing with scrypt (Node's crypto). Stored as `scrypt$N$r$p$salt$hash` (base64),
 * so the cost can be raised later without breaking old hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

/**
 * Hashes computed at once. Each holds one of libuv's four threads (~50 ms here), which the file
 * system, DNS lookups and the rest share: a burst of sign-ins must not take them all.
 */
export const HASHES_AT_ONCE = 2;
/** Sign-in checks that may wait their turn; past it one is refused (PasswordChecksBusy). */
export const CHECKS_WAITING = 32;

export class PasswordChecksBusy extends Error {
  constructor() {
    super('too many password checks under way');
  }
}

let hashing = 0;
const waiting: Array<() => void> = [];

/** How many hashes run and wait now. */
export const hashesUnderWay = () => ({ running: hashing, waiting: waiting.length });

/** Runs `work` once fewer than HASHES_AT_ONCE run; `refuseWhenFull` refuses rather than wait past CHECKS_WAITING. */
async function inTurn<T>(work: () => Promise<T>, refuseWhenFull: boolean): Promise<T> {
  if (hashing < HASHES_AT_ONCE) hashing++;
  else {
    if (refuseWhenFull && waiting.length >= CHECKS_WAITING) throw new PasswordChecksBusy();
    await new Promise<void>((resolve) => waiting.push(resolve)); // (handed its turn by one ending)
  }
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else hashing--;
  }
}

function derive(password: string, salt: Buffer, opts: ScryptOptions, keylen: number, refuseWhenFull = false): Promise<Buffer> {
  return inTurn(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(password.normalize('NFKC'), salt, keylen, { ...opts, maxmem: 64 * 1024 * 1024 }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
    refuseWhenFull,
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, { N, r: R, p: P }, KEYLEN);
  return ['scrypt', N, R, P, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Throws PasswordChecksBusy when CHECKS_WAITING checks wait already (a sign-in, anyone may ask). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await derive(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) }, expected.length, true);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash of a random password: verifying against it costs as much as a real check. */
export const DUMMY_HASH = await hashPassword(randomBytes(16).toString('hex'));
