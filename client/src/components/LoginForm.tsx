import { createSignal, Show } from 'solid-js';
import { ApiError, errorMessage } from '../api/client.ts';
import { useSession } from '../stores/session.tsx';

export function LoginForm() {
  const session = useSession();
  const [username, setUsername] = createSignal('');
  const [password, setPassword] = createSignal('');
  const [error, setError] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await session.signIn(username().trim(), password());
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
        <input
          id="login-username"
          name="username"
          autocomplete="username"
          required
          value={username()}
          onInput={(e) => setUsername(e.currentTarget.value)}
        />
        <label for="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password()}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
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
