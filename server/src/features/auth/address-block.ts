/**
 * The block of addresses the sign-in throttle counts together: one IPv4 address, or one IPv6
 * /64 (the block one home or one machine is given, within which anyone can pick a fresh address
 * per attempt). IPv4 written as IPv6 (`::ffff:1.2.3.4`) counts as IPv4.
 *
 * @example
 *   addressBlock('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 *   addressBlock('::ffff:192.0.2.7')     // '192.0.2.7'
 */
import { isIPv4, isIPv6 } from 'node:net';

export function addressBlock(address: string): string {
  const bare = address.replace(/%.*$/, ''); // a zone (fe80::1%eth0) names an interface, not a host
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (!isIPv6(bare)) return address;
  const groups = hextets(bare);
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing IPv4 read). */
function hextets(address: string): number[] {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, null];
  const parse = (part: string | null | undefined): number[] => {
    if (!part) return [];
    return part.split(':').flatMap((g) => {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        return [(a << 8) | b, (c << 8) | d];
      }
      return [parseInt(g, 16)];
    });
  };
  const left = parse(head);
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
