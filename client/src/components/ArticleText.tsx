/**
 * The article with its spans. The container holds nothing but the document's text nodes,
 * wrapped in one element per span (part), so DOM Ranges measure UTF-16 offsets directly.
 * Labels are attributes (`data-label`, `title`) and colours CSS variables, never text.
 */
import { For } from 'solid-js';
import type { NestNode, SpanNode } from '@spanwise/shared/nesting';

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
