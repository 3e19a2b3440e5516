/**
 * The layer's spans in text order. Button names carry the quote, not the label, so the label
 * palette's buttons stay the only ones named after a label. A row is kept by its span's id: a
 * change to the span (a peer relabelling it) makes a new span object, and a row made anew would
 * take the focus from its button.
 */
import { Show } from 'solid-js';
import { Keyed } from './Keyed.tsx';
import type { SpanAnnotation } from '@spanwise/shared/layer';
import { shorten } from '../lib/labels.ts';

export function AnnotationList(props: {
  spans: SpanAnnotation[];
  colorOf: (label: string) => string;
  onShow: (id: string) => void;
  /** A text offset as shown (and as the exports count: in code points). */
  offsetOf: (utf16: number) => number;
  /** Absent on a layer this user may not change: no Delete buttons then. */
  onDelete?: (id: string) => void;
}) {
  return (
    <section class="panel" aria-labelledby="annotations-heading">
      <h2 id="annotations-heading">
        Annotations <span class="count">{props.spans.length}</span>
      </h2>
      <Show when={props.spans.length > 0} fallback={<p class="muted">None yet.</p>}>
        <ol class="annotation-list">
          <Keyed each={props.spans} by={(span) => span.id}>
            {(span) => (
              <li>
                <button
                  type="button"
                  class="annotation"
                  aria-label={`Show “${shorten(span().quote, 40)}”, ${props.offsetOf(span().start)} to ${props.offsetOf(span().end)}`}
                  onClick={() => props.onShow(span().id)}
                >
                  <span class="chip" style={{ '--c': props.colorOf(span().label) }}>
                    {span().label}
                  </span>
                  <span class="quote">{shorten(span().quote, 80)}</span>
                  <Show when={span().attributes.stance}>
                    <span class="attr">{span().attributes.stance}</span>
                  </Show>
                  <span class="offsets">
                    {props.offsetOf(span().start)}–{props.offsetOf(span().end)}
                  </span>
                </button>
                <Show when={props.onDelete}>
                  {(onDelete) => (
                    <button
                      type="button"
                      class="icon-button"
                      aria-label={`Delete “${shorten(span().quote, 40)}”`}
                      title="Delete"
                      onClick={() => onDelete()(span().id)}
                    >
                      ×
                    </button>
                  )}
                </Show>
              </li>
            )}
          </Keyed>
        </ol>
      </Show>
    </section>
  );
}
