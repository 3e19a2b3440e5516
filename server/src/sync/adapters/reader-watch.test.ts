import { describe, expect, it } from 'vitest';
import { ReaderWatch } from './reader-watch.ts';

const MiB = 2 ** 20;

describe('ReaderWatch', () => {
  const at = () => {
    const clock = { now: 0 };
    return { clock, watch: new ReaderWatch(16 * MiB, 10_000, () => clock.now) };
  };

  it('keeps a reader under the limit, however long', () => {
    const { clock, watch } = at();
    for (let t = 0; t < 60_000; t += 1_000) {
      clock.now = t;
      expect(watch.tooFarBehind(16 * MiB)).toBe(false);
    }
  });

  it('drops a reader over the limit for the whole time without catching up', () => {
    const { clock, watch } = at();
    expect(watch.tooFarBehind(17 * MiB)).toBe(false);
    clock.now = 9_999;
    expect(watch.tooFarBehind(17 * MiB)).toBe(false);
    clock.now = 10_000;
    expect(watch.tooFarBehind(17 * MiB)).toBe(true);
  });

  it('starts the clock again while the reader catches up, and forgets it once under the limit', () => {
    const { clock, watch } = at();
    expect(watch.tooFarBehind(40 * MiB)).toBe(false);
    // Shrinking by a little every 5 s: over the limit for 30 s, never 10 s without progress.
    for (let i = 1; i <= 6; i++) {
      clock.now = i * 5_000;
      expect(watch.tooFarBehind((40 - i) * MiB)).toBe(false);
    }
    // Stalls at its lowest level: 10 s later it is too far behind.
    clock.now = 39_999;
    expect(watch.tooFarBehind(34 * MiB)).toBe(false);
    clock.now = 40_000;
    expect(watch.tooFarBehind(35 * MiB)).toBe(true);
    // Under the limit for a moment: over again later starts a fresh 10 s.
    const fresh = at();
    fresh.watch.tooFarBehind(20 * MiB);
    fresh.clock.now = 9_000;
    fresh.watch.tooFarBehind(1 * MiB);
    fresh.clock.now = 15_000;
    expect(fresh.watch.tooFarBehind(20 * MiB)).toBe(false);
    fresh.clock.now = 24_999;
    expect(fresh.watch.tooFarBehind(20 * MiB)).toBe(false);
    fresh.clock.now = 25_000;
    expect(fresh.watch.tooFarBehind(20 * MiB)).toBe(true);
  });

  it('drops a reader past four times the limit at its next send that finds it no lower', () => {
    const { watch } = at();
    expect(watch.tooFarBehind(70 * MiB)).toBe(false);
    expect(watch.tooFarBehind(69 * MiB)).toBe(false);
    expect(watch.tooFarBehind(69 * MiB)).toBe(true);
    const second = at();
    expect(second.watch.tooFarBehind(64 * MiB)).toBe(false);
    expect(second.watch.tooFarBehind(64 * MiB)).toBe(false);
  });
});
