/**
 * Who is signed in. Checked once on boot (`GET /api/me`); any later 401 (an API call or a sync
 * socket closed with 4401) drops the session so the app shows the login form in place, on the
 * same URL, and returns there after signing in. While the server cannot be reached, the check
 * is answered from the copy kept of its last answer (api/offline-copies.ts); a sign-out made
 * then signs every tab out at once and is told to the server once it answers
 * (api/pending-sign-out.ts).
 */
import { createContext, createEffect, createResource, onCleanup, useContext, type Accessor, type ParentProps } from 'solid-js';
import type { Me } from '@spanwise/shared/api';
import { api, ApiError, onSessionChangeElsewhere, UNAUTHORIZED_EVENT } from '../api/client.ts';
import { onSignOutElsewhere, pendingSignOut } from '../api/pending-sign-out.ts';
import { forgetCopiesBut, storagePrefixOf } from '../sync/unsaved-edits.ts';

/** How often a page looks for a sign-out the server has not heard of, to send it again (see api.settleSignOut). */
const SIGN_OUT_RETRY_MS = 5_000;

export interface Session {
  /** The signed-in user; null when signed out; undefined while the first check runs. */
  me: Accessor<Me | null | undefined>;
  error: Accessor<unknown>;
  retry(): void;
  signIn(username: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  /** Forget the session without asking the server (it already said we are signed out). */
  expire(): void;
}

const SessionContext = createContext<Session>();

export function SessionProvider(props: ParentProps) {
  const [me, { mutate, refetch }] = createResource(api.me);
  const expire = () => {
    void api.forgetCopies();
    mutate(null);
  };
  // Once it is known who is signed in, and again whenever that changes (signed out, the session
  // over, someone else signed in): what the browser keeps of anyone else's layers is deleted, but
  // for edits not saved yet (sync/unsaved-edits.ts), so that the next person at a shared browser
  // cannot read them; left behind by a tab closed at once, too, it goes at the next page's start.
  let sweptFor: number | null | undefined;
  createEffect(() => {
    const user = me.error ? undefined : me();
    if (user === undefined || sweptFor === (user?.id ?? null)) return;
    sweptFor = user?.id ?? null;
    void forgetCopiesBut(user ? storagePrefixOf(user.id) : null);
  });
  window.addEventListener(UNAUTHORIZED_EVENT, expire);
  onCleanup(() => window.removeEventListener(UNAUTHORIZED_EVENT, expire));
  // Signed out in another tab while the server could not be told: this one signs out too. (Asked
  // again, not set: a check still under way would otherwise land after, showing the user back.)
  // So does one brought back from the browser's back-forward cache, which missed that.
  onCleanup(onSignOutElsewhere(() => void refetch()));
  // Signed in or out in another tab: asked again, so that this one does not go on showing (and
  // later sign out) a user the browser no longer holds the session of.
  // Only a change of user is taken (the same user's page stays as it is), and a check that
  // fails changes nothing.
  onCleanup(
    onSessionChangeElsewhere(() => {
      void api.me().then(
        (now) => {
          // A sign-out the server could not be told of, seen here since this was asked (another
          // tab's storage can reach this one after its message): signed out it stays, not
          // signed back in by an answer from before it.
          if (now !== null && pendingSignOut() !== null) return;
          if ((now?.id ?? null) !== ((me.error ? undefined : me())?.id ?? null)) mutate(now);
        },
        () => {},
      );
    }),
  );
  const restored = (e: PageTransitionEvent) => {
    if (e.persisted && pendingSignOut() !== null) void refetch();
  };
  window.addEventListener('pageshow', restored);
  // That sign-out is sent again until the server has it (nothing is sent while none waits).
  const settleNow = () => void api.settleSignOut(true);
  window.addEventListener('online', settleNow);
  const retrying = setInterval(() => void api.settleSignOut(), SIGN_OUT_RETRY_MS);
  onCleanup(() => {
    window.removeEventListener('pageshow', restored);
    window.removeEventListener('online', settleNow);
    clearInterval(retrying);
  });

  const session: Session = {
    me: () => (me.error ? undefined : me()),
    error: () => me.error as unknown,
    retry: () => void refetch(),
    async signIn(username, password) {
      mutate(await api.login(username, password));
    },
    async signOut() {
      try {
        await api.logout(me()?.id ?? -1);
      } catch (e) {
        // Someone else is signed in on this browser now (a tab that missed it): their session
        // stays, and this page shows who it is.
        if (e instanceof ApiError && e.code === 'session_changed') {
          void refetch();
          return;
        }
        // The server itself answered with an error (its database unreachable, say): the session
        // is still on there, so the page must not show anyone signed out, and what a reload
        // offline needs is kept again (the sign-out forgot the copies). Unreachable (no answer,
        // or a proxy's), or a session already over (401), the page signs out (its kept copies
        // are forgotten either way), and one the server did not hear of is told it later
        // (pending-sign-out.ts).
        if (e instanceof ApiError && e.fromServer && e.status >= 500) {
          void api.me().catch(() => {});
          throw e;
        }
      }
      mutate(null);
    },
    expire,
  };
  return <SessionContext.Provider value={session}>{props.children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession() outside <SessionProvider>');
  return session;
}

/** The signed-in user, for components that only render with a session. */
export function useMe(): Me {
  const me = useSession().me();
  if (!me) throw new Error('useMe() without a session');
  return me;
}
