/**
 * The article with its spans. The container holds nothing but the document's text nodes,
 * wrapped in one element per span (part) and one per paragraph (a block of its own, so that a
 * change lays out that paragraph again, not the whole text), so DOM Ranges measure UTF-16
 * offsets directly.
 * Labels are attributes (`data-label`, `title`) and colours CSS variables, never text.
 */
import { createMemo } from 'solid-js';
import { Keyed } from './Keyed.tsx';
import type { Block, NestNode, SpanNode } from '@spanwise/shared/nesting';
import { tokenize } from '@spanwise/shared/tokenize';
import { caretOffset, firstIndex, pointAt, rangeAt, selectionOffsets, textStarts } from '../lib/text-selection.ts';

export interface ArticleView {
  text: string;
  labelOf(id: string): string;
  colorOf(label: string): string;
  isFocused(id: string): boolean;
}

export function ArticleText(props: {
  /** The paragraphs, each with its spans. */
  blocks: Block[];
  view: ArticleView;
  ref: (el: HTMLDivElement) => void;
  /** The ids of the spans under a click, outermost first, and where it happened. */
  onSpanClick: (ids: string[], x: number, y: number) => void;
  /**
   * Given once a way to say where the keyboard goes on from: a span just labelled (the label
   * clears the selection) or shown, however the selection was made.
   */
  keyboardFrom?: (place: (at: { start: number; end: number }) => void) => void;
  /** How much of the window's top something stays over (a sticky bar): a selection there is out of view. */
  topInset?: () => number;
}) {
  let container!: HTMLDivElement;

  // From the keyboard (the article takes the focus: Tab): → and ← select the next or the
  // previous word, Shift+→ and Shift+← move the selection's end a word on or back, and Enter
  // opens what is annotated where the selection starts. A label's key then labels the selection,
  // as after a drag; the next arrow goes on from where it was (a label clears the selection).
  const words = createMemo(() => tokenize(props.view.text).filter((t) => /[\p{L}\p{N}]/u.test(t.text)));
  /** Where the keyboard last put the selection, or a label or the list did since. */
  let lastAt: { start: number; end: number } | null = null;
  props.keyboardFrom?.((at) => (lastAt = at));
  /** The selection's offsets; with none, a caret's in the article, or where the keyboard left it. */
  const current = () => {
    const at = selectionOffsets(container);
    if (at) return at;
    const selection = window.getSelection();
    if (selection?.anchorNode && container.contains(selection.anchorNode)) {
      const caret = caretOffset(container, selection.anchorNode, selection.anchorOffset);
      return { start: caret, end: caret };
    }
    return lastAt;
  };
  const select = (start: number, end: number) => {
    const range = rangeAt(container, start, end);
    if (!range) return;
    lastAt = { start, end };
    window.getSelection()?.setBaseAndExtent(range.startContainer, range.startOffset, range.endContainer, range.endOffset);
    // (The arrows' own scrolling is taken: keep the selection in view, in the middle of what is seen.)
    const box = range.getBoundingClientRect();
    const top = props.topInset?.() ?? 0;
    if (box.top < top || box.bottom > window.innerHeight) window.scrollBy(0, box.top - (top + window.innerHeight) / 2);
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const at = current();
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const list = words();
      if (list.length === 0) return;
      e.preventDefault();
      /** The first word that ends after `offset` (or the last); the last that starts before it (or the first). */
      const after = (offset: number) => list[Math.min(list.length - 1, firstIndex(list, (w) => w.end > offset))]!;
      const before = (offset: number) => list[Math.max(0, firstIndex(list, (w) => w.start >= offset) - 1)]!;
      if (e.shiftKey && at && at.end > at.start) {
        // The end a word on, or back to the end of the word before the one it is in (never
        // before the end of the first word selected).
        const end = e.key === 'ArrowRight' ? after(at.end).end : (list[firstIndex(list, (w) => w.end >= at.end) - 1]?.end ?? 0);
        select(at.start, Math.max(end, after(at.start).end));
      } else {
        const word = !at ? list[0]! : e.key === 'ArrowRight' ? after(at.end) : before(at.start);
        select(word.start, word.end);
      }
    } else if (e.key === 'Enter' && at) {
      // The character the selection starts with (past leading spaces), and the spans around it.
      let start = at.start;
      while (start < at.end - 1 && /\s/.test(props.view.text[start] ?? '')) start++;
      const ids = idsAround(pointAt(container, start, true)?.node ?? null);
      if (ids.length === 0) return;
      e.preventDefault();
      const range = rangeAt(container, start, Math.min(start + 1, props.view.text.length));
      const box = range?.getBoundingClientRect();
      props.onSpanClick(ids, (box?.left ?? 0) + window.scrollX, (box?.bottom ?? 0) + window.scrollY);
    }
  };
  /** The ids of the spans around a node of the article (an element, or a text node in one), outermost first. */
  const idsAround = (node: Node | null): string[] => {
    const ids: string[] = [];
    let el = (node instanceof Element ? node : node?.parentElement)?.closest('[data-annotation-id]') ?? null;
    while (el && container.contains(el)) {
      const id = el.getAttribute('data-annotation-id');
      if (id && !ids.includes(id)) ids.unshift(id);
      el = el.parentElement?.closest('[data-annotation-id]') ?? null;
    }
    return ids;
  };

  const onClick = (e: MouseEvent) => {
    const selection = window.getSelection();
    if (selection && !selection.isCollapsed) return; // finishing a selection, not picking a span
    const ids = idsAround(e.target as Element);
    if (ids.length > 0) props.onSpanClick(ids, e.pageX, e.pageY);
  };

  return (
    <div
      class="article-text"
      data-article
      ref={(el) => {
        container = el;
        props.ref(el);
      }}
      onClick={onClick}
      onKeyDown={onKeyDown}
      tabindex="0"
      role="document"
      aria-label="Article: → and ← select a word, Shift with them moves the selection's end, a label's key labels it, Enter opens what is annotated there"
    >
      {/* A paragraph's element is kept by where it starts, so a change inside it re-renders
          only the nodes it touched (a span over several paragraphs is a part in each). */}
      <Keyed each={props.blocks} by={(block) => block.start}>
        {(block) => (
          <div class="paragraph" style={{ 'contain-intrinsic-block-size': `auto ${lineGuess(props.view.text, block().start, block().end)}lh` }}>
            <Nodes nodes={block().nodes} view={props.view} />
          </div>
        )}
      </Keyed>
    </div>
  );
}

/**
 * A list of the tree's nodes. A mark is kept by its span's id (see keyOf), not by its node: a span
 * whose children changed (a word labelled inside a claim) comes as a new node, and its element,
 * with everything under it that did not change, stays. A text node is kept by its range (its
 * text never changes).
 */
function Nodes(props: { nodes: NestNode[]; view: ArticleView }) {
  return (
    <Keyed each={props.nodes} by={keyOf}>
      {(node) => {
        const first = node();
        return first.kind === 'text' ? textNode(props.view.text, first.start, first.end) : <Mark node={node() as SpanNode} view={props.view} />;
      }}
    </Keyed>
  );
}

/**
 * What a node's element is kept by: text by its range; a mark by its span's id, and a part after
 * the first by where it starts too, not by its number: a span crossing into one part of a span
 * over several paragraphs splits that part, and numbers every later part anew, which must not
 * lay them (and all inside them) out again.
 */
function keyOf(node: NestNode): string {
  return node.kind === 'text' ? `${node.start}-${node.end}` : node.part === 0 ? `${node.id}#0` : `${node.id}@${node.start}`;
}

/**
 * How many lines [start, end) of the text may take (about 80 characters a line): the height a
 * paragraph out of view is given until it has been drawn once (content-visibility), so that the
 * page's height, and where a scroll to a span far away ends, are about right.
 */
function lineGuess(text: string, start: number, end: number): number {
  let lines = 0;
  for (const line of text.slice(start, end).replace(/\r?\n$/, '').split('\n')) lines += Math.max(1, Math.ceil(line.length / 80));
  return lines;
}

/** A text node of the article, its place in the text noted (see textStarts). */
function textNode(text: string, start: number, end: number): Text {
  const node = document.createTextNode(text.slice(start, end));
  textStarts.set(node, start);
  return node;
}

function Mark(props: { node: SpanNode; view: ArticleView }) {
  const label = () => props.view.labelOf(props.node.id);
  return (
    <mark
      class="span"
      data-annotation-id={props.node.id}
      data-label={label()}
      data-part={props.node.parts > 1 ? String(props.node.part) : undefined}
      title={props.node.parts > 1 ? `${label()} (part ${props.node.part + 1} of ${props.node.parts})` : label()}
      style={{ '--c': props.view.colorOf(label()), '--depth': String(props.node.depth) }}
      classList={{ focused: props.view.isFocused(props.node.id) }}
    >
      <Nodes nodes={props.node.children} view={props.view} />
    </mark>
  );
}
