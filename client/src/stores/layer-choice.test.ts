import { describe, expect, it } from 'vitest';
import type { Member, ProjectDetail, ProjectMode, Role } from '@spanwise/shared/api';
import { layerOptions, pickLayer } from './layer-choice.ts';

const DOC = 7;
const members: Member[] = [
  { id: 1, username: 'olga', role: 'owner' },
  { id: 2, username: 'carl', role: 'curator' },
  { id: 3, username: 'bea', role: 'annotator' },
  { id: 4, username: 'al', role: 'annotator' },
  { id: 5, username: 'vic', role: 'viewer' },
];
const project = (role: Role, mode: ProjectMode): ProjectDetail =>
  ({ id: 9, name: 'p', role, mode, members, schema: { entityLabels: [], claimLabels: [], relationLabels: [] }, guidelines: '' }) as unknown as ProjectDetail;
const me = (id: number) => ({ id, username: members.find((m) => m.id === id)!.username });
const shown = (role: Role, mode: ProjectMode, self: number) =>
  layerOptions(project(role, mode), me(self), DOC).map((o) => `${o.key}${o.readOnly ? ' (read-only)' : ''} ${o.room}`);

describe('layer choice', () => {
  it('blind mode: an annotator gets their own layer only', () => {
    expect(shown('annotator', 'blind', 3)).toEqual(['user:3 doc:7:user:3']);
  });

  it('blind mode: a curator gets their own layer, the annotators’ first, the others, then gold — all writable', () => {
    expect(shown('curator', 'blind', 2)).toEqual([
      'user:2 doc:7:user:2',
      'user:4 doc:7:user:4',
      'user:3 doc:7:user:3',
      'user:1 doc:7:user:1',
      'user:5 doc:7:user:5',
      'gold doc:7:gold',
    ]);
  });

  it('a viewer gets gold and the annotators’ layers, every one read-only as the server opens it', () => {
    expect(shown('viewer', 'blind', 5)).toEqual(['gold (read-only) doc:7:gold', 'user:3 (read-only) doc:7:user:3', 'user:4 (read-only) doc:7:user:4']);
    expect(shown('viewer', 'open', 5)).toEqual(['gold (read-only) doc:7:gold']);
  });

  it('open mode: everyone else writes gold', () => {
    for (const [role, self] of [['annotator', 3], ['curator', 2], ['owner', 1]] as const) expect(shown(role, 'open', self)).toEqual(['gold doc:7:gold']);
  });

  it('picks the layer the query names, else the first offered; never one not offered', () => {
    const options = layerOptions(project('annotator', 'blind'), me(3), DOC);
    expect(pickLayer(options, 'user:3').key).toBe('user:3');
    expect(pickLayer(options, 'gold').key).toBe('user:3');
    expect(pickLayer(options, undefined).key).toBe('user:3');
  });
});
