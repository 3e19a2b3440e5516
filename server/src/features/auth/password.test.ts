import { describe, expect, it } from 'vitest';
import { CHECKS_WAITING, HASHES_AT_ONCE, hashesUnderWay, hashPassword, PasswordChecksBusy, verifyPassword } from './password.ts';

describe('password hashing', () => {
  it('verifies the right password and rejects a wrong one', async () => {
    const hash = await hashPassword('correct horse');
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct hors', hash)).toBe(false);
  });

  it('salts: the same password hashes differently twice', async () => {
    expect(await hashPassword('x')).not.toBe(await hashPassword('x'));
  });

  it('rejects a malformed stored hash instead of throwing', async () => {
    expect(await verifyPassword('x', 'plain-text')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$1$2')).toBe(false);
  });

  it(`computes at most ${HASHES_AT_ONCE} hashes at once; a check past ${CHECKS_WAITING} waiting is refused, a new hash waits`, async () => {
    const hash = await hashPassword('p');
    const checks = Array.from({ length: HASHES_AT_ONCE + CHECKS_WAITING }, () => verifyPassword('p', hash));
    expect(hashesUnderWay()).toEqual({ running: HASHES_AT_ONCE, waiting: CHECKS_WAITING });
    await expect(verifyPassword('p', hash)).rejects.toBeInstanceOf(PasswordChecksBusy);
    const hashing = hashPassword('q'); // (setting a password is not refused)
    expect(hashesUnderWay().waiting).toBe(CHECKS_WAITING + 1);
    expect(await Promise.all(checks)).toEqual(checks.map(() => true));
    expect(await verifyPassword('q', await hashing)).toBe(true);
    expect(hashesUnderWay()).toEqual({ running: 0, waiting: 0 });
  });
});
