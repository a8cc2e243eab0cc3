import { describe, expect, it } from 'vitest';
import { parseCidr, parseListenAddress, parseServerAddress } from '../../../src/config/listen.js';

const LISTEN = 'expected a listen address like "0.0.0.0:3128" or "[::1]:3128"';
const SERVER = 'expected a DNS server like "192.0.2.53", "192.0.2.53:53" or "[2001:db8::53]:53"';
const CIDR = 'expected a CIDR like "10.0.0.0/8" or an IP address';

describe('parseListenAddress', () => {
  it.each([
    ['IPv4 and port', '0.0.0.0:3128', { host: '0.0.0.0', port: 3128 }],
    ['port 0 (tests bind any free port)', '127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['bracketed IPv6, brackets dropped', '[::1]:9180', { host: '::1', port: 9180 }],
    ['a host name', 'localhost:8080', { host: 'localhost', port: 8080 }],
    ['the highest port', '0.0.0.0:65535', { host: '0.0.0.0', port: 65_535 }],
  ])('accepts %s', (_intent, input, value) => {
    expect(parseListenAddress(input)).toEqual({ ok: true, value });
  });

  it.each([
    ['no port', '0.0.0.0', LISTEN],
    ['a port above 65535', '0.0.0.0:70000', 'expected a port from 0 to 65535'],
    ['a non-numeric port', '0.0.0.0:http', 'expected a port from 0 to 65535'],
    ['an empty port', '0.0.0.0:', 'expected a port from 0 to 65535'],
    ['an IPv4 address out of range', '10.0.0.256:80', LISTEN],
    ['a short IPv4 form', '10.1:80', LISTEN],
    ['unbracketed IPv6', '::1:3128', 'expected IPv6 in brackets with a port, like "[::1]:3128"'],
    ['bracketed garbage', '[nope]:80', LISTEN],
    ['a number', 3128, LISTEN],
    ['an empty host', ':3128', LISTEN],
  ])('refuses %s', (_intent, input, expected) => {
    expect(parseListenAddress(input)).toEqual({ ok: false, expected });
  });
});

describe('parseServerAddress', () => {
  it.each([
    ['IPv4 alone means port 53', '192.0.2.53', { host: '192.0.2.53', port: 53 }],
    ['IPv4 and port', '192.0.2.53:5353', { host: '192.0.2.53', port: 5353 }],
    ['bracketed IPv6 and port', '[2001:db8::53]:53', { host: '2001:db8::53', port: 53 }],
    ['bracketed IPv6 alone means port 53', '[::1]', { host: '::1', port: 53 }],
  ])('accepts %s', (_intent, input, value) => {
    expect(parseServerAddress(input)).toEqual({ ok: true, value });
  });

  it.each([
    ['port 0 (cannot be sent to)', '192.0.2.53:0', 'expected a port from 1 to 65535'],
    ['a host name (resolving it would need a resolver)', 'dns.example:53', SERVER],
    ['unbracketed IPv6, whose port is ambiguous', '2001:db8::53', 'expected IPv6 in brackets, like "[2001:db8::53]:53"'],
    ['an IPv6 zone', '[fe80::1%eth0]:53', SERVER],
  ])('refuses %s', (_intent, input, expected) => {
    expect(parseServerAddress(input)).toEqual({ ok: false, expected });
  });
});

describe('parseCidr', () => {
  it.each([
    ['IPv4 network', '10.0.0.0/8', '10.0.0.0/8'],
    ['IPv6 network', 'fc00::/7', 'fc00::/7'],
    ['bare IPv4 means /32', '192.0.2.1', '192.0.2.1/32'],
    ['bare IPv6 means /128', '::1', '::1/128'],
    ['everything', '0.0.0.0/0', '0.0.0.0/0'],
  ])('accepts %s', (_intent, input, value) => {
    expect(parseCidr(input)).toEqual({ ok: true, value });
  });

  it.each([
    ['an octet above 255', '10.0.0.300/8', CIDR],
    ['an octal-looking octet', '010.0.0.0/8', CIDR],
    ['a host name', 'example.com/8', CIDR],
    ['an IPv6 zone', 'fe80::1%eth0/64', CIDR],
    ['an IPv4 prefix above 32', '10.0.0.0/33', 'expected an IPv4 prefix length from 0 to 32'],
    ['an IPv6 prefix above 128', '::/129', 'expected an IPv6 prefix length from 0 to 128'],
    ['an empty prefix', '10.0.0.0/', 'expected an IPv4 prefix length from 0 to 32'],
    ['a signed prefix', '10.0.0.0/+8', 'expected an IPv4 prefix length from 0 to 32'],
    ['host bits set', '10.0.0.1/8', 'expected a network address without host bits (did you mean "10.0.0.0/8"?)'],
    ['IPv6 host bits set', 'fc00::1/7', 'expected a network address without host bits (did you mean "fc00::/7"?)'],
    ['a number', 10, CIDR],
  ])('refuses %s', (_intent, input, expected) => {
    expect(parseCidr(input)).toEqual({ ok: false, expected });
  });
});
