/**
 * The app: a session check, then either the login form (on whatever URL was asked for) or
 * the router with its pages.
 */
import { Match, Switch, type ParentProps } from 'solid-js';
import { Route, Router } from '@solidjs/router';
import { errorMessage } from './api/client.ts';
import { Header } from './components/Header.tsx';
import { LoginForm } from './components/LoginForm.tsx';
import { AnnotatePage } from './routes/AnnotatePage.tsx';
import { DocumentList } from './routes/DocumentList.tsx';
import { NotFound } from './routes/NotFound.tsx';
import { ProjectList } from './routes/ProjectList.tsx';
import { SessionProvider, useSession } from './stores/session.tsx';

export function App() {
  return (
    <SessionProvider>
      <Gate />
    </SessionProvider>
  );
}

function Gate() {
  const session = useSession();
  return (
    <Switch>
      <Match when={session.error()}>
        <main class="centered">
          <p role="alert" class="error">{errorMessage(session.error())}</p>
          <button type="button" onClick={() => session.retry()}>Try again</button>
        </main>
      </Match>
      <Match when={session.me() === undefined}>
        <main class="centered muted">Loading…</main>
      </Match>
      <Match when={session.me() === null}>
        <LoginForm />
      </Match>
      <Match when={session.me()} keyed>
        {(_me) => (
          <Router root={Shell}>
            <Route path="/" component={ProjectList} />
            <Route path="/projects/:projectId" component={DocumentList} />
            <Route path="/projects/:projectId/documents/:documentId" component={AnnotatePage} />
            <Route path="*" component={NotFound} />
          </Router>
        )}
      </Match>
    </Switch>
  );
}

function Shell(props: ParentProps) {
  return (
    <>
      <Header />
      <main>{props.children}</main>
    </>
  );
}
