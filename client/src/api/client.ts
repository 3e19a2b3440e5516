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
import { copyOf, currentGeneration, forget, keep } from './offline-copies.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
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
 * A read answered by the server is kept (offline-copies.ts); one the server cannot be reached
 * for is answered from that copy, so a page reloaded offline still opens.
 */
async function request<T>(method: string, path: string, body?: unknown, signedIn = true): Promise<T> {
  let res: Response;
  const startedIn = currentGeneration();
  try {
    res = await fetch(`/api${path}`, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    const copy = method === 'GET' ? await copyOf(path) : undefined;
    if (copy !== undefined) return copy as T;
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const data: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401) void forget();
    if (res.status === 401 && signedIn) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    const err = (data as Partial<ApiErrorBody> | null)?.error;
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? res.statusText, err?.field);
  }
  if (method === 'GET') void keep(path, data, startedIn);
  return data as T;
}

export const api = {
  /** The signed-in user, or null without a session. */
  me: async (): Promise<Me | null> => {
    try {
      return await request<Me>('GET', '/me', undefined, false);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    }
  },
  /** Signing in or out forgets the copies kept of the last user's reads. */
  login: async (username: string, password: string) => {
    const me = await request<Me>('POST', '/auth/login', { username, password }, false);
    await forget();
    // What `GET /me` would answer now: a reload offline finds the user signed in.
    await keep('/me', me, currentGeneration());
    return me;
  },
  logout: async () => {
    await forget();
    await request<void>('POST', '/auth/logout', {}, false);
  },
  /** Forgets the copies without asking the server (it said the session is over). */
  forgetCopies: forget,
  projects: () => request<ProjectSummary[]>('GET', '/projects'),
  project: (id: number) => request<ProjectDetail>('GET', `/projects/${id}`),
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
