/**
 * The app: a session check, then either the login form (on whatever URL was asked for) or
 * the router with its pages.
 */
import { createEffect, ErrorBoundary, Match, on, Switch, type ParentProps } from 'solid-js';
import { Route, Router, useLocation } from '@solidjs/router';
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
      {/* Keyed by who: the same user's session read again keeps every page as it is. */}
      <Match when={session.me()?.id} keyed>
        {(_id) => (
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
  const location = useLocation();
  /** Clears a page's failure: called when the user goes to another page. */
  let clearFailure: (() => void) | null = null;
  createEffect(
    on(
      () => location.pathname,
      () => {
        clearFailure?.();
        clearFailure = null;
      },
      { defer: true },
    ),
  );
  // The first thing Tab reaches: past the header (and, on a document, the labels and the
  // status) straight to the article, or to the page's content elsewhere.
  const skip = (e: MouseEvent) => {
    e.preventDefault();
    const target = document.querySelector<HTMLElement>('[data-article]') ?? document.querySelector<HTMLElement>('main');
    target?.focus();
  };
  return (
    <>
      <a class="skip-link" href="#content" onClick={skip}>
        Skip to the content
      </a>
      <Header />
      <main id="content" tabindex="-1">
        {/* A page that fails to render (an answer it did not expect, say) says so, and the rest
            of the app — the header, the other pages — goes on; the layers are kept in IndexedDB. */}
        <ErrorBoundary
          fallback={(err, reset) => {
            clearFailure = reset;
            return (
              <section class="page">
                <p role="alert" class="error">
                  This page could not be shown: {errorMessage(err)}
                </p>
                <button type="button" onClick={reset}>
                  Try again
                </button>
              </section>
            );
          }}
        >
          {props.children}
        </ErrorBoundary>
      </main>
    </>
  );
}
