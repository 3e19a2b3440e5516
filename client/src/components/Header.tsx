import { createSignal, Show } from 'solid-js';
import { A } from '@solidjs/router';
import { api, ApiError, errorMessage } from '../api/client.ts';
import { useSession } from '../stores/session.tsx';
import { storagePrefixOf, unsavedEditsAt } from '../sync/unsaved-edits.ts';
import { within } from '../lib/within.ts';

const SIGN_OUT_QUESTIONS = {
  kept: 'Edits of yours have not reached the server yet. They stay in this browser and are sent only when you sign in here again and open their documents. Sign out anyway?',
  lost: 'Edits of yours have not reached the server yet, and this browser could not keep them: signing out now loses them. Sign out anyway?',
  unknown: 'Edits of yours may not have reached the server yet (this browser’s storage did not answer). Sign out anyway?',
};
/** How long the look for edits waiting may take (the browser's storage may be held by a delete). */
const LOOK_WAIT_MS = 2_000;

/** A document the server still has for this user: not answered gone or forbidden (away: it may be). */
const reachable = (documentId: number) =>
  api.document(documentId).then(
    () => true,
    (err: unknown) => !(err instanceof ApiError && (err.status === 403 || err.status === 404)),
  );

export function Header() {
  const session = useSession();
  /** Why signing out failed: the server answered, and the session is still on. */
  const [failed, setFailed] = createSignal<string | null>(null);
  const [signingOut, setSigningOut] = createSignal(false);
  const signOut = async () => {
    setFailed(null);
    setSigningOut(true);
    try {
      // Edits the server has not stored stay in this browser, sent only once this user signs in
      // here again and opens their layer: not without being asked.
      const me = session.me();
      if (me) {
        const waiting = await within(unsavedEditsAt(storagePrefixOf(me.id), reachable), LOOK_WAIT_MS, () => 'unknown' as const);
        if (waiting !== 'none' && !window.confirm(SIGN_OUT_QUESTIONS[waiting])) return;
      }
      await session.signOut();
    } catch (e: unknown) {
      setFailed(`Not signed out: ${errorMessage(e)}`);
    } finally {
      setSigningOut(false);
    }
  };
  return (
    <header class="app-header">
      <A href="/" class="brand" end>
        Spanwise
      </A>
      <div class="who">
        <span class="user-name">{session.me()?.username}</span>
        <button type="button" class="link-button" onClick={() => void signOut()} disabled={signingOut()}>
          Sign out
        </button>
        <Show when={failed()}>
          <span role="alert" class="error">
            {failed()}
          </span>
        </Show>
      </div>
    </header>
  );
}
