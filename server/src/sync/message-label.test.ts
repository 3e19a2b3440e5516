import { describe, expect, it } from 'vitest';
import { messageLabel } from './message-label.ts';

describe('messageLabel', () => {
  it('names each kind of message', () => {
    expect(messageLabel(Uint8Array.of(0, 0, 0))).toBe('sync_step1');
    expect(messageLabel(Uint8Array.of(0, 1, 2, 0, 0))).toBe('sync_step2');
    expect(messageLabel(Uint8Array.of(0, 2, 2, 0, 0))).toBe('update');
    expect(messageLabel(Uint8Array.of(1, 1, 0))).toBe('awareness');
    expect(messageLabel(Uint8Array.of(3))).toBe('query_awareness');
    expect(messageLabel(Uint8Array.of(2, 0, 0))).toBe('auth');
  });

  it('reads the numbers as the decoder does, however many bytes they take', () => {
    // 0 written in two bytes, then 2: the decoder handles this as an update.
    expect(messageLabel(Uint8Array.of(0x80, 0x00, 0x82, 0x00, 2, 0, 0))).toBe('update');
  });

  it('calls what it cannot read unknown', () => {
    expect(messageLabel(new Uint8Array(0))).toBe('unknown');
    expect(messageLabel(Uint8Array.of(0))).toBe('unknown');
    expect(messageLabel(Uint8Array.of(0, 9))).toBe('unknown');
    expect(messageLabel(Uint8Array.of(0x80))).toBe('unknown');
    expect(messageLabel(Uint8Array.of(7))).toBe('unknown');
  });
});
