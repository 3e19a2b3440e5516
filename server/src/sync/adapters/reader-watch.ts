/**
 * Whether a socket's reader keeps up with what is sent to it. A reader with more than
 * `limitBytes` waiting to be written for longer than `limitMs`, without falling below what
 * waited when it went over, is too far behind; so is one past four times the limit that has
 * not shrunk since the last send. A reader catching up (what waits shrinks, say a large first
 * sync read over a slow link) starts the clock again from its new, lower level.
 *
 * @example
 *   const watch = new ReaderWatch(16 * 2 ** 20, 10_000);
 *   if (watch.tooFarBehind(ws.bufferedAmount)) dropIt();
 *   else ws.send(data);
 */
export class ReaderWatch {
  /** Since when more than the limit has waited, and how much waited then (or since, at least). */
  #overSince: number | null = null;
  #overLevel = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly limitMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Called before each send with what waits to be written. */
  tooFarBehind(waiting: number): boolean {
    if (waiting <= this.limitBytes) {
      this.#overSince = null;
      return false;
    }
    if (this.#overSince === null || waiting < this.#overLevel) {
      // Over the limit, or still over but below where it stood: the reader is catching up.
      this.#overSince = this.now();
      this.#overLevel = waiting;
      return false;
    }
    return waiting > 4 * this.limitBytes || this.now() - this.#overSince >= this.limitMs;
  }
}
