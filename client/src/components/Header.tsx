import { createSignal, Show } from 'solid-js';
import { A } from '@solidjs/router';
import { errorMessage } from '../api/client.ts';
import { useSession } from '../stores/session.tsx';
import { holdsUnsavedEdits } from '../sync/unsaved-edits.ts';

const UNSAVED_QUESTION =
  'Edits of yours have not reached the server yet. They stay in this browser and are sent only when you sign in here again and open the document. Sign out anyway?';

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
      if (me && (await holdsUnsavedEdits(`u${me.id}`)) && !window.confirm(UNSAVED_QUESTION)) return;
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
