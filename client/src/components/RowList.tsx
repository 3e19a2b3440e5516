/**
 * A loaded list as rows of links, with a line of its own when the list is empty.
 *
 * @example
 * <RowList resource={projects} empty="No projects yet." href={(p) => `/projects/${p.id}`}>
 *   {(p) => <span class="row-title">{p.name}</span>}
 * </RowList>
 */
import { A } from '@solidjs/router';
import { For, Show, type JSX, type Resource } from 'solid-js';
import { Loadable } from './Loadable.tsx';

export function RowList<T>(props: {
  resource: Resource<T[]>;
  empty: string;
  href: (item: T) => string;
  children: (item: T) => JSX.Element;
}) {
  return (
    <Loadable resource={props.resource}>
      {(list) => (
        <Show when={list.length > 0} fallback={<p class="muted">{props.empty}</p>}>
          <ul class="rows">
            <For each={list}>
              {(item) => (
                <li>
                  <A href={props.href(item)} class="row-link">
                    {props.children(item)}
                  </A>
                </li>
              )}
            </For>
          </ul>
        </Show>
      )}
    </Loadable>
  );
}
