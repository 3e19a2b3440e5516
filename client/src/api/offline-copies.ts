/**
 * The last answer to each API read, kept in the browser's Cache Storage so that a page reloaded
 * while the server cannot be reached still opens what it last showed (the document's text, the
 * project, the user): with the shell the service worker keeps (public/sw.js) and the layers in
 * IndexedDB, the workspace opens offline and its edits sync once the server is back.
 *
 * Copies belong to one session: they are forgotten when anyone signs in or out (in every tab),
 * when the server says the session is over, and are never used past the session's end (kept
 * from `GET /api/session`): the next person at a browser someone left signed in does not find
 * their work there offline once that session has run out. Where Cache Storage is missing (a
 * page not served over https or from localhost) nothing is kept, and reads simply fail offline.
 */
const CACHE = 'spanwise-api';
const SESSION = '/session';

/** Reads worth keeping: not the export (a large stream, fetched on demand) nor the health check. */
const KEPT = /^\/(me|session|projects(\/\d+(\/documents)?)?|documents\/\d+)$/;

/** Bumped by forget(), here or in another tab: a read that began before must not leave a copy. */
let generation = 0;

/** Tells the app's other tabs that the copies were forgotten (their reads in flight are stale). */
const tabs = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('spanwise-offline-copies');
tabs?.addEventListener('message', () => generation++);

const storage = (): CacheStorage | null => (typeof caches === 'undefined' ? null : caches);

export function keepsCopy(path: string): boolean {
  return KEPT.test(path);
}

/** The generation a read starts in, to hand back to keep(). */
export function currentGeneration(): number {
  return generation;
}

/** Keeps `answer` (a JSON response, or a value to answer with) as the copy of `path`. */
export async function keep(path: string, answer: Response | unknown, startedIn: number): Promise<void> {
  const store = storage();
  if (!store || !keepsCopy(path)) return;
  try {
    const response = answer instanceof Response ? answer : new Response(JSON.stringify(answer), { headers: { 'content-type': 'application/json' } });
    const cache = await store.open(CACHE);
    if (startedIn !== generation) return;
    await cache.put(`/api${path}`, response);
  } catch {
    // A full or unavailable store only costs the offline copy.
  }
}

/** The kept answer to `path`, or undefined (none, or the session it was kept in is over). */
export async function copyOf(path: string): Promise<unknown> {
  const store = storage();
  if (!store || !keepsCopy(path)) return undefined;
  try {
    const cache = await store.open(CACHE);
    const session = (await (await cache.match(`/api${SESSION}`))?.json()) as { expiresAt?: string } | undefined;
    // Without its end kept (not yet answered), no copy is used; past it, they all go.
    if (!session?.expiresAt) return undefined;
    if (!(Date.parse(session.expiresAt) > Date.now())) {
      await forget();
      return undefined;
    }
    const kept = await cache.match(`/api${path}`);
    return kept ? await kept.json() : undefined;
  } catch {
    return undefined;
  }
}

/** Drops the copy of `path` (the server no longer shows it to this user). */
export async function drop(path: string): Promise<void> {
  try {
    await (await storage()?.open(CACHE))?.delete(`/api${path}`);
  } catch {
    // Nothing kept to drop.
  }
}

export async function forget(): Promise<void> {
  generation++;
  tabs?.postMessage('forget');
  try {
    await storage()?.delete(CACHE);
  } catch {
    // Nothing kept to forget.
  }
}
