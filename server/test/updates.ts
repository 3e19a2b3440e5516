/** Yjs updates for tests. */
import * as Y from 'yjs';

/**
 * The first one-byte change of `update` that still decodes but throws when applied (onto a doc
 * holding `onto`, for an update that builds on earlier ones).
 */
export function findPoison(update: Uint8Array, onto?: Uint8Array): Uint8Array {
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
      const doc = new Y.Doc();
      if (onto) Y.applyUpdate(doc, onto);
      try {
        Y.applyUpdate(doc, changed);
      } catch {
        return changed;
      }
    }
  }
  throw new Error('no one-byte change of this update decodes and then fails to apply');
}
