/**
 * The nested render tree of a layer's spans, cut into paragraphs, memoized, with structural
 * sharing: a paragraph or a subtree whose shape did not change keeps its object identity, so
 * `<For>` keeps their DOM and an edit re-renders only what it touched, however long the
 * document (and the browser lays out only that paragraph again: with the whole text in one
 * block, every edit laid all of it out, some 190 ms at 200,000 characters).
 */
import { createMemo, type Accessor } from 'solid-js';
import { nestBlocks, nestSpans, type Block, type NestInput, type NestNode } from '@spanwise/shared/nesting';

/** Whether two nodes have the same shape, all the way down. */
function same(a: NestNode, b: NestNode): boolean {
  if (a.kind !== b.kind || a.start !== b.start || a.end !== b.end) return false;
  if (a.kind === 'text' || b.kind === 'text') return true;
  return a.id === b.id && a.part === b.part && a.parts === b.parts && a.depth === b.depth && sameList(a.children, b.children);
}

function sameList(a: readonly NestNode[], b: readonly NestNode[]): boolean {
  return a.length === b.length && a.every((node, i) => same(node, b[i]!));
}

/** `nodes`, each replaced by the node of `before` at its place when it has the same shape (and so on down). */
function shareList(nodes: NestNode[], before: readonly NestNode[]): NestNode[] {
  const at = new Map(before.map((node) => [node.start, node]));
  return nodes.map((node) => {
    const old = at.get(node.start);
    if (!old) return node;
    if (same(old, node)) return old;
    return node.kind === 'span' && old.kind === 'span' ? { ...node, children: shareList(node.children, old.children) } : node;
  });
}

export function createSpanTree(spans: Accessor<readonly NestInput[]>, text: Accessor<string>): Accessor<Block[]> {
  let before: Block[] = [];
  return createMemo(() => {
    const blocks = nestBlocks(nestSpans(spans(), text().length), text());
    const at = new Map(before.map((block) => [block.start, block]));
    // Top-level nodes by where they start, for a paragraph that changed (or moved its edges).
    const nodes = before.flatMap((block) => block.nodes);
    before = blocks.map((block) => {
      const old = at.get(block.start);
      if (old && old.end === block.end && sameList(old.nodes, block.nodes)) return old;
      return { ...block, nodes: shareList(block.nodes, nodes) };
    });
    return before;
  });
}
