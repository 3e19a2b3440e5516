/**
 * Presence over Yjs awareness: the local state is `{ user: { id, name, color }, selection }`,
 * and the other clients in the room come back as a Solid signal.
 */
import { createSignal, type Accessor } from 'solid-js';
import type { Awareness } from 'y-protocols/awareness';

export interface PresenceUser {
  id: number;
  name: string;
  color: string;
}

export interface TextSelection {
  start: number;
  end: number;
}

export interface Peer {
  clientId: number;
  user: PresenceUser;
  selection: TextSelection | null;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];

/** A stable colour per user id, so a person looks the same in every browser. */
export function userColor(id: number): string {
  return PALETTE[Math.abs(id) % PALETTE.length]!;
}

function isUser(v: unknown): v is PresenceUser {
  const u = v as PresenceUser | null;
  return !!u && typeof u.id === 'number' && typeof u.name === 'string' && typeof u.color === 'string';
}

function isSelection(v: unknown): v is TextSelection {
  const s = v as TextSelection | null;
  return !!s && Number.isInteger(s.start) && Number.isInteger(s.end) && s.end > s.start;
}

function samePeer(peer: Peer, user: PresenceUser, selection: TextSelection | null): boolean {
  return (
    peer.user.id === user.id &&
    peer.user.name === user.name &&
    peer.user.color === user.color &&
    peer.selection?.start === selection?.start &&
    peer.selection?.end === selection?.end
  );
}

export function createPresence(awareness: Awareness, user: PresenceUser) {
  // A peer whose state did not change keeps its object, so that a list keyed by them
  // re-renders only who moved (each move of anyone's selection is a change).
  let before = new Map<number, Peer>();
  const read = (): Peer[] => {
    const peers: Peer[] = [];
    const next = new Map<number, Peer>();
    for (const [clientId, state] of awareness.getStates()) {
      if (clientId === awareness.clientID || !isUser(state.user)) continue;
      const selection = isSelection(state.selection) ? state.selection : null;
      const old = before.get(clientId);
      const peer: Peer =
        old && samePeer(old, state.user, selection) ? old : { clientId, user: { id: state.user.id, name: state.user.name, color: state.user.color }, selection: selection && { start: selection.start, end: selection.end } };
      next.set(clientId, peer);
      peers.push(peer);
    }
    before = next;
    return peers.sort((a, b) => a.user.name.localeCompare(b.user.name) || a.clientId - b.clientId);
  };
  const [peers, setPeers] = createSignal<Peer[]>([]);
  const onChange = () => setPeers(read());
  awareness.on('change', onChange);
  awareness.setLocalState({ user, selection: null });

  let last: TextSelection | null = null;
  return {
    peers,
    setSelection(selection: TextSelection | null) {
      if (last?.start === selection?.start && last?.end === selection?.end) return;
      last = selection;
      awareness.setLocalStateField('selection', selection);
    },
    destroy() {
      awareness.off('change', onChange);
      awareness.setLocalState(null);
    },
  } satisfies { peers: Accessor<Peer[]>; setSelection(s: TextSelection | null): void; destroy(): void };
}
