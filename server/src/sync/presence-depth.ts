/**
 * How deep a presence state's arrays and objects may nest (the page's go three deep). Deeper
 * than a few thousand, turning it back into JSON (as the room does to size it, and y-protocols
 * to send it) overflows the stack: one such state kept would make every greeting fail.
 */
export const MAX_PRESENCE_DEPTH = 32;

/** Whether `value`'s arrays and objects nest deeper than `max` (without recursing). */
export function nestsDeeperThan(value: unknown, max: number = MAX_PRESENCE_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}
