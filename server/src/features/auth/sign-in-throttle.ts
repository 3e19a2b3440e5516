/**
 * Failed sign-ins, counted per username and client address: past `max` failures within
 * `windowMs`, that pair must wait until the window's first failure is `windowMs` old. A success
 * clears the count. Per pair, so that guessing at one account from one place is slowed while
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

  failed(key: string): void {
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
