/**
 * The article with its spans. The container holds nothing but the document's text nodes,
 * wrapped in one element per span (part), so DOM Ranges measure UTF-16 offsets directly.
 * Labels are attributes (`data-label`, `title`) and colours CSS variables, never text.
 */
import { createMemo, For } from 'solid-js';
import type { NestNode, SpanNode } from '@spanwise/shared/nesting';
import { tokenize } from '@spanwise/shared/tokenize';
import { rangeAt, selectionOffsets } from '../lib/text-selection.ts';

export interface ArticleView {
  text: string;
  labelOf(id: string): string;
  colorOf(label: string): string;
  isFocused(id: string): boolean;
}

export function ArticleText(props: {
  tree: NestNode[];
  view: ArticleView;
  ref: (el: HTMLDivElement) => void;
  /** The ids of the spans under a click, outermost first, and where it happened. */
  onSpanClick: (ids: string[], x: number, y: number) => void;
}) {
  let container!: HTMLDivElement;

  // From the keyboard (the article takes the focus: Tab): → and ← select the next or the
  // previous word, Shift+→ and Shift+← move the selection's end a word on or back, and Enter
  // opens what is annotated where the selection starts. A label's key then labels the selection,
  // as after a drag.
  const words = createMemo(() => tokenize(props.view.text).filter((t) => /[\p{L}\p{N}]/u.test(t.text)));
  const select = (start: number, end: number) => {
    const range = rangeAt(container, start, end);
    if (!range) return;
    window.getSelection()?.setBaseAndExtent(range.startContainer, range.startOffset, range.endContainer, range.endOffset);
    (range.startContainer.parentElement ?? container).scrollIntoView({ block: 'nearest' });
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const list = words();
    if (list.length === 0) return;
    const at = selectionOffsets(container);
    /** The first word that ends after `offset`, or the last. */
    const wordAfter = (offset: number) => list.find((w) => w.end > offset) ?? list[list.length - 1]!;
    /** The last word that starts before `offset`, or the first. */
    const wordBefore = (offset: number) => [...list].reverse().find((w) => w.start < offset) ?? list[0]!;
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      const forward = e.key === 'ArrowRight';
      if (e.shiftKey && at) {
        const end = forward ? wordAfter(at.end).end : wordBefore(at.end).end;
        select(at.start, Math.max(end, wordAfter(at.start).end));
      } else {
        const word = !at ? list[0]! : forward ? wordAfter(at.end) : wordBefore(at.start);
        select(word.start, word.end);
      }
    } else if (e.key === 'Enter' && at) {
      const range = rangeAt(container, at.start, at.start + 1);
      const element = range?.startContainer.parentElement?.closest('[data-annotation-id]');
      if (!range || !element || !container.contains(element)) return;
      e.preventDefault();
      const ids: string[] = [];
      for (let el: Element | null = element; el && container.contains(el); el = el.parentElement?.closest('[data-annotation-id]') ?? null) {
        const id = el.getAttribute('data-annotation-id');
        if (id && !ids.includes(id)) ids.unshift(id);
      }
      const box = range.getBoundingClientRect();
      props.onSpanClick(ids, box.left + window.scrollX, box.bottom + window.scrollY);
    }
  };

  const onClick = (e: MouseEvent) => {
    const selection = window.getSelection();
    if (selection && !selection.isCollapsed) return; // finishing a selection, not picking a span
    const ids: string[] = [];
    let el = (e.target as Element).closest('[data-annotation-id]');
    while (el && container.contains(el)) {
      const id = el.getAttribute('data-annotation-id');
      if (id && !ids.includes(id)) ids.unshift(id);
      el = el.parentElement?.closest('[data-annotation-id]') ?? null;
    }
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
      <Nodes nodes={props.tree} view={props.view} />
    </div>
  );
}

function Nodes(props: { nodes: NestNode[]; view: ArticleView }) {
  return (
    <For each={props.nodes}>
      {(node) =>
        node.kind === 'text' ? (
          document.createTextNode(props.view.text.slice(node.start, node.end))
        ) : (
          <Mark node={node} view={props.view} />
        )
      }
    </For>
  );
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
