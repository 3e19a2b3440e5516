import { describe, expect, it } from 'vitest';
import { SignInThrottle } from './sign-in-throttle.ts';

describe('SignInThrottle', () => {
  const clocked = (max = 3, windowMs = 1_000, maxKeys = 100) => {
    const clock = { now: 0 };
    return { clock, throttle: new SignInThrottle(max, windowMs, () => clock.now, maxKeys) };
  };

  it('makes a pair wait once it failed max times within the window, until that window ends', () => {
    const { clock, throttle } = clocked();
    for (let i = 0; i < 3; i++) {
      expect(throttle.waitMs('bob\n1.2.3.4')).toBe(0);
      throttle.attempted('bob\n1.2.3.4');
      clock.now += 100;
    }
    expect(throttle.waitMs('bob\n1.2.3.4')).toBe(700);
    expect(throttle.waitMs('bob\n5.6.7.8')).toBe(0); // the same account from elsewhere
    clock.now = 1_000;
    expect(throttle.waitMs('bob\n1.2.3.4')).toBe(0);
  });

  it('takes back an attempt withdrawn (it failed for another reason than the password)', () => {
    const { throttle } = clocked();
    for (let i = 0; i < 3; i++) throttle.attempted('k');
    expect(throttle.waitMs('k')).toBeGreaterThan(0);
    throttle.withdrawn('k');
    expect(throttle.waitMs('k')).toBe(0);
  });

  it('forgets the failures of a pair that then signs in', () => {
    const { throttle } = clocked();
    throttle.attempted('k');
    throttle.attempted('k');
    throttle.succeeded('k');
    throttle.attempted('k');
    throttle.attempted('k');
    expect(throttle.waitMs('k')).toBe(0);
  });

  it('remembers at most maxKeys pairs, the oldest going first', () => {
    const { throttle } = clocked(1, 1_000, 10);
    for (let i = 0; i < 11; i++) throttle.attempted(`k${i}`);
    expect(throttle.waitMs('k0')).toBe(0);
    expect(throttle.waitMs('k10')).toBeGreaterThan(0);
  });
});
