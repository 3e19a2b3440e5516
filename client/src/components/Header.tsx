import { A } from '@solidjs/router';
import { useSession } from '../stores/session.tsx';

export function Header() {
  const session = useSession();
  return (
    <header class="app-header">
      <A href="/" class="brand" end>
        Spanwise
      </A>
      <div class="who">
        <span class="user-name">{session.me()?.username}</span>
        <button type="button" class="link-button" onClick={() => void session.signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}
