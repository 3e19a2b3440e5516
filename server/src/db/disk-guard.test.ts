import { afterEach, describe, expect, it } from 'vitest';
import { DISK_PER_BYTE_WRITTEN, startDiskGuard, type DiskGuard } from './disk-guard.ts';

const mib = 1024 * 1024;

describe('disk guard: when it measures the free space', () => {
  let guard: DiskGuard | null = null;
  afterEach(() => {
    guard?.stop();
    guard = null;
  });

  /** A guard over a disk with `free()` bytes free, counting its measurements. */
  function watch(free: () => number) {
    const readings = { count: 0 };
    guard = startDiskGuard({
      dir: '/unused',
      reserveBytes: 64 * mib,
      checkEveryMs: 60_000,
      freeBytes: () => {
        readings.count++;
        return free();
      },
    });
    return readings;
  }

  it('lets small writes far from the reserve go on the last reading, and measures again once it is 100 ms old', async () => {
    const readings = watch(() => 10_000 * mib);
    expect(readings.count).toBe(1); // at start
    for (let i = 0; i < 1_000; i++) expect(guard!.roomFor(200)).toBeNull();
    expect(readings.count).toBeLessThan(10); // (one per 100 ms at most)
    const before = readings.count;
    await new Promise((r) => setTimeout(r, 120));
    expect(guard!.roomFor(200)).toBeNull();
    expect(readings.count).toBe(before + 1);
  });

  it('measures before a write that would come near the reserve, counting what the writes since the last reading may take', () => {
    // A disk the admitted writes fill, as PGlite's would: each takes what the guard counts.
    let free = 10_000 * mib;
    const readings = watch(() => free);
    const write = (valueMib: number) => {
      const reason = guard!.roomFor(valueMib * mib);
      if (reason === null) free -= valueMib * mib * DISK_PER_BYTE_WRITTEN;
      return reason;
    };
    expect(write(3_000)).toBeNull(); // 9,000 MiB: 1,000 MiB left by the reading, far from the reserve
    expect(write(100)).toBeNull(); // 700 left by the reading less what the first took
    expect(readings.count).toBe(1);
    expect(write(200)).toBeNull(); // it would leave 100: within 256 MiB of the reserve, so measured
    expect(readings.count).toBe(2);
    expect(free).toBe(100 * mib);
    expect(write(20)).toMatch(/has 100 MiB free, too little for a write of 20 MiB with 64 MiB kept in reserve/);
    expect(readings.count).toBe(3);
    const before = readings.count;
    for (let i = 0; i < 10; i++) expect(write(0.5)).toBeNull(); // each measured, near the reserve
    expect(readings.count).toBe(before + 10);
  });

  it('counts a write known by the disk it may take as that much, not as values', () => {
    let free = 64 * mib + 100 * mib;
    watch(() => free);
    expect(guard!.roomForDisk(90 * mib)).toBeNull(); // as values, 90 MiB would count three times over
    free -= 90 * mib;
    expect(guard!.roomForDisk(20 * mib)).toMatch(/has 74 MiB free, too little for a write that may take 20 MiB of disk with 64 MiB kept in reserve/);
    expect(guard!.roomForDisk(9 * mib)).toBeNull();
  });

  it('something else taking the space is seen at the next reading', async () => {
    let free = 10_000 * mib;
    watch(() => free);
    expect(guard!.roomFor(mib)).toBeNull();
    free = 20 * mib;
    await new Promise((r) => setTimeout(r, 120));
    expect(guard!.roomFor(1)).toMatch(/has 20 MiB free, less than the 64 MiB kept in reserve/);
    expect(guard!.refusing).toBe(true);
  });

  it('while the free space cannot be measured, counts what is written against the last reading, and says so when it refuses', () => {
    let failing = false;
    watch(() => {
      if (failing) throw new Error('EIO');
      return 64 * mib + 300 * mib;
    });
    failing = true;
    let admitted = 0;
    while (guard!.roomFor(10 * mib) === null) admitted++;
    expect(admitted).toBe(10); // 30 MiB each of the 300 above the reserve
    expect(guard!.roomFor(10 * mib)).toMatch(/has about 64 MiB free \(it could not be measured since \d+ ms\), too little for a write of 10 MiB/);
  });
});
