import { describe, expect, it } from 'vitest';
import { goldRoom, layerRoom, parseRoom } from './rooms.ts';

describe('parseRoom', () => {
  it('reads the three shapes', () => {
    expect(parseRoom(layerRoom(3, 7))).toEqual({ kind: 'layer', documentId: 3, userId: 7 });
    expect(parseRoom(goldRoom(2_147_483_647))).toEqual({ kind: 'gold', documentId: 2_147_483_647 });
    expect(parseRoom('project:12:entities')).toEqual({ kind: 'entities', projectId: 12 });
  });

  it('refuses ids past what the database holds, and anything else', () => {
    for (const name of ['doc:2147483648:gold', 'doc:1:user:3000000000', 'project:99999999999:entities', 'doc:01:gold', 'doc:1:gold ', 'doc:0:gold', 'doc:1:user:']) {
      expect(parseRoom(name), name).toBeNull();
    }
  });
});
