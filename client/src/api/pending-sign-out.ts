/**
 * A sign-out the server has not heard of yet. Signing out while the server cannot be reached
 * signs the page out at once, but the session cookie is httpOnly: only the server can end the
 * session, and until it does a reload would sign the user back in (the next person at a shared
 * browser, say). So the sign-out is remembered here, for every tab of the app, and sent again
 * until the server has it (client.ts): when a page starts, before a sign-in, and while a page
 * waits (session.tsx). Other tabs sign out as soon as it is remembered. Where the browser keeps
 * no local storage (blocked, full, broken), nothing is remembered, as before.
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

/**
 * Runs `work` while no sign-in or sign-out runs in any tab of the app (Web Locks; in this tab
 * alone where the browser has none): a sign-out sent again must never be under way while a
 * sign-in is, or its answer, which deletes the session cookie, could delete the new session's.
 */
export function exclusively<T>(work: () => Promise<T>): Promise<T> {
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
  if (locks) return locks.request('spanwise:sign-in-out', work) as Promise<T>; // (lib.dom wraps the callback's promise once more)
  const run = inThisTab.then(work, work);
  inThisTab = run.catch(() => {});
  return run;
}
