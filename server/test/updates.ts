/** Yjs updates for tests. */
import * as Y from 'yjs';

/** The first one-byte change of `update` that still decodes but throws when applied. */
export function findPoison(update: Uint8Array): Uint8Array {
  for (let i = 0; i < update.length; i++) {
    for (let v = 0; v < 256; v++) {
      if (v === update[i]) continue;
      const changed = Uint8Array.from(update);
      changed[i] = v;
      try {
        Y.decodeUpdate(changed);
      } catch {
        continue;
      }
      try {
        Y.applyUpdate(new Y.Doc(), changed);
      } catch {
        return changed;
      }
    }
  }
  throw new Error('no one-byte change of this update decodes and then fails to apply');
}
