/**
 * Room names: the one place both server and client learn how a layer is addressed.
 *
 * @example
 *   layerRoom(3, 7)          // "doc:3:user:7"
 *   parseRoom("doc:3:gold")  // { kind: "gold", documentId: 3 }
 */
export type Room =
  | { kind: 'layer'; documentId: number; userId: number }
  | { kind: 'gold'; documentId: number }
  | { kind: 'entities'; projectId: number };

const ID = '([1-9][0-9]{0,9})';
/** Ids are PostgreSQL `integer`s: a larger one names nothing (and would fail the lookup). */
const MAX_ID = 2_147_483_647;
const ids = (...values: string[]) => {
  const numbers = values.map(Number);
  return numbers.every((n) => n <= MAX_ID) ? numbers : null;
};
const LAYER = new RegExp(`^doc:${ID}:user:${ID}$`);
const GOLD = new RegExp(`^doc:${ID}:gold$`);
const ENTITIES = new RegExp(`^project:${ID}:entities$`);

export const layerRoom = (documentId: number, userId: number) => `doc:${documentId}:user:${userId}`;
export const goldRoom = (documentId: number) => `doc:${documentId}:gold`;
export const entitiesRoom = (projectId: number) => `project:${projectId}:entities`;

/** Parses a room name; returns null for anything that is not exactly one of the three shapes. */
export function parseRoom(name: string): Room | null {
  let m = LAYER.exec(name);
  let n: number[] | null;
  if (m) return (n = ids(m[1]!, m[2]!)) && { kind: 'layer', documentId: n[0]!, userId: n[1]! };
  m = GOLD.exec(name);
  if (m) return (n = ids(m[1]!)) && { kind: 'gold', documentId: n[0]! };
  m = ENTITIES.exec(name);
  if (m) return (n = ids(m[1]!)) && { kind: 'entities', projectId: n[0]! };
  return null;
}

export function roomName(room: Room): string {
  switch (room.kind) {
    case 'layer': return layerRoom(room.documentId, room.userId);
    case 'gold': return goldRoom(room.documentId);
    case 'entities': return entitiesRoom(room.projectId);
  }
}
