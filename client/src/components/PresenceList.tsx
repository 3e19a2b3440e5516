import { For, Show } from 'solid-js';
import type { Peer } from '../sync/presence.ts';
import { shorten } from '../lib/labels.ts';

export function PresenceList(props: { peers: Peer[]; text: string }) {
  return (
    <section class="panel" aria-labelledby="presence-heading">
      <h2 id="presence-heading">Here now</h2>
      <Show when={props.peers.length > 0} fallback={<p class="muted">Only you.</p>}>
        <ul class="presence" aria-labelledby="presence-heading">
          <For each={props.peers}>
            {(peer) => (
              <li style={{ '--c': peer.user.color }}>
                <span class="dot" aria-hidden="true" />
                <span class="peer-name">{peer.user.name}</span>
                <Show when={peer.selection}>
                  {(sel) => (
                    <span class="muted peer-selection">
                      {' '}
                      selecting “{shorten(props.text.slice(sel().start, sel().end), 40)}”
                    </span>
                  )}
                </Show>
              </li>
            )}
          </For>
        </ul>
      </Show>
    </section>
  );
}
