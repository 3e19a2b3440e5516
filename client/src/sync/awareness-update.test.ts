import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { applyAwarenessUpdate, Awareness, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness';
import { withoutRemovals } from './awareness-update.ts';

function peer(state: Record<string, unknown>): Awareness {
  const awareness = new Awareness(new Y.Doc());
  awareness.setLocalState(state);
  return awareness;
}

describe('withoutRemovals', () => {
  it('keeps the states an update carries and drops its removals', () => {
    const here = new Awareness(new Y.Doc());
    const a = peer({ user: { id: 1 } });
    const b = peer({ server: { saving: 'delayed' } });
    const sibling = new Awareness(new Y.Doc());
    for (const p of [a, b]) {
      const update = encodeAwarenessUpdate(p, [p.clientID]);
      applyAwarenessUpdate(here, update, null);
      applyAwarenessUpdate(sibling, update, null);
    }
    // The sibling's socket went: it drops b; a renews its state meanwhile.
    removeAwarenessStates(sibling, [b.clientID], null);
    a.setLocalState({ user: { id: 1 }, selection: { start: 2, end: 5 } });
    applyAwarenessUpdate(sibling, encodeAwarenessUpdate(a, [a.clientID]), null);

    const passedOn = encodeAwarenessUpdate(sibling, [a.clientID, b.clientID]);
    applyAwarenessUpdate(here, withoutRemovals(passedOn, () => true)!, null);
    expect(here.getStates().get(b.clientID)).toEqual({ server: { saving: 'delayed' } });
    expect(here.getStates().get(a.clientID)).toEqual({ user: { id: 1 }, selection: { start: 2, end: 5 } });
    // Taken whole, the removal would have gone through.
    applyAwarenessUpdate(here, passedOn, null);
    expect(here.getStates().has(b.clientID)).toBe(false);
  });

  it('is null when the update holds only removals', () => {
    const sibling = new Awareness(new Y.Doc());
    const a = peer({ user: { id: 1 } });
    applyAwarenessUpdate(sibling, encodeAwarenessUpdate(a, [a.clientID]), null);
    removeAwarenessStates(sibling, [a.clientID], null);
    expect(withoutRemovals(encodeAwarenessUpdate(sibling, [a.clientID]), () => true)).toBeNull();
  });

  it('keeps the removals of clients it is not asked to drop', () => {
    const sibling = new Awareness(new Y.Doc());
    const a = peer({ user: { id: 1 } });
    const b = peer({ user: { id: 2 } });
    for (const p of [a, b]) applyAwarenessUpdate(sibling, encodeAwarenessUpdate(p, [p.clientID]), null);
    removeAwarenessStates(sibling, [a.clientID, b.clientID], null);
    const update = encodeAwarenessUpdate(sibling, [a.clientID, b.clientID]);
    const here = new Awareness(new Y.Doc());
    for (const p of [a, b]) applyAwarenessUpdate(here, encodeAwarenessUpdate(p, [p.clientID]), null);
    applyAwarenessUpdate(here, withoutRemovals(update, (client) => client === a.clientID)!, null);
    expect(here.getStates().has(a.clientID)).toBe(true);
    expect(here.getStates().has(b.clientID)).toBe(false);
  });
});
