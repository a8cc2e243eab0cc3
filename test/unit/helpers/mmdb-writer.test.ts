import { Reader } from 'maxmind';
import { describe, expect, it } from 'vitest';
import { encodeValue, mmdbValue, writeMmdb } from '../../helpers/mmdb-writer.js';

const CITY_NL = { country: { iso_code: 'NL', geoname_id: 2750405, names: { en: 'Netherlands', de: 'Niederlande' } }, location: { latitude: 52.3824, longitude: 4.8995 } };
const ASN = { autonomous_system_number: 64500, autonomous_system_organization: 'Example Net' };

describe('writeMmdb round-trips through the maxmind Reader', () => {
  describe.each([24, 28, 32] as const)('%i-bit records', (recordSize) => {
    it('IPv4 database: inside and outside the networks', () => {
      const reader = new Reader(writeMmdb({ databaseType: 'GeoLite2-City', ipVersion: 4, recordSize, networks: [{ cidr: '192.0.2.0/24', data: CITY_NL }, { cidr: '198.51.100.128/25', data: ASN }] }));
      expect(reader.get('192.0.2.0')).toEqual(CITY_NL);
      expect(reader.get('192.0.2.255')).toEqual(CITY_NL);
      expect(reader.get('198.51.100.200')).toEqual(ASN);
      expect(reader.get('198.51.100.127')).toBeNull();
      expect(reader.get('192.0.3.0')).toBeNull();
      expect(reader.get('10.0.0.1')).toBeNull();
      expect(reader.getWithPrefixLength('192.0.2.9')[1]).toBe(24);
      expect(reader.metadata).toMatchObject({ binaryFormatMajorVersion: 2, binaryFormatMinorVersion: 0, databaseType: 'GeoLite2-City', ipVersion: 4, recordSize, languages: ['en'] });
    });

    it('IPv6 database: IPv6 networks, and IPv4 networks under ::/96', () => {
      const reader = new Reader(writeMmdb({ databaseType: 'GeoLite2-ASN', ipVersion: 6, recordSize, networks: [{ cidr: '2001:db8:1::/48', data: ASN }, { cidr: '203.0.113.0/24', data: { autonomous_system_number: 64501, autonomous_system_organization: 'Other' } }] }));
      expect(reader.get('2001:db8:1:ffff::1')).toEqual(ASN);
      expect(reader.get('2001:db8:2::1')).toBeNull();
      expect(reader.get('203.0.113.77')).toMatchObject({ autonomous_system_number: 64501 });
      expect(reader.get('::203.0.113.77')).toMatchObject({ autonomous_system_number: 64501 });
      expect(reader.get('203.0.114.1')).toBeNull();
      expect(reader.metadata.ipVersion).toBe(6);
    });
  });

  it('metadata: node_count matches the tree, build_epoch as given', () => {
    const buf = writeMmdb({ databaseType: 'Test', ipVersion: 4, networks: [{ cidr: '128.0.0.0/1', data: { a: 'x' } }], buildEpoch: 1_700_000_000 });
    const reader = new Reader(buf);
    expect(reader.metadata.nodeCount).toBe(1); // the root alone: its right record points at the data
    expect(reader.metadata.buildEpoch.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(reader.metadata.description).toEqual({ en: 'Test test database' });
    expect(reader.get('200.1.1.1')).toEqual({ a: 'x' });
    expect(reader.get('100.1.1.1')).toBeNull();
  });

  it('an empty database answers null everywhere', () => {
    const reader = new Reader(writeMmdb({ databaseType: 'Test', ipVersion: 6, networks: [] }));
    expect(reader.get('1.2.3.4')).toBeNull();
    expect(reader.get('2001:db8::1')).toBeNull();
  });

  it.each([
    ['specific last', ['10.0.0.0/8', '10.1.0.0/16']],
    ['specific first', ['10.1.0.0/16', '10.0.0.0/8']],
  ])('a network inside a larger one wins (%s)', (_name, cidrs) => {
    const reader = new Reader(writeMmdb({ databaseType: 'Test', ipVersion: 4, networks: cidrs.map((cidr) => ({ cidr, data: { cidr } })) }));
    expect(reader.get('10.1.2.3')).toEqual({ cidr: '10.1.0.0/16' });
    expect(reader.get('10.2.2.3')).toEqual({ cidr: '10.0.0.0/8' });
    expect(reader.get('10.0.0.1')).toEqual({ cidr: '10.0.0.0/8' });
    // The /8 is split along the /16's path: its halves answer at the depth where an address leaves that path.
    expect(reader.getWithPrefixLength('10.200.0.1')[1]).toBe(9);
    expect(reader.getWithPrefixLength('10.0.0.1')[1]).toBe(16);
  });

  it('host bits beyond the prefix are ignored; /32 and /128 work', () => {
    const reader = new Reader(writeMmdb({ databaseType: 'Test', ipVersion: 6, networks: [{ cidr: '192.0.2.77/32', data: { h: 1 } }, { cidr: '2001:db8::5/128', data: { h: 2 } }, { cidr: '198.51.100.99/24', data: { h: 3 } }] }));
    expect(reader.get('192.0.2.77')).toEqual({ h: 1 });
    expect(reader.get('192.0.2.76')).toBeNull();
    expect(reader.get('2001:db8::5')).toEqual({ h: 2 });
    expect(reader.get('2001:db8::4')).toBeNull();
    expect(reader.get('198.51.100.1')).toEqual({ h: 3 });
  });

  it('every data type decodes to what was written', () => {
    const data = {
      str: 'héllo ✓',
      empty: '',
      s29: 'a'.repeat(29),
      s284: 'b'.repeat(284),
      s285: 'c'.repeat(285),
      s65821: 'd'.repeat(65_821),
      u16: mmdbValue('uint16', 65_535),
      u32: 4_294_967_295,
      zero: 0,
      i32: -2_147_483_648,
      i32pos: mmdbValue('int32', 7),
      u64: 18_446_744_073_709_551_615n,
      u128: (1n << 128n) - 1n,
      dbl: 52.3824,
      neg: -1.5,
      flt: mmdbValue('float', 0.5),
      yes: true,
      no: false,
      arr: [1, 'two', [3], { four: 4 }],
      none: [],
      nested: { a: { b: { c: { d: 'deep' } } } },
      emptyMap: {},
      bytes: new Uint8Array([0, 1, 255]),
      big: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
    };
    const reader = new Reader(writeMmdb({ databaseType: 'Test', ipVersion: 4, networks: [{ cidr: '192.0.2.0/24', data }] }));
    const got = reader.get('192.0.2.1') as unknown as Record<string, unknown>;
    expect(got).toEqual({ ...data, u16: 65_535, i32pos: 7, flt: 0.5, bytes: Buffer.from([0, 1, 255]) });
  });

  it('28- and 32-bit records carry values above 2^24 (the 28-bit middle nibble); 24-bit refuses', () => {
    // A 17 MB string pushes the second network's data offset past 2^24.
    const networks = [{ cidr: '10.0.0.0/8', data: { pad: 'x'.repeat(16_800_000) } }, { cidr: '11.0.0.0/8', data: { tag: 'far' } }];
    for (const recordSize of [28, 32] as const) {
      const reader = new Reader(writeMmdb({ databaseType: 'Test', ipVersion: 4, recordSize, networks }));
      expect(reader.get('11.2.3.4')).toEqual({ tag: 'far' });
      expect(reader.get('12.0.0.1')).toBeNull();
    }
    expect(() => writeMmdb({ databaseType: 'Test', ipVersion: 4, recordSize: 24, networks })).toThrow(/too large for 24-bit/);
  });

  it('rejects what it cannot write', () => {
    expect(() => writeMmdb({ databaseType: 'Test', ipVersion: 4, networks: [{ cidr: '2001:db8::/32', data: {} }] })).toThrow(/IPv6 in an IPv4/);
    expect(() => writeMmdb({ databaseType: 'Test', ipVersion: 4, networks: [{ cidr: '0.0.0.0/0', data: {} }] })).toThrow(/\/0/);
    expect(() => encodeValue(() => 1)).toThrow(/cannot encode function/);
  });
});
