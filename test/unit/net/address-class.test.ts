import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EgressError } from '../../../src/errors.js';
import {
  DEFAULT_INTERNAL_CIDRS,
  createAddressClassifier,
  formatIPv6,
  parseIPv4,
  parseIPv6Parts,
} from '../../../src/net/address-class.js';

const classifier = createAddressClassifier(DEFAULT_INTERNAL_CIDRS);

describe('default internal list: internal destinations', () => {
  const cases: Array<[intent: string, ip: string]> = [
    ['IPv4 loopback', '127.0.0.1'],
    ['top of 127/8', '127.255.255.255'],
    ['unspecified 0.0.0.0 (reaches the local host)', '0.0.0.0'],
    ['"this network" 0/8', '0.255.0.1'],
    ['RFC 1918 10/8 bottom', '10.0.0.0'],
    ['RFC 1918 10/8 top', '10.255.255.255'],
    ['RFC 1918 172.16/12 bottom', '172.16.0.0'],
    ['RFC 1918 172.16/12 top', '172.31.255.255'],
    ['RFC 1918 192.168/16', '192.168.1.1'],
    ['cloud metadata service', '169.254.169.254'],
    ['link-local bottom', '169.254.0.0'],
    ['CGNAT 100.64/10 bottom', '100.64.0.0'],
    ['CGNAT 100.64/10 top', '100.127.255.255'],
    ['IETF protocol assignments 192.0.0/24', '192.0.0.8'],
    ['benchmarking 198.18/15', '198.19.255.255'],
    ['multicast', '224.0.0.251'],
    ['reserved 240/4', '240.0.0.1'],
    ['limited broadcast', '255.255.255.255'],
    ['IPv6 unspecified', '::'],
    ['IPv6 loopback', '::1'],
    ['IPv6 loopback written long', '0:0:0:0:0:0:0:1'],
    ['ULA', 'fd12:3456::1'],
    ['AWS metadata over IPv6 (ULA)', 'fd00:ec2::254'],
    ['ULA fc00::/7 bottom', 'fc00::'],
    ['IPv6 link-local', 'fe80::1'],
    ['IPv6 link-local top of fe80::/10', 'febf:ffff::1'],
    ['IPv6 multicast', 'ff02::1'],
    ['local-use NAT64 64:ff9b:1::/48', '64:ff9b:1::a00:1'],
    // IPv4-mapped IPv6 of each internal IPv4 class: the socket connects to the IPv4 inside.
    ['mapped loopback, dotted', '::ffff:127.0.0.1'],
    ['mapped loopback, hex', '::ffff:7f00:1'],
    ['mapped unspecified', '::ffff:0.0.0.0'],
    ['mapped 10/8', '::ffff:10.1.2.3'],
    ['mapped 172.16/12', '::ffff:172.20.0.1'],
    ['mapped 192.168/16', '::ffff:c0a8:101'],
    ['mapped metadata', '::ffff:169.254.169.254'],
    ['mapped CGNAT', '::ffff:100.64.0.1'],
    ['mapped broadcast', '::ffff:255.255.255.255'],
    ['mapped, fully written out', '0000:0000:0000:0000:0000:FFFF:7F00:0001'],
    ['IPv4-compatible loopback', '::127.0.0.1'],
    ['IPv4-compatible metadata', '::a9fe:a9fe'],
    ['NAT64 of loopback', '64:ff9b::127.0.0.1'],
    ['NAT64 of metadata', '64:ff9b::a9fe:a9fe'],
    ['NAT64 of 10/8', '64:ff9b::a00:1'],
    ['6to4 of loopback', '2002:7f00:1::1'],
    ['6to4 of 192.168/16', '2002:c0a8:101::'],
    ['Teredo with an internal client (obfuscated 10.0.0.1)', '2001:0:4136:e378:8000:63bf:f5ff:fffe'],
    ['Teredo with an internal server and a public client', '2001:0:a00:1::a247:27dd'],
    ['odd IPv4 spelling, octal', '0177.0.0.1'],
    ['odd IPv4 spelling, decimal', '2130706433'],
  ];
  it.each(cases)('%s (%s) is internal', (_intent, ip) => {
    expect(classifier.isInternal(ip)).toBe(true);
    expect(classifier.classify(ip).internal).toBe(true);
  });
});

describe('default internal list: external destinations', () => {
  const cases: Array<[intent: string, ip: string]> = [
    ['public IPv4', '93.184.216.34'],
    ['just below 10/8', '9.255.255.255'],
    ['just above 10/8', '11.0.0.0'],
    ['just below 172.16/12', '172.15.255.255'],
    ['just above 172.16/12', '172.32.0.0'],
    ['just below 192.168/16', '192.167.255.255'],
    ['just above 100.64/10', '100.128.0.0'],
    ['just below 100.64/10', '100.63.255.255'],
    ['just above 127/8', '128.0.0.0'],
    ['1.0.0.0 just above 0/8', '1.0.0.0'],
    ['just below multicast', '223.255.255.255'],
    ['public IPv6', '2606:4700:4700::1111'],
    ['just below ULA', 'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['just above IPv6 link-local', 'fec0::1'],
    ['documentation prefix 2001:db8::/32 (not in the default list)', '2001:db8::1'],
    ['mapped public IPv4', '::ffff:93.184.216.34'],
    ['NAT64 of a public IPv4', '64:ff9b::5db8:d822'],
    ['6to4 of a public IPv4', '2002:5db8:d822::1'],
    ['Teredo with public server and client', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['2001:db8 is not Teredo', '2001:db8:7f00:1::1'],
  ];
  it.each(cases)('%s (%s) is external', (_intent, ip) => {
    expect(classifier.isInternal(ip)).toBe(false);
    expect(classifier.classify(ip).internal).toBe(false);
  });
});

describe('classify: canonical form and family', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1', 4],
    ['::ffff:127.0.0.1', '127.0.0.1', 4], // mapped: judged and reported as the IPv4 inside
    ['::FFFF:7F00:1', '127.0.0.1', 4],
    ['0x7f.1', '127.0.0.1', 4],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 6], // RFC 5952 §4.2.3: first longest zero run
    ['::127.0.0.1', '::7f00:1', 6], // IPv4-compatible is not IPv4-mapped (ipaddr.js 2.5 confuses the two)
    ['64:ff9b::a9fe:a9fe', '64:ff9b::a9fe:a9fe', 6],
  ] as const)('%s → %s (IPv%i)', (ip, canonical, family) => {
    expect(classifier.classify(ip)).toMatchObject({ canonical, family });
  });

  it('refuses a name with BAD_TARGET but isInternal fails closed on it', () => {
    expect(() => classifier.classify('example.com')).toThrow(EgressError);
    expect(classifier.isInternal('example.com')).toBe(true);
    expect(classifier.isInternal('')).toBe(true);
    expect(classifier.isInternal('fe80::1%eth0')).toBe(true);
  });
});

describe('custom internal list', () => {
  const custom = createAddressClassifier(['203.0.113.0/24', '2001:db8:1::/48', '198.51.100.7']);

  it.each([
    ['inside the custom IPv4 CIDR', '203.0.113.200', true],
    ['a bare address means /32', '198.51.100.7', true],
    ['next to the bare address', '198.51.100.8', false],
    ['inside the custom IPv6 CIDR', '2001:db8:1:ffff::1', true],
    ['outside the custom IPv6 CIDR', '2001:db8:2::1', false],
    ['mapped form of a custom IPv4 CIDR', '::ffff:203.0.113.9', true],
    ['NAT64 form of a custom IPv4 CIDR', '64:ff9b::cb00:7109', true],
    ['loopback is not internal when the list leaves it out', '127.0.0.1', false],
  ] as const)('%s (%s) → internal %s', (_intent, ip, internal) => {
    expect(custom.isInternal(ip)).toBe(internal);
  });

  it('an empty list makes nothing internal', () => {
    expect(createAddressClassifier([]).isInternal('127.0.0.1')).toBe(false);
  });

  it('a host-bits CIDR is masked to its network', () => {
    expect(createAddressClassifier(['10.1.2.3/8']).isInternal('10.200.0.1')).toBe(true);
  });

  it.each(['10.0.0.0/33', 'fc00::/129', 'not-a-cidr', '10.0.0.0/', '10.0.0.0/x', '10/8', ''])(
    'refuses %j with CONFIG_INVALID naming the entry',
    (bad) => {
      try {
        createAddressClassifier([bad]);
        expect.unreachable('expected CONFIG_INVALID');
      } catch (err) {
        expect(err).toBeInstanceOf(EgressError);
        expect((err as EgressError).code).toBe('CONFIG_INVALID');
        expect((err as EgressError).message).toContain(JSON.stringify(bad));
      }
    },
  );
});

describe('contains: allow-list membership (proxy.clients)', () => {
  const clients = createAddressClassifier(['127.0.0.0/8', '::1/128', '10.0.0.0/8']);

  it.each([
    ['listed IPv4', '10.1.2.3', true],
    ['IPv4 peer on a dual-stack socket (mapped)', '::ffff:10.1.2.3', true],
    ['listed IPv6', '::1', true],
    ['unlisted IPv4', '192.0.2.1', false],
    ['6to4 address embedding a listed IPv4 is not a member', '2002:a01:203::1', false],
    ['NAT64 address embedding a listed IPv4 is not a member', '64:ff9b::a01:203', false],
    ['IPv4-compatible form is not a member', '::10.1.2.3', false],
    ['a non-IP is never a member', 'not-an-ip', false],
    ['empty string is never a member', '', false],
  ] as const)('%s (%s) → %s', (_intent, ip, member) => {
    expect(clients.contains(ip)).toBe(member);
  });
});

describe('IP text forms', () => {
  it('parseIPv6Parts agrees with the WHATWG URL parser on every IPv6 address', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const parts = parseIPv6Parts(ip);
        expect(parts).not.toBeNull();
        expect(formatIPv6(parts ?? [])).toBe(new URL(`http://[${ip}]/`).hostname.slice(1, -1));
      }),
      { numRuns: 2000 },
    );
  });

  it('every IPv6 address classifies without throwing, and mapped ones as their IPv4', () => {
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        expect(classifier.classify(`::ffff:${v4}`)).toEqual(classifier.classify(v4));
      }),
      { numRuns: 1000 },
    );
  });

  it('parseIPv4 refuses what the URL Standard refuses', () => {
    for (const bad of ['', '.', '1..2', '256.1.1.1', '1.2.3.4.5', '0x', 'x1', '1.2.3.4..', '09', '4294967296', '1e3']) {
      const whatwgAccepts = (() => {
        try {
          return /^\d+\.\d+\.\d+\.\d+$/.test(new URL(`http://${bad}/`).hostname);
        } catch {
          return false;
        }
      })();
      if (bad !== '0x') expect(whatwgAccepts).toBe(false);
      if (bad !== '0x') expect(parseIPv4(bad)).toBe(-1);
    }
    expect(parseIPv4('0x')).toBe(0); // URL Standard: "0x" alone is the number 0
  });
});
