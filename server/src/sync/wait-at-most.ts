/**
 * Resolves once `work` settles, whatever its outcome, or once `ms` have passed, whichever comes
 * first: for shutdown steps that must not wait for ever on something that may never answer.
 */
export function waitAtMost(work: Promise<unknown> | null, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([work?.then(() => {}, () => {}) ?? Promise.resolve(), late]).finally(() => clearTimeout(timer));
}
