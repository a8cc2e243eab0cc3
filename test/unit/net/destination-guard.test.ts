import { describe, expect, it } from 'vitest';
import { createDestinationGuard, localInterfaceAddresses } from '../../../src/net/address-class.js';

/** The operator's list replaces the defaults: a minimal one leaves out loopback, 0.0.0.0/8, :: and multicast. */
const guard = createDestinationGuard({ internal: ['10.0.0.0/8'], localAddresses: ['192.0.2.2/32', '2001:db8::2/128'] });

describe('destination guard: never dialled, whatever network.internal says', () => {
  it.each([
    ['0.0.0.0', 'the unspecified address ("this host")'],
    ['0.1.2.3', 'the unspecified address ("this host")'],
    ['::', 'the unspecified address ("this host")'],
    ['::ffff:0.0.0.0', 'the unspecified address ("this host")'],
    ['::ffff:0:0', 'the unspecified address ("this host")'],
    ['64:ff9b::', 'the unspecified address ("this host")'],
    ['2002::', 'the unspecified address ("this host")'],
    ['224.0.0.1', 'a multicast address'],
    ['239.255.255.250', 'a multicast address'],
    ['ff02::1', 'a multicast address'],
    ['::ffff:224.0.0.1', 'a multicast address'],
    ['255.255.255.255', 'a reserved or broadcast address'],
    ['240.0.0.1', 'a reserved or broadcast address'],
  ])('%s is %s', (ip, reason) => {
    expect(guard.neverDialled(ip)).toBe(reason);
  });

  it.each(['127.0.0.1', '::1', '8.8.8.8', '2606:4700::1111', '10.1.2.3', '192.0.2.2'])('%s can be dialled (rules and the internal list decide)', (ip) => {
    expect(guard.neverDialled(ip)).toBeNull();
  });
});

describe('destination guard: "this host" is internal, whatever network.internal says', () => {
  it.each(['127.0.0.1', '127.255.255.254', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::', '192.0.2.2', '2001:db8::2', '::ffff:192.0.2.2', '10.9.9.9'])(
    '%s is internal',
    (ip) => {
      expect(guard.isInternal(ip)).toBe(true);
    },
  );

  it.each(['8.8.8.8', '192.0.2.3', '2001:db8::3', '2606:4700::1111'])('%s is not', (ip) => {
    expect(guard.isInternal(ip)).toBe(false);
  });

  it('network.allow_loopback makes loopback an ordinary destination, and nothing else', () => {
    const lab = createDestinationGuard({ internal: ['10.0.0.0/8'], allowLoopback: true, localAddresses: ['192.0.2.2/32'] });
    expect(lab.isInternal('127.0.0.1')).toBe(false);
    expect(lab.isInternal('::1')).toBe(false);
    expect(lab.isInternal('192.0.2.2')).toBe(true);
    expect(lab.neverDialled('0.0.0.0')).not.toBeNull();
  });
});

describe('localInterfaceAddresses', () => {
  it('lists non-loopback unicast addresses as host prefixes and leaves out loopback and zoned link-local', () => {
    const list = localInterfaceAddresses({
      lo: [
        { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
        { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
      ],
      eth0: [
        { address: '192.0.2.2', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.2/24' },
        { address: 'fd00::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fd00::2/64', scopeid: 0 },
        { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
      ],
    });
    expect(list).toEqual(['192.0.2.2/32', 'fd00::2/128']);
  });
});
