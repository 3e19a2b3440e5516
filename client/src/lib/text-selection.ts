/**
 * Offsets of the browser selection inside the article, and DOM points and ranges from offsets.
 * The article element holds only the document's text nodes (spans and paragraphs are elements
 * around them, labels live in attributes), so a point's offset is its text node's place in the text
 * (`textStarts`) plus its offset in the node: the text of a DOM Range from the container's
 * start to it, which is what is measured for a node not rendered by ArticleText.
 */
import type { TextSelection } from '../sync/presence.ts';

/**
 * Where each text node of the article starts in the document's text, set as it is rendered
 * (ArticleText): a point's offset is then that plus its offset in the node, found in constant
 * time. Measured as the text of a Range up to the point instead, each offset copied the article
 * up to there (a selection of a long article cost some 100 ms, and a label key several of them).
 */
export const textStarts = new WeakMap<Node, number>();

/** The first text node at or after `node` in document order inside `container`, or null. */
function textFrom(container: HTMLElement, node: Node): Node | null {
  if (node.nodeType === Node.TEXT_NODE) return node;
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  walker.currentNode = node;
  // (From an element: its first text descendant, else the next text after it.)
  return walker.nextNode();
}

/**
 * The selection's [start, end) in the container's text; null when empty, outside it, or running
 * on over other text of the page (Select All, a drag that overshoots into the sidebar: clipped,
 * it would reach the article's very start or end). An end past it over no text (a triple-click's
 * end at the next block) is clipped.
 */
export function selectionOffsets(container: HTMLElement): TextSelection | null {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  const whole = document.createRange();
  whole.selectNodeContents(container);
  // Entirely before or after the article.
  if (range.compareBoundaryPoints(Range.END_TO_START, whole) >= 0) return null;
  if (range.compareBoundaryPoints(Range.START_TO_END, whole) <= 0) return null;
  const textBetween = (fromNode: Node, fromOffset: number, toNode: Node, toOffset: number) => {
    const part = document.createRange();
    part.setStart(fromNode, fromOffset);
    part.setEnd(toNode, toOffset);
    return part.toString().trim() !== '';
  };
  if (range.compareBoundaryPoints(Range.START_TO_START, whole) < 0 && textBetween(range.startContainer, range.startOffset, container, 0)) return null;
  if (range.compareBoundaryPoints(Range.END_TO_END, whole) > 0 && textBetween(container, container.childNodes.length, range.endContainer, range.endOffset)) return null;

  const start = range.compareBoundaryPoints(Range.START_TO_START, whole) <= 0 ? 0 : caretOffset(container, range.startContainer, range.startOffset);
  const end = range.compareBoundaryPoints(Range.END_TO_END, whole) >= 0 ? textLength(container) : caretOffset(container, range.endContainer, range.endOffset);
  return end > start ? { start, end } : null;
}

/** The length of the container's text. */
function textLength(container: HTMLElement): number {
  const last = container.lastChild && lastText(container.lastChild);
  const start = last ? textStarts.get(last) : undefined;
  if (last && start !== undefined) return start + (last as Text).length;
  return container.textContent?.length ?? 0;
}

/** The last text node in `node` (itself, if it is one), or null. */
function lastText(node: Node): Node | null {
  if (node.nodeType === Node.TEXT_NODE) return node;
  for (let child = node.lastChild; child; child = child.previousSibling) {
    const found = lastText(child);
    if (found) return found;
  }
  return null;
}

/** Narrows [start, end) past leading and trailing whitespace; null when nothing is left. */
export function trimOffsets(text: string, start: number, end: number): TextSelection | null {
  while (start < end && /\s/.test(text[start]!)) start++;
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  return end > start ? { start, end } : null;
}

/** The offset in the container's text of a DOM point inside it (a caret, say). */
export function caretOffset(container: HTMLElement, node: Node, offset: number): number {
  // A point in a text node, or before a child of an element (at its end: after the last text in it).
  const text = node.nodeType === Node.TEXT_NODE ? node : offset < node.childNodes.length ? textFrom(container, node.childNodes[offset]!) : null;
  const start = text ? textStarts.get(text) : undefined;
  if (text && start !== undefined && container.contains(text)) return start + (text === node ? offset : 0);
  if (node.nodeType !== Node.TEXT_NODE && offset >= node.childNodes.length) {
    const last = lastText(node);
    const lastStart = last ? textStarts.get(last) : undefined;
    if (last && lastStart !== undefined) return lastStart + (last as Text).length;
  }
  // Text this module did not see rendered: measured.
  const prefix = document.createRange();
  prefix.setStart(container, 0);
  prefix.setEnd(node, offset);
  return prefix.toString().length;
}

/**
 * The DOM point at an offset of the container's text, in the text node holding it: at the
 * boundary of two nodes the one before, or with `after` the one after (the node of the
 * character at `offset`).
 */
export function pointAt(container: HTMLElement, offset: number, after = false): { node: Node; offset: number } | null {
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  // From the paragraph that holds the offset, when the article is in paragraphs (a peer's
  // selection is found at each of their moves: walking a long article from its start took ms).
  const from = paragraphAt(container, offset, after);
  let seen = from?.start ?? 0;
  if (from) walker.currentNode = from.text;
  for (let node = from ? from.text : walker.nextNode(); node; node = walker.nextNode()) {
    const len = (node as Text).length;
    if (after ? offset < seen + len : offset <= seen + len) return { node, offset: offset - seen };
    seen += len;
  }
  return null;
}

/**
 * The first text node of the container's child (a paragraph) where a walk to `offset` begins,
 * and where that node starts in the text: of the last child starting before it (at it, with
 * `after`), found by halves. Null unless every child is an element whose text ArticleText
 * rendered.
 */
function paragraphAt(container: HTMLElement, offset: number, after: boolean): { text: Text; start: number } | null {
  const children = container.children;
  if (children.length < 2 || children.length !== container.childNodes.length) return null;
  const first = (i: number): { text: Text; start: number } | null => {
    let node = children[i]!.firstChild;
    while (node && node.nodeType !== Node.TEXT_NODE) node = node.firstChild;
    const start = node ? textStarts.get(node) : undefined;
    return node && start !== undefined ? { text: node as Text, start } : null;
  };
  let lo = 0;
  let hi = children.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    const at = first(mid);
    if (!at) return null;
    if (after ? at.start <= offset : at.start < offset) lo = mid;
    else hi = mid - 1;
  }
  return first(lo);
}

/**
 * Runs `rerender`, which may replace text nodes of the container (a peer's span splits the
 * stretch of text a selection is in, or re-creates the span around it), and puts back a
 * selection of its text as it was, by offsets, direction and all: the browser would otherwise
 * move each end in a replaced node to where that node was, collapsing or shifting it.
 */
export function keepingSelection(container: HTMLElement | undefined, rerender: () => void): void {
  const selection = window.getSelection();
  const kept =
    container && selection && selection.rangeCount > 0 && !selection.isCollapsed && container.contains(selection.anchorNode) && container.contains(selection.focusNode)
      ? { anchor: caretOffset(container, selection.anchorNode!, selection.anchorOffset), focus: caretOffset(container, selection.focusNode!, selection.focusOffset), nodes: [selection.anchorNode!, selection.focusNode!] }
      : null;
  rerender();
  if (!kept || !container || kept.nodes.every((node) => node.isConnected)) return; // (untouched)
  const anchor = pointAt(container, kept.anchor);
  const focus = pointAt(container, kept.focus);
  if (anchor && focus) selection!.setBaseAndExtent(anchor.node, anchor.offset, focus.node, focus.offset);
}

/** The first index of `list` whose item passes `test`, which fails then passes along it (binary search); list.length if none does. */
export function firstIndex<T>(list: readonly T[], test: (item: T) => boolean): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (test(list[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * A DOM Range over [start, end) of the container's text, e.g. to highlight a peer's selection.
 * A range that holds text starts in the node its first character is in: at a paragraph's start,
 * not at the end of the paragraph before (where the browser would draw, and measure, a line
 * break of the other paragraph).
 */
export function rangeAt(container: HTMLElement, start: number, end: number): Range | null {
  const from = (end > start ? pointAt(container, start, true) : null) ?? pointAt(container, start);
  const to = end === start ? from : pointAt(container, end);
  if (!from || !to) return null;
  const range = document.createRange();
  range.setStart(from.node, from.offset);
  range.setEnd(to.node, to.offset);
  return range;
}

/** True when a key press belongs to a form field rather than to the page's shortcuts. */
export function isTypingTarget(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || typeof el.closest !== 'function') return false;
  return !!el.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]');
}
