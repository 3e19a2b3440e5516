/**
 * Sign-in attempts that did not succeed, counted per username and client address: past `max`
 * within `windowMs`, that pair must wait until the window's first is `windowMs` old. Each
 * attempt is counted as it starts (attempted), so that many sent at once cannot all pass before
 * the first fails; a success clears the count, and an attempt that failed for another reason
 * than the credentials (the database away) is taken back (withdrawn). Per pair, so that guessing at one account from one place is slowed while
 * its owner, elsewhere, can still sign in. At most `maxKeys` pairs are remembered (the oldest
 * go first), so a flood of made-up names cannot fill memory.
 *
 * @example
 *   const throttle = new SignInThrottle();
 *   const wait = throttle.waitMs(key);
 *   if (wait > 0) refuse(wait);
 */
export class SignInThrottle {
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly max = 10,
    private readonly windowMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  /** How long this pair must wait before trying again (0: it may try now). */
  waitMs(key: string): number {
    const entry = this.#current(key);
    if (!entry || entry.count < this.max) return 0;
    return entry.since + this.windowMs - this.now();
  }

  attempted(key: string): void {
    const entry = this.#current(key);
    if (entry) {
      entry.count++;
      return;
    }
    if (this.#failures.size >= this.maxKeys) this.#failures.delete(this.#failures.keys().next().value!);
    this.#failures.set(key, { count: 1, since: this.now() });
  }

  succeeded(key: string): void {
    this.#failures.delete(key);
  }

  withdrawn(key: string): void {
    const entry = this.#current(key);
    if (entry && entry.count > 0) entry.count--;
  }

  /** The pair's count within its window, forgetting one whose window has passed. */
  #current(key: string): { count: number; since: number } | undefined {
    const entry = this.#failures.get(key);
    if (entry && this.now() - entry.since >= this.windowMs) {
      this.#failures.delete(key);
      return undefined;
    }
    return entry;
  }
}
