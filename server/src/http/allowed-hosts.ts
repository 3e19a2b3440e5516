/**
 * DNS rebinding guard: the names this server answers for (the Host header), for the API, the
 * pages and the sync endpoint alike.
 *
 * A page on a name its author controls can have that name resolve to 127.0.0.1 a moment after
 * it loaded (DNS rebinding), and its script is then same-origin with whatever listens there: it
 * could sign in with the demo password, read an export, open a layer's socket (Origin and Host
 * agree, both its own name). It cannot choose the Host header its requests carry, though: that
 * stays its own name. So a request is answered only when its Host is
 * - an IP address (no name to rebind),
 * - `localhost` or a name under `.localhost` (browsers resolve those to this machine themselves),
 * - or a name in ALLOWED_HOSTS: `spanwise.example.org`, `.example.org` for that domain and every
 *   name under it, or `*` for any name (behind a proxy that checks names itself). Names may
 *   hold `_`, as Docker's service and container names do.
 * The health check is answered whatever the name (probes on an internal network reach an
 * instance by its service name), and so are the metrics behind their token (see app.ts).
 *
 * @example
 *   hostAllowed('localhost:3000', [])                  // true
 *   hostAllowed('evil.example:3000', [])               // false
 *   hostAllowed('team.example.org', ['.example.org'])  // true
 */
import { isIP } from 'node:net';

/** The name part of a Host header, lowercased and without its port or a final dot; null: not a host. */
export function hostName(header: string): string | null {
  const value = header.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(value);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? bracketed[1]! : null;
  const named = /^([a-z0-9_.-]+?)\.?(?::\d{1,5})?$/.exec(value);
  return named ? named[1]! : null;
}

/**
 * Whether a request with this Host header may be answered. No header at all is not a browser's
 * request (browsers always send one): it is answered.
 */
export function hostAllowed(header: string | undefined, allowed: readonly string[]): boolean {
  if (header === undefined || allowed.includes('*')) return true;
  const name = hostName(header);
  if (name === null || name === '') return false;
  if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost')) return true;
  return allowed.some((entry) => entry === name || (entry.startsWith('.') && (name.endsWith(entry) || name === entry.slice(1))));
}

/** What ALLOWED_HOSTS may list: names (`a.example`), domains (`.example`), or `*`. */
export const ALLOWED_HOST_ENTRY = /^(\*|\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*)$/;

/** Whether a host name (a URL's, bracketed or not, or HOST's) is this machine's loopback name. */
export function isLoopbackName(name: string): boolean {
  const bare = name.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return bare === 'localhost' || bare === '127.0.0.1' || bare === '::1';
}

/** The refusal's words, for a page and for a log line. */
export function hostRefusal(header: string | undefined): string {
  const name = header === undefined ? '' : (hostName(header) ?? header.slice(0, 100));
  return `this server does not answer for the name "${name}": add it to ALLOWED_HOSTS (comma-separated) where the server is started`;
}
