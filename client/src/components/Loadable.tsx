/** Shows a resource's loading and error states, and its content once it has a value. */
import { Match, Switch, type JSX, type Resource } from 'solid-js';
import { errorMessage } from '../api/client.ts';

export function Loadable<T>(props: { resource: Resource<T>; children: (value: T) => JSX.Element }) {
  return (
    <Switch>
      <Match when={props.resource.error}>
        <p role="alert" class="error">{errorMessage(props.resource.error)}</p>
      </Match>
      <Match when={props.resource.loading && props.resource.latest === undefined}>
        <p class="muted">Loading…</p>
      </Match>
      <Match when={props.resource.latest !== undefined}>{props.children(props.resource.latest as T)}</Match>
    </Switch>
  );
}
