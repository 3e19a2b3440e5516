/**
 * What a y-websocket message is, read from its first bytes without decoding the rest: for
 * counting messages by kind.
 *
 * @example
 *   messageLabel(Uint8Array.of(0, 2, 1, 0)) // 'update'
 */
import * as syncProtocol from 'y-protocols/sync';
import { MessageKind } from '@spanwise/shared';
import type { MessageLabel } from './types.ts';

export function messageLabel(data: Uint8Array): MessageLabel {
  switch (data[0]) {
    case MessageKind.sync:
      switch (data[1]) {
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
    default:
      return 'unknown';
  }
}
