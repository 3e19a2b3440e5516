/**
 * The nested render tree of a layer's spans, cut into paragraphs, memoized, with structural
 * sharing: a paragraph or a node (at any depth) whose shape did not change keeps its object
 * identity, so `<For>` keeps their DOM and an edit re-renders only what it touched, however
 * long the document (and the browser lays out only that paragraph again: with the whole text in
 * one block, every edit laid all of it out, some 190 ms at 200,000 characters).
 */
import { createMemo, type Accessor } from 'solid-js';
import { nestParagraphs, type Block, type NestInput, type NestNode } from '@spanwise/shared/nesting';

/** Whether two nodes have the same shape, all the way down. */
function same(a: NestNode, b: NestNode): boolean {
  if (a.kind !== b.kind || a.start !== b.start || a.end !== b.end) return false;
  if (a.kind === 'text' || b.kind === 'text') return true;
  return a.id === b.id && a.part === b.part && a.parts === b.parts && a.depth === b.depth && sameList(a.children, b.children);
}

function sameList(a: readonly NestNode[], b: readonly NestNode[]): boolean {
  return a.length === b.length && a.every((node, i) => same(node, b[i]!));
}

/** `nodes`, each replaced by the node of `before` (by where it starts) when it has the same shape, and so on down. */
function shareList(nodes: NestNode[], before: ReadonlyMap<number, NestNode>): NestNode[] {
  return nodes.map((node) => {
    const old = before.get(node.start);
    if (!old) return node;
    if (same(old, node)) return old;
    if (node.kind !== 'span' || old.kind !== 'span') return node;
    return { ...node, children: shareList(node.children, new Map(old.children.map((child) => [child.start, child]))) };
  });
}

export function createSpanTree(spans: Accessor<readonly NestInput[]>, text: Accessor<string>): Accessor<Block[]> {
  let before: Block[] = [];
  return createMemo(() => {
    const blocks = nestParagraphs(spans(), text());
    const at = new Map(before.map((block) => [block.start, block]));
    // Top-level nodes by where they start, for a paragraph that changed (or moved its edges).
    let nodes: Map<number, NestNode> | undefined;
    before = blocks.map((block) => {
      const old = at.get(block.start);
      if (old && old.end === block.end && sameList(old.nodes, block.nodes)) return old;
      nodes ??= new Map(before.flatMap((b) => b.nodes).map((node) => [node.start, node]));
      return { ...block, nodes: shareList(block.nodes, nodes) };
    });
    return before;
  });
}
