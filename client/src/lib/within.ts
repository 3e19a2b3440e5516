/**
 * `work`'s outcome, or, once `ms` have passed without one, what `late` returns (or throws):
 * for a step that must not wait for ever on something that may never answer.
 *
 * @example
 *   const body = await within(res.json(), 2_000, () => null);
 */
export function within<T, L>(work: Promise<T>, ms: number, late: () => L): Promise<T | L> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<L>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
