import { describe, expect, it } from 'vitest';
import { ALLOWED_HOST_ENTRY, hostAllowed, hostName } from './allowed-hosts.ts';

describe('hostName', () => {
  it('reads the name of a Host header, lowercased, without its port or a final dot', () => {
    expect(hostName('Spanwise.Example.org:8080')).toBe('spanwise.example.org');
    expect(hostName('example.org.')).toBe('example.org');
    expect(hostName('[::1]:3000')).toBe('::1');
    expect(hostName('127.0.0.1:3000')).toBe('127.0.0.1');
  });

  it('reads nothing from what is not a host', () => {
    for (const bad of ['a b', 'user@example.org', '[not-v6]:80', 'example.org:port', 'example.org/x']) expect(hostName(bad), bad).toBeNull();
  });
});

describe('hostAllowed', () => {
  it('answers IP addresses and localhost names whatever is listed, and no other name unless listed', () => {
    for (const host of ['127.0.0.1:3000', '10.1.2.3', '[::1]:3000', '[fe80::1]', 'localhost:8080', 'LOCALHOST', 'app.localhost:5173', undefined]) {
      expect(hostAllowed(host, []), String(host)).toBe(true);
    }
    for (const host of ['evil.example:3000', 'localhost.evil.example', '127.0.0.1.nip.io', '', ':3000', 'a b']) {
      expect(hostAllowed(host, []), host).toBe(false);
    }
  });

  it('answers a listed name, a listed domain and the names under it, or any name for *', () => {
    expect(hostAllowed('spanwise.example.org:443', ['spanwise.example.org'])).toBe(true);
    expect(hostAllowed('other.example.org', ['spanwise.example.org'])).toBe(false);
    expect(hostAllowed('example.org', ['.example.org'])).toBe(true);
    expect(hostAllowed('a.b.example.org', ['.example.org'])).toBe(true);
    expect(hostAllowed('notexample.org', ['.example.org'])).toBe(false);
    expect(hostAllowed('anything.example', ['*'])).toBe(true);
    expect(hostAllowed('app_servers', ['*'])).toBe(true); // (* takes any Host at all)
    expect(hostAllowed('spanwise_app_1:3000', ['spanwise_app_1'])).toBe(true); // (Docker's names hold _)
  });

  it('lists only names, domains or *', () => {
    for (const ok of ['spanwise.example.org', '.example.org', '*', 'intranet', 'spanwise_app_1']) expect(ALLOWED_HOST_ENTRY.test(ok), ok).toBe(true);
    for (const bad of ['*.example.org', 'http://example.org', 'example.org:8080', '-a.example', 'a..b']) expect(ALLOWED_HOST_ENTRY.test(bad), bad).toBe(false);
  });
});
