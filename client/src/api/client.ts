/**
 * The one typed client for the HTTP API. Every call is same-origin JSON; a non-2xx answer
 * becomes an ApiError carrying the server's `{ error: { code, message, field? } }`.
 *
 * @example
 *   const me = await api.login('alice', 'demo');
 *   const projects = await api.projects();
 */
import type {
  ApiError as ApiErrorBody,
  DocumentDetail,
  DocumentStatus,
  DocumentSummary,
  Me,
  ProjectDetail,
  ProjectSummary,
} from '@spanwise/shared/api';
import { copyOf, currentGeneration, drop, forget, keep, keepsCopy } from './offline-copies.ts';
import { exclusively, forgetSignOut, NotNow, pendingSignOut, rememberSignOut, tabsCoordinated, timeoutSignal } from './pending-sign-out.ts';
import { within } from '../lib/within.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** The server itself answered (its own error body), not a proxy in front of it, nor no one. */
    readonly fromServer = false,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Dispatched on `window` when a call made with a session answers 401, so the session store
 * can show the login form again without every page handling it.
 */
export const UNAUTHORIZED_EVENT = 'spanwise:unauthorized';

/**
 * Tells the app's other tabs that who is signed in changed (a sign-in or sign-out here): each asks
 * the server again, so that a tab left open does not go on showing the last user (see session.tsx).
 */
const sessionTabs = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('spanwise-session');
const announceSessionChange = () => sessionTabs?.postMessage('changed');

/** Calls `listener` whenever another tab signed in or out; returns a function that stops it. */
export function onSessionChangeElsewhere(listener: () => void): () => void {
  sessionTabs?.addEventListener('message', listener);
  return () => sessionTabs?.removeEventListener('message', listener);
}

/** What a proxy in front answers while the app servers behind it are away. */
const AWAY = new Set([502, 503, 504]);

/** Whether an error body is the server's own (`{ error: { code } }`), not a proxy's or gateway's. */
const fromServer = (body: unknown) => typeof (body as Partial<ApiErrorBody> | null)?.error?.code === 'string';

/** An answer's JSON body, or null; a proxy's 502/503/504 that stalls after its headers is waited for 2 s at most. */
function bodyOf(res: Response): Promise<unknown> {
  const body = res.json().catch(() => null);
  return AWAY.has(res.status) ? within(body, 2_000, () => null) : body;
}

const UNREACHABLE = 'The server cannot be reached. Check your connection and try again.';

/**
 * A read answered by the server is kept (offline-copies.ts); one the server cannot be reached
 * for (or a proxy says is away) is answered from that copy, so a page reloaded offline still
 * opens. A read the server now refuses (403, 404) loses its copy.
 */
async function request<T>(method: string, path: string, body?: unknown, signedIn = true, signal?: AbortSignal, copyWhenAway = true): Promise<T> {
  let res: Response;
  const startedIn = currentGeneration();
  const reading = method === 'GET';
  const answerFromCopy = reading && copyWhenAway;
  try {
    res = await fetch(`/api${path}`, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch {
    const copy = answerFromCopy ? await copyOf(path) : undefined;
    if (copy !== undefined) return copy as T;
    throw new ApiError(0, 'network', UNREACHABLE);
  }
  if (res.status === 204) return undefined as T;
  const copy = reading && res.ok && keepsCopy(path) ? res.clone() : null;
  const data = await bodyOf(res);
  // The server is away when a proxy says so; not on the server's own 503 (its database busy or
  // unreachable, its disk full), which says it is there: a kept copy is not passed off as its answer.
  if (answerFromCopy && AWAY.has(res.status) && !fromServer(data)) {
    const kept = await copyOf(path);
    if (kept !== undefined) return kept as T;
  }
  if (!res.ok) {
    if (res.status === 401) {
      void forget();
      // The server's own: no session left to end (not a wrong password, which says nothing of
      // the cookie held, nor a proxy's).
      if (path !== '/auth/login' && fromServer(data)) forgetSignOut();
    }
    if (reading && (res.status === 403 || res.status === 404)) void drop(path);
    if (res.status === 401 && signedIn) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    const err = (data as Partial<ApiErrorBody> | null)?.error;
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? res.statusText, err?.field, fromServer(data));
  }
  if (copy) void keep(path, copy, startedIn);
  return data as T;
}

/** How long a sign-out may take before it counts as not heard (and is remembered, and sent again). */
const SIGN_OUT_TIMEOUT_MS = 15_000;
/** How long one sent again may take: in the background, or before a sign-in, which waits for it. */
const RESEND_TIMEOUT_MS = 5_000;
/** How long a sign-in may take: while it runs, a sign-out in another tab waits for it. */
const SIGN_IN_TIMEOUT_MS = 20_000;
/** How long a sign-out waits for a sign-in or sign-out under way in another tab before the page signs out anyway. */
const SIGN_OUT_WAIT_MS = 10_000;
/** Tries sent again in the background: the first at once, then after 5 s, doubling up to a minute. */
const RESEND_FIRST_DELAY_MS = 5_000;
const RESEND_MAX_DELAY_MS = 60_000;

/**
 * Asks the server to end the session (the cookie is httpOnly: only the server can). Only its
 * 204 says it has: anything else that passes for success (a captive portal's page) does not.
 */
async function endSession(signal: AbortSignal): Promise<void> {
  const answer = await request<unknown>('POST', '/auth/logout', {}, false, signal);
  if (answer !== undefined) throw new ApiError(0, 'network', UNREACHABLE);
}

/**
 * Sends the sign-out waiting (pending-sign-out.ts), if one still does, once more; call it with
 * no other sign-in or sign-out under way (`exclusively`). Forgotten once the server has it, or
 * has itself answered that it will not (a 4xx of its own); kept while no one answers, a proxy
 * does, or the server itself cannot (a 5xx of its own: its database busy, say). Returns whether
 * one still waits.
 */
async function settleHeld(timeoutMs: number): Promise<boolean> {
  const id = pendingSignOut(); // (a sign-in in another tab may have forgotten it meanwhile)
  if (id === null) return false;
  try {
    await endSession(timeoutSignal(timeoutMs));
    forgetSignOut(id);
    await forget(); // (the copies of that session's reads)
  } catch (e) {
    if (e instanceof ApiError && e.fromServer && e.status < 500) forgetSignOut(id);
  }
  return pendingSignOut() !== null;
}

let settling: Promise<void> | null = null;
let resendDelay = 0;
let resendAt = 0;

/**
 * Tells the server, in the background, of a sign-out it has not heard of yet, if one waits: one
 * try at a time in a tab, each after the last failed one's delay (`now`: without waiting it out),
 * and none while a sign-in or sign-out is under way in any tab. Where tabs cannot keep out of each
 * other's way (no Web Locks), it is left to the next sign-in in any tab, which sends it first.
 */
function settleSignOut(now = false): Promise<void> {
  if (pendingSignOut() === null) {
    resendDelay = 0;
    resendAt = 0;
    return Promise.resolve();
  }
  if (!tabsCoordinated() || (!now && performance.now() < resendAt)) return Promise.resolve();
  settling ??= exclusively(() => settleHeld(RESEND_TIMEOUT_MS), { ifFree: true })
    .then(
      (waits) => {
        resendDelay = waits ? Math.min(Math.max(resendDelay * 2, RESEND_FIRST_DELAY_MS), RESEND_MAX_DELAY_MS) : 0;
        resendAt = performance.now() + resendDelay;
      },
      () => {}, // (NotNow: tried again at the next turn)
    )
    .finally(() => (settling = null));
  return settling;
}

/** Keeps when this session ends, which bounds how long the copies are used (offline-copies.ts). */
const keepSessionEnd = (signal?: AbortSignal) => request<{ expiresAt: string }>('GET', '/session', undefined, false, signal).catch(() => {});

export const api = {
  /** The signed-in user, or null without a session. */
  me: async (): Promise<Me | null> => {
    // Signed out here, and the server not yet told: signed out still (a reload must not sign the
    // user back in), whether or not it can be told now.
    if (pendingSignOut() !== null) {
      void settleSignOut(true);
      return null;
    }
    try {
      const me = await request<Me>('GET', '/me', undefined, false);
      void keepSessionEnd();
      return me;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    }
  },
  /** Signing in or out forgets the copies kept of the last user's reads, in every tab. */
  login: (username: string, password: string) =>
    exclusively(async () => {
      // The last session first, if the server never heard it end (its cookie is about to be
      // replaced): tried for a while, as the user waits on the sign-in. Then that one is
      // forgotten whatever its fate, as this browser no longer holds its cookie.
      const last = pendingSignOut();
      if (last !== null) await settleHeld(RESEND_TIMEOUT_MS);
      const me = await request<Me>('POST', '/auth/login', { username, password }, false, timeoutSignal(SIGN_IN_TIMEOUT_MS));
      if (last !== null) forgetSignOut(last);
      // Signed out in another tab meanwhile (that sign-out waited too long for this sign-in):
      // the browser's session, this new one, is ended as that tab asked.
      if (pendingSignOut() !== null) {
        await settleHeld(RESEND_TIMEOUT_MS);
        throw new ApiError(0, 'signed_out_elsewhere', 'Signed out in another tab meanwhile. Sign in again.');
      }
      // (Still in turn: a sign-out waiting in another tab must not forget the copies before
      // these are kept, or they would outlive it.)
      await forget();
      // What `GET /me` would answer now: a reload offline finds the user signed in.
      await keep('/me', me, currentGeneration());
      await keepSessionEnd(timeoutSignal(RESEND_TIMEOUT_MS));
      announceSessionChange();
      return me;
    }),
  /**
   * Ends the session. One the server cannot be told of now (no answer, a proxy's, none in 15 s,
   * or a sign-in or sign-out in another tab that keeps it waiting 10 s) is remembered and told later
   * (pending-sign-out.ts); the page signs out either way (see session.tsx).
   */
  logout: async (userId: number) => {
    await forget();
    /** Whether this page signs out (the other tabs are told): not when the session stays on. */
    let signsOut = true;
    try {
      await exclusively(
        async () => {
          try {
            // The browser's session may no longer be this page's user's (signed out and in as
            // someone else in another tab this page did not hear from): not theirs to end.
            // (Not answered, it is told later as a sign-out is: see the catch.)
            const now = await request<Me>('GET', '/me', undefined, false, timeoutSignal(SIGN_OUT_TIMEOUT_MS), false).catch((e: unknown) => {
              if (e instanceof ApiError && e.status === 401) return null;
              throw e;
            });
            if (now === null) {
              forgetSignOut(); // over already
              return;
            }
            if (now.id !== userId) throw new ApiError(409, 'session_changed', 'Someone else has signed in on this browser since.', undefined, true);
            await endSession(timeoutSignal(SIGN_OUT_TIMEOUT_MS));
            forgetSignOut();
          } catch (e) {
            // Not the server's own answer (none, or a proxy's): the page signs out, and the
            // server is told later.
            if (!(e instanceof ApiError && e.fromServer)) rememberSignOut();
            throw e;
          }
        },
        { waitMs: SIGN_OUT_WAIT_MS },
      );
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'session_changed' || (e.fromServer && e.status >= 500))) signsOut = false;
      if (!(e instanceof NotNow)) throw e;
      rememberSignOut();
      throw new ApiError(0, 'network', UNREACHABLE);
    } finally {
      await forget(); // (what a read in flight meanwhile kept)
      if (signsOut) announceSessionChange();
    }
  },
  /** Forgets the copies without asking the server (it said the session is over). */
  forgetCopies: forget,
  /** Tells the server of a sign-out it has not heard of yet, if there is one. */
  settleSignOut,
  projects: () => request<ProjectSummary[]>('GET', '/projects'),
  project: (id: number) => request<ProjectDetail>('GET', `/projects/${id}`),
  /** The project as the server says now: never a kept copy (it fails while the server is away, or after 10 s). */
  projectNow: (id: number) => request<ProjectDetail>('GET', `/projects/${id}`, undefined, true, AbortSignal.timeout(10_000), false),
  documents: (projectId: number) => request<DocumentSummary[]>('GET', `/projects/${projectId}/documents`),
  document: (id: number) => request<DocumentDetail>('GET', `/documents/${id}`),
  setStatus: (documentId: number, status: DocumentStatus) =>
    request<{ status: DocumentStatus }>('PUT', `/documents/${documentId}/status`, { status }),
};

/** A message fit to show a person, whatever was thrown. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return 'Something went wrong.';
}
