/** Awareness updates, taken apart where the page must (see @spanwise/shared/presence-entries). */
import { readPresenceEntries, writePresenceEntries } from '@spanwise/shared/presence-entries';

/** The update without its removals of the clients `drop` names; null when nothing is left. */
export function withoutRemovals(update: Uint8Array, drop: (client: number) => boolean): Uint8Array | null {
  const entries = readPresenceEntries(update);
  const kept = entries.filter((e) => e.state !== 'null' || !drop(e.id));
  if (kept.length === entries.length) return update;
  return kept.length === 0 ? null : writePresenceEntries(kept);
}
