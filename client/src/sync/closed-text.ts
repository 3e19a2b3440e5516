/**
 * What the page says when the server closed a layer for good or until *Try again*: a few words
 * for the connection status, and a sentence for the banner (none when signing out, which takes
 * the person to the sign-in form).
 */
import { CloseCode } from '@spanwise/shared/protocol';

/** Where edits not yet saved are: `{kept}` in a banner. */
const KEPT = '{kept}';

const TEXTS: Record<number, { status: string; banner: string | null }> = {
  [CloseCode.unauthenticated]: { status: 'signed out', banner: null },
  [CloseCode.otherUser]: { status: 'signed in as someone else', banner: null },
  [CloseCode.forbidden]: { status: 'no access to this layer', banner: 'You do not have access to this layer.' },
  [CloseCode.unknownRoom]: { status: 'this layer does not exist', banner: 'The server does not know this layer.' },
  [CloseCode.tooBig]: {
    status: 'stopped — changes too large to send',
    banner: `Your changes are too large for the server to take in one message. They are ${KEPT}; nothing was saved since.`,
  },
  [CloseCode.malformed]: {
    status: 'stopped — the server could not read a message',
    banner: `The server could not read a message from this page. Your changes are ${KEPT}; nothing was saved since.`,
  },
};

export function closedStatus(code: number | null): string {
  return (code !== null && TEXTS[code]?.status) || 'closed';
}

/** `keptLocally`: whether the browser's copy of the layer holds the edits (else only the page). */
export function closedBanner(code: number, keptLocally = true): string | null {
  const text = TEXTS[code];
  if (!text) return 'The server closed this layer.';
  return text.banner?.replace(KEPT, keptLocally ? 'kept in this browser' : 'kept only as long as this page stays open') ?? null;
}
