/**
 * What a y-websocket message is, read from its first two numbers without decoding the rest: for
 * counting messages by kind, and for what a frame holds against the backlog. Read as the
 * decoder reads them (a number may take more bytes than it needs), so a frame cannot pass for
 * another kind than the one it is handled as.
 *
 * @example
 *   messageLabel(Uint8Array.of(0, 2, 1, 0)) // 'update'
 */
import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import { MessageKind } from '@spanwise/shared';
import type { MessageLabel } from './types.ts';

export function messageLabel(data: Uint8Array): MessageLabel {
  try {
    return labelOf(decoding.createDecoder(data));
  } catch {
    return 'unknown'; // (too short to say)
  }
}

function labelOf(decoder: decoding.Decoder): MessageLabel {
  switch (decoding.readVarUint(decoder)) {
    case MessageKind.sync:
      switch (decoding.readVarUint(decoder)) {
        case syncProtocol.messageYjsSyncStep1:
          return 'sync_step1';
        case syncProtocol.messageYjsSyncStep2:
          return 'sync_step2';
        case syncProtocol.messageYjsUpdate:
          return 'update';
        default:
          return 'unknown';
      }
    case MessageKind.awareness:
      return 'awareness';
    case MessageKind.queryAwareness:
      return 'query_awareness';
    case MessageKind.auth:
      return 'auth';
    case MessageKind.stored:
      return 'stored';
    default:
      return 'unknown';
  }
}
