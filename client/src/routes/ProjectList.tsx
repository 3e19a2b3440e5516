import { A } from '@solidjs/router';
import { createResource, For, Show } from 'solid-js';
import { api } from '../api/client.ts';
import { Loadable } from '../components/Loadable.tsx';
import { ROLE_TEXT } from '../lib/labels.ts';

export function ProjectList() {
  const [projects] = createResource(api.projects);
  return (
    <section class="page">
      <h1>Projects</h1>
      <Loadable resource={projects}>
        {(list) => (
          <Show when={list.length > 0} fallback={<p class="muted">You are not a member of any project yet.</p>}>
            <ul class="rows">
              <For each={list}>
                {(p) => (
                  <li>
                    <A href={`/projects/${p.id}`} class="row-link">
                      <span class="row-title">{p.name}</span>
                      <span class="row-meta">
                        {ROLE_TEXT[p.role]} · {p.mode === 'blind' ? 'blind review' : 'open layer'}
                      </span>
                    </A>
                  </li>
                )}
              </For>
            </ul>
          </Show>
        )}
      </Loadable>
    </section>
  );
}
