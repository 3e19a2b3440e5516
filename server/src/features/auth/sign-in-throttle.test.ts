import { describe, expect, it } from 'vitest';
import { databaseKinds, useTestDatabase } from '../../../test/harness.ts';
import { SignInThrottle, SWEEP_EVERY_MS } from './sign-in-throttle.ts';

describe.each(databaseKinds())('SignInThrottle (%s)', (kind) => {
  const db = useTestDatabase(kind);
  let n = 0;
  /** A throttle on a clock of its own, and a key prefix no other test uses. */
  const clocked = (max = 3, windowMs = 1_000, maxKeys = 100) => {
    const clock = { now: 1_000_000 };
    const prefix = `t${n++}:`;
    return { clock, prefix, throttle: () => new SignInThrottle(db.current.db, max, windowMs, () => clock.now, maxKeys) };
  };

  it('makes a pair wait once it failed max times within the window, until that window ends', async () => {
    const { clock, prefix, throttle } = clocked();
    const t = throttle();
    for (let i = 0; i < 3; i++) {
      expect(await t.take(`${prefix}bob\n1.2.3.4`)).toBe(0);
      clock.now += 100;
    }
    expect(await t.take(`${prefix}bob\n1.2.3.4`)).toBe(700);
    expect(await t.take(`${prefix}bob\n5.6.7.8`)).toBe(0); // the same account from elsewhere
    clock.now = 1_001_000;
    expect(await t.take(`${prefix}bob\n1.2.3.4`)).toBe(0);
  });

  it('counts the same attempts on every instance, and attempts sent at once pass at most max times', async () => {
    const { prefix, throttle } = clocked();
    const instances = [throttle(), throttle(), throttle()];
    const waits = await Promise.all(Array.from({ length: 9 }, (_, i) => instances[i % 3]!.take(`${prefix}k`)));
    expect(waits.filter((w) => w === 0)).toHaveLength(3);
    expect(await instances[0]!.take(`${prefix}k`)).toBeGreaterThan(0);
  });

  it('takes back an attempt withdrawn (it failed for another reason than the password)', async () => {
    const { prefix, throttle } = clocked();
    const t = throttle();
    for (let i = 0; i < 3; i++) await t.take(`${prefix}k`);
    await t.withdrawn(`${prefix}k`);
    expect(await t.take(`${prefix}k`)).toBe(0);
    expect(await t.take(`${prefix}k`)).toBeGreaterThan(0);
  });

  it('forgets a refusal it remembers once an attempt of that key is taken back (an address’s count goes down so)', async () => {
    const { prefix, throttle } = clocked();
    const t = throttle();
    for (let i = 0; i < 3; i++) await t.take(`${prefix}k`);
    expect(await t.take(`${prefix}k`)).toBeGreaterThan(0); // refused, and remembered
    expect(t.refusedFor(`${prefix}k`)).toBeGreaterThan(0);
    await t.withdrawn(`${prefix}k`); // one of the three taken back (a sign-in that succeeded)
    expect(t.refusedFor(`${prefix}k`)).toBe(0);
    expect(await t.take(`${prefix}k`)).toBe(0);
  });

  it('answers a refused pair without the database until its window ends', async () => {
    const { clock, prefix, throttle } = clocked();
    const t = throttle();
    for (let i = 0; i < 3; i++) await t.take(`${prefix}k`);
    expect(await t.take(`${prefix}k`)).toBe(1_000);
    await db.current.db.deleteFrom('sign_in_attempts').where('key', '=', `${prefix}k`).execute();
    clock.now += 400;
    expect(await t.take(`${prefix}k`)).toBe(600); // remembered here
    clock.now += 600;
    expect(await t.take(`${prefix}k`)).toBe(0); // the window over: asked again, and counted
  });

  it('forgets the failures of a pair that then signs in', async () => {
    const { prefix, throttle } = clocked();
    const t = throttle();
    for (let i = 0; i < 3; i++) await t.take(`${prefix}k`);
    await t.succeeded(`${prefix}k`);
    for (let i = 0; i < 3; i++) expect(await t.take(`${prefix}k`)).toBe(0);
  });

  it('keeps at most maxKeys pairs, the oldest going first, and none whose window has passed', async () => {
    const { clock, prefix, throttle } = clocked(1, 1_000, 10);
    await db.current.db.deleteFrom('sign_in_attempts').execute();
    const t = throttle();
    for (let i = 0; i < 11; i++) {
      await t.take(`${prefix}k${i}`);
      clock.now += 1;
    }
    clock.now += SWEEP_EVERY_MS; // the next take sweeps: every window has passed
    const v = throttle();
    await v.take(`${prefix}late`);
    await v.swept;
    const keys = await db.current.db.selectFrom('sign_in_attempts').select('key').execute();
    expect(keys.map((k) => k.key)).toEqual([`${prefix}late`]);
    // And past maxKeys within a window, the oldest go.
    const u = new SignInThrottle(db.current.db, 1, 10 * 60_000, () => clock.now, 10);
    for (let i = 0; i < 11; i++) {
      await u.take(`${prefix}m${i}`);
      clock.now += 1;
    }
    clock.now += SWEEP_EVERY_MS;
    await u.take(`${prefix}m11`);
    await u.swept;
    const left = (await db.current.db.selectFrom('sign_in_attempts').select('key').execute()).map((k) => k.key);
    expect(left).not.toContain(`${prefix}m0`);
    expect(left.length).toBeLessThanOrEqual(11);
  });
});
