import { createSignal, Show, type JSX } from 'solid-js';
import { ApiError, errorMessage } from '../api/client.ts';
import { useSession } from '../stores/session.tsx';

export function LoginForm() {
  const session = useSession();
  const [error, setError] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);

  const submit: JSX.EventHandler<HTMLFormElement, SubmitEvent> = async (e) => {
    e.preventDefault();
    // Read before the first await: currentTarget is cleared once the handler returns.
    const fields = new FormData(e.currentTarget);
    const username = String(fields.get('username') ?? '').trim();
    // (The browser's own check lets spaces through.)
    if (username === '') {
      setError('Enter your username.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await session.signIn(username, String(fields.get('password') ?? ''));
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'Wrong username or password.' : errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <main class="centered">
      <form class="login card" onSubmit={submit}>
        <h1>Sign in to Spanwise</h1>
        <label for="login-username">Username</label>
        <input id="login-username" name="username" autocomplete="username" required />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required />
        <Show when={error()}>
          <p role="alert" class="error">{error()}</p>
        </Show>
        <button type="submit" class="primary" disabled={busy()}>
          Sign in
        </button>
      </form>
    </main>
  );
}
