/**
 * One button per span label. A mousedown on a button must not take the text selection away,
 * so it is prevented; the click then labels the current selection (snapped out to whole words;
 * with Alt, as it is). On a layer this user may
 * not change, the buttons are disabled (the shortcut keys then only bring up the hint).
 */
import { For, Show } from 'solid-js';
import type { SpanLabel } from '@spanwise/shared/schema';

export function LabelPalette(props: { labels: SpanLabel[]; onApply: (label: string, exact: boolean) => void; hint: string | null; disabled?: boolean }) {
  return (
    <div class="palette" role="toolbar" aria-label="Labels">
      <For each={props.labels}>
        {(label) => (
          <button
            type="button"
            class="label-button"
            aria-label={label.name}
            aria-keyshortcuts={label.key}
            title={[label.description, label.key ? `key ${label.key}` : '', 'Alt+click: the exact characters, not whole words'].filter(Boolean).join(' · ')}
            style={{ '--c': label.color }}
            disabled={props.disabled}
            onMouseDown={(e) => e.preventDefault()}
            onClick={(e) => props.onApply(label.name, e.altKey)}
          >
            <span class="swatch" aria-hidden="true" />
            <span aria-hidden="true">{label.name}</span>
            <Show when={label.key}>
              <kbd aria-hidden="true">{label.key}</kbd>
            </Show>
          </button>
        )}
      </For>
      <span class="palette-hint muted" role="status">
        {props.hint ?? 'Select text, then press a label’s key or click it.'}
      </span>
    </div>
  );
}
