import { createSignal, Show } from 'solid-js';
import { A } from '@solidjs/router';
import { errorMessage } from '../api/client.ts';
import { useSession } from '../stores/session.tsx';

export function Header() {
  const session = useSession();
  /** Why signing out failed: the server answered, and the session is still on. */
  const [failed, setFailed] = createSignal<string | null>(null);
  const [signingOut, setSigningOut] = createSignal(false);
  const signOut = () => {
    setFailed(null);
    setSigningOut(true);
    session
      .signOut()
      .catch((e: unknown) => setFailed(`Not signed out: ${errorMessage(e)}`))
      .finally(() => setSigningOut(false));
  };
  return (
    <header class="app-header">
      <A href="/" class="brand" end>
        Spanwise
      </A>
      <div class="who">
        <span class="user-name">{session.me()?.username}</span>
        <button type="button" class="link-button" onClick={signOut} disabled={signingOut()}>
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
