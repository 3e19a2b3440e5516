/**
 * What a log line may say of an error thrown while reading what a peer sent, or a stored
 * update: its kind, not its message, which may quote the bytes it read (JSON.parse quotes a
 * document's text; Yjs' content readers pass such errors on). Logs never carry contents.
 *
 * @example
 *   errorKind(new SyntaxError('Unexpected token … "the patient" …')) // "SyntaxError (message withheld)"
 */
export function errorKind(err: unknown): string {
  const name = err instanceof Error ? err.name : typeof err;
  return `${name} (message withheld)`;
}

/** The same for an error already turned to text (`String(err)`, from a worker): its kind only. */
export function errorKindOfText(text: string): string {
  return `${/^[A-Za-z]*Error\b/.exec(text)?.[0] ?? 'Error'} (message withheld)`;
}
