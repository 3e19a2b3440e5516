import { describe, expect, it } from 'vitest';
import { within } from './within.ts';

const never = new Promise<string>(() => {});
const after = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

describe('within', () => {
  it('gives the outcome of work that settles in time, rejection too', async () => {
    expect(await within(after(5, 'done'), 1_000, () => 'late')).toBe('done');
    await expect(within(Promise.reject(new Error('failed')), 1_000, () => 'late')).rejects.toThrow('failed');
  });

  it('gives what `late` returns, or rejects with what it throws, once the time has passed', async () => {
    expect(await within(never, 10, () => 'late')).toBe('late');
    await expect(
      within(never, 10, () => {
        throw new Error('too slow');
      }),
    ).rejects.toThrow('too slow');
  });

  it('does not call `late` for work that settled first', async () => {
    let called = false;
    await within(after(1, 'done'), 20, () => (called = true));
    await after(40, null);
    expect(called).toBe(false);
  });
});
