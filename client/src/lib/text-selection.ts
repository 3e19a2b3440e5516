/**
 * Offsets of the browser selection inside the article. The article element holds only the
 * document's text nodes (spans are elements around them, labels live in attributes), so the
 * text of a DOM Range from the container's start to a point is exactly the UTF-16 offset.
 */
import type { TextSelection } from '../sync/presence.ts';

/** The selection's [start, end) in the container's text, clipped to it; null when empty or outside. */
export function selectionOffsets(container: HTMLElement): TextSelection | null {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  const whole = document.createRange();
  whole.selectNodeContents(container);
  // Entirely before or after the article.
  if (range.compareBoundaryPoints(Range.END_TO_START, whole) >= 0) return null;
  if (range.compareBoundaryPoints(Range.START_TO_END, whole) <= 0) return null;

  const length = whole.toString().length;
  const offsetOf = (node: Node, offset: number) => {
    const prefix = document.createRange();
    prefix.setStart(container, 0);
    prefix.setEnd(node, offset);
    return prefix.toString().length;
  };
  const start = range.compareBoundaryPoints(Range.START_TO_START, whole) <= 0 ? 0 : offsetOf(range.startContainer, range.startOffset);
  const end = range.compareBoundaryPoints(Range.END_TO_END, whole) >= 0 ? length : offsetOf(range.endContainer, range.endOffset);
  return end > start ? { start, end } : null;
}

/** Narrows [start, end) past leading and trailing whitespace; null when nothing is left. */
export function trimOffsets(text: string, start: number, end: number): TextSelection | null {
  while (start < end && /\s/.test(text[start]!)) start++;
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  return end > start ? { start, end } : null;
}

/** A DOM Range over [start, end) of the container's text, e.g. to highlight a peer's selection. */
export function rangeAt(container: HTMLElement, start: number, end: number): Range | null {
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let seen = 0;
  let started = false;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const len = (node as Text).length;
    if (!started && start <= seen + len) {
      range.setStart(node, start - seen);
      started = true;
    }
    if (started && end <= seen + len) {
      range.setEnd(node, end - seen);
      return range;
    }
    seen += len;
  }
  return null;
}

/** True when a key press belongs to a form field rather than to the page's shortcuts. */
export function isTypingTarget(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || typeof el.closest !== 'function') return false;
  return !!el.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]');
}
