/**
 * A sign-out the server has not heard of yet. Signing out while the server cannot be reached
 * signs the page out at once, but the session cookie is httpOnly: only the server can end the
 * session, and until it does a reload would sign the user back in (the next person at a shared
 * browser, say). So the sign-out is remembered here, for every tab of the app, and sent again
 * until the server has it (client.ts): before the next sign-in in any tab and, where tabs can
 * take turns (Web Locks), when a page starts and while one waits (session.tsx). Other tabs sign
 * out as soon as it is remembered. Where the browser keeps no local storage (blocked, full,
 * broken), nothing is remembered, as before.
 */
const KEY = 'spanwise:sign-out-pending';

/** Local storage, or null where the browser refuses it. */
function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

/** The sign-out waiting (an id of its own), or null. */
export function pendingSignOut(): string | null {
  try {
    return storage()?.getItem(KEY) ?? null;
  } catch {
    return null; // (a broken store remembers nothing)
  }
}

export function rememberSignOut(): void {
  try {
    storage()?.setItem(KEY, `${Date.now()}-${Math.random().toString(36).slice(2)}`);
  } catch {
    // A full store: the page still signs out, as it did before anything was remembered.
  }
}

/** Forgets the sign-out waiting; with `id`, only if it is still that one (not one remembered since). */
export function forgetSignOut(id?: string): void {
  try {
    if (id === undefined || storage()?.getItem(KEY) === id) storage()?.removeItem(KEY);
  } catch {
    // Nothing could have been remembered.
  }
}

/** Calls `signedOut` when another tab remembers a sign-out; returns what stops listening. */
export function onSignOutElsewhere(signedOut: () => void): () => void {
  const listener = (e: StorageEvent) => {
    if (e.key === KEY && e.newValue !== null) signedOut();
  };
  window.addEventListener('storage', listener);
  return () => window.removeEventListener('storage', listener);
}

let inThisTab: Promise<unknown> = Promise.resolve();
let busyInThisTab = 0;

/** Whether sign-ins and sign-outs are kept apart across tabs (Web Locks: https and localhost pages). */
export function tabsCoordinated(): boolean {
  return typeof navigator !== 'undefined' && navigator.locks !== undefined;
}

/** Thrown by `exclusively` when it did not get its turn: another was under way (or took too long). */
export class NotNow extends Error {
  constructor() {
    super('another sign-in or sign-out is under way');
    this.name = 'NotNow';
  }
}

/** A signal that aborts after `ms` (AbortSignal.timeout where the browser has it). */
export function timeoutSignal(ms: number): AbortSignal {
  if (typeof AbortSignal.timeout === 'function') return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), ms);
  return controller.signal;
}

/**
 * Runs `work` while no sign-in or sign-out runs in any tab of the app (Web Locks; in this tab
 * alone where the browser has none): a sign-out sent again must never be under way while a
 * sign-in is, or its answer, which deletes the session cookie, could delete the new session's.
 * `ifFree`: throws NotNow at once instead of waiting for a turn; `waitMs`: throws NotNow after
 * waiting that long (with Web Locks only: in one tab, what runs before is bounded by its own time limits).
 */
export async function exclusively<T>(work: () => Promise<T>, options: { ifFree?: boolean; waitMs?: number } = {}): Promise<T> {
  if (tabsCoordinated()) {
    const lockOptions: LockOptions = options.ifFree ? { ifAvailable: true } : options.waitMs !== undefined ? { signal: timeoutSignal(options.waitMs) } : {};
    let granted = false;
    try {
      return (await navigator.locks.request('spanwise:sign-in-out', lockOptions, async (lock) => {
        if (!lock) throw new NotNow();
        granted = true;
        return work();
      })) as T;
    } catch (e) {
      if (!granted && e instanceof DOMException && (e.name === 'AbortError' || e.name === 'TimeoutError')) throw new NotNow(); // (its wait ran out)
      throw e;
    }
  }
  if (options.ifFree && busyInThisTab > 0) throw new NotNow();
  busyInThisTab++;
  const run = inThisTab.then(work, work).finally(() => busyInThisTab--);
  inThisTab = run.catch(() => {});
  return run;
}
