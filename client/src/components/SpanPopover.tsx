/**
 * The annotations under a click: relabel, set schema attributes (a CLAIM's stance), delete.
 * A label's key relabels the span whose row has the focus (or the only one: handled by the
 * page). Closes on Escape (handled by the page) and on a click outside it. On a layer this user may
 * not change it only shows them: its controls are disabled and there is no Delete.
 */
import { For, onCleanup, onMount, Show } from 'solid-js';
import { Portal } from 'solid-js/web';
import type { SpanAnnotation } from '@spanwise/shared/layer';
import type { SpanLabel } from '@spanwise/shared/schema';
import { shorten } from '../lib/labels.ts';

export interface PopoverActions {
  relabel(id: string, label: string): void;
  setAttribute(id: string, name: string, value: string | null): void;
  remove(id: string): void;
  close(): void;
}

export function SpanPopover(props: {
  spans: SpanAnnotation[];
  labels: SpanLabel[];
  colorOf: (label: string) => string;
  x: number;
  y: number;
  actions: PopoverActions;
  readOnly?: boolean;
}) {
  let el!: HTMLDivElement;
  const onDown = (e: MouseEvent) => {
    if (!el.contains(e.target as Node)) props.actions.close();
  };
  // Takes the focus, and gives it back when it closes (to the article, opened from the keyboard).
  let before: Element | null = null;
  // What last had the focus inside: when it goes with its row (its span deleted, here or by a
  // peer) while the popover stays, the popover takes the focus rather than leave it nowhere.
  let focused: Element | null = null;
  const onFocusIn = (e: FocusEvent) => (focused = e.target as Element);
  // Tab goes round inside while it is open (it sits at the end of the page: past its last
  // control the focus would leave for nowhere, the popover still open); Esc closes it.
  const onTab = (e: KeyboardEvent) => {
    if (e.key !== 'Tab') return;
    const controls = [...el.querySelectorAll<HTMLElement>('select, button, input, [href]')].filter((c) => !c.hasAttribute('disabled'));
    if (controls.length === 0) return;
    const first = controls[0]!;
    const last = controls[controls.length - 1]!;
    const at = document.activeElement;
    if (e.shiftKey && (at === first || at === el)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && at === last) {
      e.preventDefault();
      first.focus();
    }
  };
  const rowsGone = new MutationObserver(() => {
    const now = document.activeElement;
    if (focused && !focused.isConnected && (!now || now === document.body)) {
      focused = el;
      el.focus();
    }
  });
  onMount(() => {
    document.addEventListener('mousedown', onDown);
    before = document.activeElement;
    el.addEventListener('focusin', onFocusIn);
    el.addEventListener('keydown', onTab);
    rowsGone.observe(el, { childList: true, subtree: true });
    el.focus();
  });
  onCleanup(() => {
    rowsGone.disconnect();
    document.removeEventListener('mousedown', onDown);
    const now = document.activeElement;
    if (before instanceof HTMLElement && before.isConnected && (!now || now === document.body || el.contains(now))) before.focus();
  });

  const left = () => Math.max(8, Math.min(props.x - 24, window.scrollX + document.documentElement.clientWidth - 340));

  return (
    <Portal>
      <div
        ref={el}
        class="popover card"
        role="dialog"
        aria-label="Annotations here"
        tabindex="-1"
        style={{ left: `${left()}px`, top: `${props.y + 14}px` }}
      >
        {/* A row per span id, kept while its span changes: a relabel makes a new span object,
            and a row made anew would take the focus from the select just used. */}
        <For each={props.spans.map((s) => s.id)}>
          {(id) => {
            let last!: SpanAnnotation;
            const span = () => (last = props.spans.find((s) => s.id === id) ?? last);
            const schema = () => props.labels.find((l) => l.name === span().label);
            return (
              <div class="popover-row" data-span-id={id}>
                <div class="popover-head">
                  <span class="chip" style={{ '--c': props.colorOf(span().label) }}>{span().label}</span>
                  <q class="quote">{shorten(span().quote, 60)}</q>
                </div>
                <div class="popover-controls">
                  <select
                    aria-label={`Label of “${shorten(span().quote, 30)}”`}
                    disabled={props.readOnly}
                    onChange={(e) => props.actions.relabel(span().id, e.currentTarget.value)}
                  >
                    <Show when={!schema()}>
                      <option value={span().label}>{span().label}</option>
                    </Show>
                    <For each={props.labels}>
                      {(l) => (
                        <option value={l.name} selected={l.name === span().label}>
                          {l.name}
                        </option>
                      )}
                    </For>
                  </select>
                  <For each={schema()?.attributes ?? []}>
                    {(attr) => (
                      <select
                        aria-label={attr.name}
                        disabled={props.readOnly}
                        onChange={(e) => props.actions.setAttribute(span().id, attr.name, e.currentTarget.value || null)}
                      >
                        <option value="">{attr.name}: —</option>
                        <For each={attr.values}>
                          {(v) => (
                            <option value={v} selected={span().attributes[attr.name] === v}>
                              {`${attr.name}: ${v}`}
                            </option>
                          )}
                        </For>
                      </select>
                    )}
                  </For>
                  <Show when={!props.readOnly}>
                    <button
                      type="button"
                      class="danger"
                      aria-label={`Delete “${shorten(span().quote, 30)}”`}
                      onClick={() => props.actions.remove(span().id)}
                    >
                      Delete
                    </button>
                  </Show>
                </div>
              </div>
            );
          }}
        </For>
      </div>
    </Portal>
  );
}
