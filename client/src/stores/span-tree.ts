/**
 * The nested render tree of a layer's spans, memoized, with structural sharing: a subtree
 * whose shape did not change keeps its object identity, so `<For>` keeps its DOM and an edit
 * re-renders only the spans it touched, however long the document.
 */
import { createMemo, type Accessor } from 'solid-js';
import { nestSpans, type NestInput, type NestNode } from '@spanwise/shared/nesting';

function keyOf(node: NestNode, childKeys: string): string {
  return node.kind === 'text'
    ? `${node.start}-${node.end}`
    : `${node.id}@${node.start}-${node.end}#${node.part}/${node.parts}^${node.depth}(${childKeys})`;
}

export function createSpanTree(spans: Accessor<readonly NestInput[]>, textLength: Accessor<number>): Accessor<NestNode[]> {
  let cache = new Map<string, NestNode>();
  return createMemo(() => {
    const next = new Map<string, NestNode>();
    const share = (nodes: NestNode[]): { nodes: NestNode[]; key: string } => {
      const keys: string[] = [];
      const out = nodes.map((node) => {
        const inner = node.kind === 'span' ? share(node.children) : null;
        const key = keyOf(node, inner?.key ?? '');
        keys.push(key);
        const kept = cache.get(key) ?? (inner && node.kind === 'span' ? { ...node, children: inner.nodes } : node);
        next.set(key, kept);
        return kept;
      });
      return { nodes: out, key: keys.join(',') };
    };
    const tree = share(nestSpans(spans(), textLength())).nodes;
    cache = next;
    return tree;
  });
}
