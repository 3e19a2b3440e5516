import { CloseCode } from '@spanwise/shared/protocol';
import type { Connection } from '../sync/open-layer.ts';

function closedText(code: number | null): string {
  switch (code) {
    case CloseCode.unauthenticated:
      return 'signed out';
    case CloseCode.forbidden:
      return 'no access to this layer';
    case CloseCode.unknownRoom:
      return 'this layer does not exist';
    case CloseCode.tooBig:
      return 'stopped — changes too large to send';
    case CloseCode.malformed:
      return 'stopped — the server could not read a message';
    default:
      return 'closed';
  }
}

export function ConnectionStatus(props: {
  connection: Connection;
  closedCode: number | null;
  savingDelayed?: boolean;
  readOnly?: boolean;
  /** The server said it drops this user's edits. */
  writesRefused?: boolean;
}) {
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
        return 'offline — edits kept locally';
      case 'busy':
        return 'server busy — edits kept locally; trying again shortly';
      case 'closed':
        return closedText(props.closedCode);
    }
  };
  return (
    <span class={`connection connection-${props.connection}`} role="status" aria-label="Connection">
      <span class="dot" aria-hidden="true" />
      {text()}
    </span>
  );
}
