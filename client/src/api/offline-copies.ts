/**
 * The last answer to each API read, kept in the browser's Cache Storage so that a page reloaded
 * while the server cannot be reached still opens what it last showed (the document's text, the
 * project, the user): with the shell the service worker keeps (public/sw.js) and the layers in
 * IndexedDB, the workspace opens offline and its edits sync once the server is back.
 *
 * Copies belong to one signed-in user: they are forgotten when anyone signs in or out and when
 * the server says the session is over. Where Cache Storage is missing (a page not served over
 * https or from localhost) nothing is kept and reads simply fail offline, as before.
 */
const CACHE = 'spanwise-api';

/** Reads worth keeping: not the export (a large stream, fetched on demand) nor the health check. */
const KEPT = /^\/(me|projects(\/\d+(\/documents)?)?|documents\/\d+)$/;

/** Bumped by forget(): a read that began before it must not leave a copy after it. */
let generation = 0;

const storage = (): CacheStorage | null => (typeof caches === 'undefined' ? null : caches);

export function keepsCopy(path: string): boolean {
  return KEPT.test(path);
}

/** The generation a read starts in, to hand back to keep(). */
export function currentGeneration(): number {
  return generation;
}

export async function keep(path: string, data: unknown, startedIn: number): Promise<void> {
  const store = storage();
  if (!store || !keepsCopy(path)) return;
  try {
    const cache = await store.open(CACHE);
    if (startedIn !== generation) return;
    await cache.put(`/api${path}`, new Response(JSON.stringify(data), { headers: { 'content-type': 'application/json' } }));
  } catch {
    // A full or unavailable store only costs the offline copy.
  }
}

/** The kept answer to `path`, or undefined. */
export async function copyOf(path: string): Promise<unknown> {
  const store = storage();
  if (!store || !keepsCopy(path)) return undefined;
  try {
    const kept = await (await store.open(CACHE)).match(`/api${path}`);
    return kept ? await kept.json() : undefined;
  } catch {
    return undefined;
  }
}

export async function forget(): Promise<void> {
  generation++;
  try {
    await storage()?.delete(CACHE);
  } catch {
    // Nothing kept to forget.
  }
}
