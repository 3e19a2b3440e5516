/**
 * Which selection a pointer drag made: that one is snapped out to whole words when labelled
 * (word-snap.ts); one made otherwise, by the arrows or a script, is taken as it is. A double-
 * click's word, made while the pointer is down, counts as dragged, and is whole already.
 *
 * Selection changes are the pointer's while it is down, and a moment after it is up (the
 * browser may settle the selection then). A press on a control (a label's button, the popover)
 * starts no drag of its own, and ends the last one's moment: it labels or edits what was dragged.
 *
 * @example
 *   const drags = trackDraggedSelection(() => article);
 *   if (drags.isDragged(selectionOffsets(article))) range = snapToWords(text, start, end);
 */
import { onCleanup } from 'solid-js';
import type { TextSelection } from '../sync/presence.ts';
import { selectionOffsets } from './text-selection.ts';

/** How long after the pointer is up a selection change is still the drag's. */
const SETTLE_MS = 300;
const CONTROLS = 'button, select, input, textarea, a, [role="dialog"]';

export function trackDraggedSelection(container: () => HTMLElement) {
  /** The selection the last drag left, as it left it. */
  let dragged: TextSelection | null = null;
  /** Until when a selection change is the pointer's. */
  let until = 0;
  const onDown = (e: PointerEvent) => {
    if (e.target instanceof Element && e.target.closest(CONTROLS)) {
      until = 0;
      return;
    }
    until = Number.POSITIVE_INFINITY;
    dragged = null;
  };
  const onUp = () => {
    if (until === Number.POSITIVE_INFINITY) until = performance.now() + SETTLE_MS;
  };
  const onSelection = () => {
    if (performance.now() < until) dragged = selectionOffsets(container());
  };
  document.addEventListener('pointerdown', onDown);
  document.addEventListener('pointerup', onUp);
  // (A touch that scrolls, or a drag of the selected text, ends so, with no pointerup.)
  document.addEventListener('pointercancel', onUp);
  document.addEventListener('selectionchange', onSelection);
  onCleanup(() => {
    document.removeEventListener('pointerdown', onDown);
    document.removeEventListener('pointerup', onUp);
    document.removeEventListener('pointercancel', onUp);
    document.removeEventListener('selectionchange', onSelection);
  });
  return {
    /** Whether `at` (the selection's offsets now) is what the last drag left. */
    isDragged: (at: TextSelection | null): boolean => at !== null && dragged !== null && at.start === dragged.start && at.end === dragged.end,
    /** Forgets the drag (its selection was labelled). */
    forget(): void {
      dragged = null;
      until = 0;
    },
  };
}
