/**
 * Undo and redo of this page's own edits to a layer (Yjs' UndoManager on its annotations):
 * a label, a relabel, an attribute, a deletion, each one step. What others do on the layer,
 * and what comes from this browser's copy or its other tabs, is never undone here: those
 * arrive with their provider as the transaction's origin, and only edits made on this page
 * (no origin) are tracked.
 */
import { createSignal, onCleanup } from 'solid-js';
import * as Y from 'yjs';
import { annotationsMap } from '@spanwise/shared/layer';

export function createUndo(doc: Y.Doc) {
  // (Each edit its own step: two labels in quick succession are undone one at a time.)
  const manager = new Y.UndoManager(annotationsMap(doc), { captureTimeout: 0 });
  const [state, setState] = createSignal({ undo: false, redo: false });
  const update = () => setState({ undo: manager.undoStack.length > 0, redo: manager.redoStack.length > 0 });
  manager.on('stack-item-added', update);
  manager.on('stack-item-popped', update);
  manager.on('stack-cleared', update);
  onCleanup(() => manager.destroy());
  return {
    canUndo: () => state().undo,
    canRedo: () => state().redo,
    /** Whether there was an edit to undo. */
    undo: (): boolean => manager.undo() !== null,
    redo: (): boolean => manager.redo() !== null,
  };
}
