/**
 * Paints the other people's selections over the article with the CSS Custom Highlight API,
 * which styles DOM Ranges without adding elements to the text. Browsers without it get none.
 */
import { createEffect, onCleanup, type Accessor } from 'solid-js';
import { rangeAt } from '../lib/text-selection.ts';
import { PALETTE, type Peer } from './presence.ts';

const names = PALETTE.map((_, i) => `peer-${i}`);

export function showPeerSelections(container: Accessor<HTMLElement | undefined>, peers: Accessor<Peer[]>, rerendered: Accessor<unknown>) {
  if (typeof CSS === 'undefined' || !('highlights' in CSS) || typeof Highlight === 'undefined') return;
  const clear = () => names.forEach((n) => CSS.highlights.delete(n));
  createEffect(() => {
    rerendered(); // ranges point at text nodes; recompute after the article re-renders
    const el = container();
    const byName = new Map<string, Range[]>();
    for (const peer of peers()) {
      if (!el || !peer.selection) continue;
      const range = rangeAt(el, peer.selection.start, peer.selection.end);
      const name = `peer-${Math.max(0, PALETTE.indexOf(peer.user.color))}`;
      if (range) byName.set(name, [...(byName.get(name) ?? []), range]);
    }
    clear();
    for (const [name, ranges] of byName) CSS.highlights.set(name, new Highlight(...ranges));
  });
  onCleanup(clear);
}
