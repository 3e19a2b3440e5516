/**
 * Download a project's dataset (GET /api/projects/:id/export): a format, a layer, a link.
 * Offered only where the server would allow it: annotators of a blind project read neither the
 * gold layer nor each other's, so they get nothing to download.
 *
 * @example
 * <ExportPanel projectId={1} role="owner" mode="blind" />
 */
import { createSignal, For, Show } from 'solid-js';
import { EXPORT_FORMATS, exportChoices, type ExportFormat, type ExportLayerChoice, type ProjectMode, type Role } from '@spanwise/shared';

const FORMAT_TEXT: Record<ExportFormat, string> = {
  jsonl: 'JSON lines',
  conll: 'CoNLL (BIO tags)',
  brat: 'brat standoff (zip)',
  w3c: 'W3C Web Annotation (JSON-LD)',
};

export function ExportPanel(props: { projectId: number; role: Role; mode: ProjectMode }) {
  // The server's own rule (shared/src/access.ts), so nothing is offered that it would refuse.
  const may = () => exportChoices(props.role, props.mode);
  const readsEveryLayer = () => may().everyLayer;
  const [format, setFormat] = createSignal<ExportFormat>('jsonl');
  const [layer, setLayer] = createSignal<ExportLayerChoice>('gold');
  const href = () => `/api/projects/${props.projectId}/export?format=${format()}&layer=${readsEveryLayer() ? layer() : 'gold'}`;

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
        <a class="button" href={href()} download="">
          Download
        </a>
        <p class="muted">Offsets count Unicode code points, as Python, spaCy and brat do.</p>
      </section>
    </Show>
  );
}
