/**
 * Download a project's dataset (GET /api/projects/:id/export): a format, a layer, the span
 * labels (all of them, or some: the entities alone, without the claims around them), a link.
 * Offered only where the server would allow it: annotators of a blind project read neither the
 * gold layer nor each other's, so they get nothing to download.
 *
 * @example
 * <ExportPanel projectId={1} role="owner" mode="blind" labels={['PERSON', 'CLAIM']} />
 */
import { createSignal, For, Show } from 'solid-js';
import { EXPORT_FORMATS, exportChoices, type ExportFormat, type ExportLayerChoice, type ProjectMode, type Role } from '@spanwise/shared';

const FORMAT_TEXT: Record<ExportFormat, string> = {
  jsonl: 'JSON lines',
  conll: 'CoNLL (BIO tags)',
  brat: 'brat standoff (zip)',
  w3c: 'W3C Web Annotation (JSON-LD)',
};

export function ExportPanel(props: { projectId: number; role: Role; mode: ProjectMode; labels: readonly string[] }) {
  // The server's own rule (shared/src/access.ts), so nothing is offered that it would refuse.
  const may = () => exportChoices(props.role, props.mode);
  const readsEveryLayer = () => may().everyLayer;
  const [format, setFormat] = createSignal<ExportFormat>('jsonl');
  const [layer, setLayer] = createSignal<ExportLayerChoice>('gold');
  /** The schema's labels left out (none: every label, those no longer in the schema too). */
  const [leftOut, setLeftOut] = createSignal<ReadonlySet<string>>(new Set());
  const chosen = () => props.labels.filter((l) => !leftOut().has(l));
  const toggle = (label: string, on: boolean) => {
    const next = new Set(leftOut());
    if (on) next.delete(label);
    else next.add(label);
    setLeftOut(next);
  };
  const href = () => {
    const some = chosen().length < props.labels.length ? `&labels=${chosen().join(',')}` : '';
    return `/api/projects/${props.projectId}/export?format=${format()}&layer=${readsEveryLayer() ? layer() : 'gold'}${some}`;
  };

  return (
    <Show when={may().gold}>
      <section class="export card" aria-labelledby="export-heading">
        <h2 id="export-heading">Export dataset</h2>
        <label for="export-format">Format</label>
        <select id="export-format" value={format()} onChange={(e) => setFormat(e.currentTarget.value as ExportFormat)}>
          <For each={EXPORT_FORMATS}>{(f) => <option value={f}>{FORMAT_TEXT[f]}</option>}</For>
        </select>
        <Show when={readsEveryLayer()}>
          <label for="export-layer">Layers</label>
          <select id="export-layer" value={layer()} onChange={(e) => setLayer(e.currentTarget.value as ExportLayerChoice)}>
            <option value="gold">Gold layer</option>
            <option value="all">Gold and every annotator’s layer</option>
          </select>
        </Show>
        <fieldset class="export-labels">
          <legend>Span labels</legend>
          <For each={props.labels}>
            {(label) => (
              <label>
                <input type="checkbox" checked={!leftOut().has(label)} onChange={(e) => toggle(label, e.currentTarget.checked)} /> {label}
              </label>
            )}
          </For>
        </fieldset>
        <Show when={format() === 'conll'}>
          <p class="export-note" role="note">
            CoNLL gives each word one tag: where spans nest or overlap, the longest is kept and the
            others are left out of the file (JSON lines, brat and W3C keep them all). To keep the
            entities inside claims, leave the claim labels out here.
          </p>
        </Show>
        <Show when={chosen().length > 0} fallback={<p class="muted">Choose at least one label to download.</p>}>
          <a class="button" href={href()} download="">
            Download
          </a>
        </Show>
        <p class="muted">Offsets count Unicode code points, as Python, spaCy and brat do.</p>
      </section>
    </Show>
  );
}
