import { closedStatus } from '../sync/closed-text.ts';
import type { Connection } from '../sync/open-layer.ts';

export function ConnectionStatus(props: {
  connection: Connection;
  closedCode: number | null;
  savingDelayed?: boolean;
  readOnly?: boolean;
  /** The server said it drops this user's edits. */
  writesRefused?: boolean;
  /** Edits made here have not reached a server that stores them yet. */
  unsaved?: boolean;
  /** Whether the browser keeps a copy of the layer (false: its storage did not open). */
  keptLocally?: boolean;
}) {
  /** Where the edits waiting for the server are. */
  const kept = () => (props.keptLocally === false ? 'edits kept only while this page is open' : 'edits kept in this browser');
  const text = () => {
    switch (props.connection) {
      case 'connected':
        if (props.readOnly) return 'connected · read-only';
        if (props.writesRefused) return 'connected · read-only — your changes are not saved';
        if (props.savingDelayed) return 'saving delayed — the server holds your edits and will store them';
        return 'connected';
      case 'connecting':
        return 'connecting';
      case 'offline':
        return props.unsaved ? `offline — unsaved ${kept()}` : `offline — ${kept()}`;
      case 'busy':
        return `server busy — ${kept()}; trying again shortly`;
      case 'closed':
        return closedStatus(props.closedCode);
    }
  };
  return (
    <span class={`connection connection-${props.connection}`} role="status" aria-label="Connection">
      <span class="dot" aria-hidden="true" />
      {text()}
    </span>
  );
}
