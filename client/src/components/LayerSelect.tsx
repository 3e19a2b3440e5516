import { For } from 'solid-js';
import type { LayerOption } from '../stores/layer-choice.ts';

export function LayerSelect(props: { options: LayerOption[]; value: string; onChange: (key: string) => void }) {
  return (
    <span class="field-inline">
      <label for="layer-select">Layer</label>
      <select
        id="layer-select"
        onChange={(e) => {
          const select = e.currentTarget;
          props.onChange(select.value);
          // Shows the layer open until the page has moved (it may ask first, and stay).
          select.value = props.value;
        }}
      >
        <For each={props.options}>
          {(o) => (
            <option value={o.key} selected={o.key === props.value}>
              {o.name}
            </option>
          )}
        </For>
      </select>
    </span>
  );
}
