/** The few HTTP calls the sync benchmark makes to our server's API. */
import type { DocumentSummary, Health, Me, ProjectDetail, ProjectSummary } from '@spanwise/shared';

export class Api {
  constructor(
    readonly baseUrl: string,
    private cookie: string | null = null,
  ) {}

  get sessionCookie(): string | null {
    return this.cookie;
  }

  /** Signs in and keeps the session cookie (`name=value`) for later calls and sockets. */
  async login(username: string, password: string): Promise<Me> {
    const res = await fetch(`${this.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
      signal: AbortSignal.timeout(15_000),
    });
    if (res.status !== 200) throw new Error(`login as ${username} failed: HTTP ${res.status}`);
    const cookie = res.headers.getSetCookie()[0];
    if (!cookie) throw new Error(`login as ${username}: no session cookie`);
    this.cookie = cookie.split(';')[0]!;
    return (await res.json()) as Me;
  }

  async get<T>(pathname: string): Promise<T> {
    return this.#call<T>('GET', pathname);
  }

  async post<T>(pathname: string, body: unknown): Promise<T> {
    return this.#call<T>('POST', pathname, body);
  }

  async #call<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${pathname}`, {
      method,
      headers: {
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${pathname}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  health = () => this.get<Health>('/api/health');
  projects = () => this.get<ProjectSummary[]>('/api/projects');
  project = (id: number) => this.get<ProjectDetail>(`/api/projects/${id}`);
  documents = (projectId: number) => this.get<DocumentSummary[]>(`/api/projects/${projectId}/documents`);
  document = (id: number) => this.get<{ id: number; text: string }>(`/api/documents/${id}`);
  createDocument = (projectId: number, title: string, text: string) =>
    this.post<{ id: number }>(`/api/projects/${projectId}/documents`, { title, text });
}
