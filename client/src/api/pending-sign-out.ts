/**
 * A sign-out the server has not heard of yet. Signing out while the server cannot be reached
 * signs the page out at once, but the session cookie is httpOnly: only the server can end the
 * session, and until it does a reload would sign the user back in (the next person at a shared
 * browser, say). So the sign-out is remembered here, for every tab of the app, and sent again
 * until the server has it (client.ts): when a page starts, before a sign-in, and while a page
 * waits (session.tsx). Other tabs sign out as soon as it is remembered.
 */
const KEY = 'spanwise:sign-out-pending';

/** Local storage, or null where the browser refuses it (then nothing is remembered). */
function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

export function signOutPending(): boolean {
  return storage()?.getItem(KEY) != null;
}

export function rememberSignOut(): void {
  try {
    storage()?.setItem(KEY, new Date().toISOString());
  } catch {
    // A full store: the page still signs out, as it did before anything was remembered.
  }
}

export function forgetSignOut(): void {
  storage()?.removeItem(KEY);
}

/** Calls `signedOut` when another tab remembers a sign-out; returns what stops listening. */
export function onSignOutElsewhere(signedOut: () => void): () => void {
  const listener = (e: StorageEvent) => {
    if (e.key === KEY && e.newValue !== null) signedOut();
  };
  window.addEventListener('storage', listener);
  return () => window.removeEventListener('storage', listener);
}
