import { createMemo, For, type Accessor, type JSX } from 'solid-js';

/**
 * A `<For>` keyed by `by` rather than by object: an item that comes as a new object under the same
 * key keeps its elements, and `children` reads it through its accessor (kept as it was while the
 * list drops its key).
 */
export function Keyed<T>(props: { each: readonly T[]; by: (item: T) => string | number; children: (item: Accessor<T>) => JSX.Element }) {
  const byKey = createMemo(() => new Map(props.each.map((item) => [props.by(item), item])));
  return (
    <For each={props.each.map(props.by)}>
      {(key) => {
        const item = createMemo((was: T) => byKey().get(key) ?? was, byKey().get(key)!);
        return props.children(item);
      }}
    </For>
  );
}
