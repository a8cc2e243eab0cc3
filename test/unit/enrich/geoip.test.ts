import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Reader } from 'maxmind';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEgressError } from '../../../src/errors.js';
import { normalizeIp, openGeoIp, type GeoIp } from '../../../src/enrich/geoip.js';
import { encodeValue, writeMmdb } from '../../helpers/mmdb-writer.js';

const NL = { country: { iso_code: 'NL', names: { en: 'Netherlands' } }, registered_country: { iso_code: 'NL', names: { en: 'Netherlands' } } };

let dir: string;
const files: Record<string, string> = {};

async function put(name: string, content: Buffer | string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  files[name] = path;
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geoip-test-'));
  const city = writeMmdb({
    databaseType: 'GeoLite2-City',
    ipVersion: 6,
    networks: [
      { cidr: '192.0.2.0/24', data: NL },
      { cidr: '2001:db8:de::/48', data: { country: { iso_code: 'DE', names: { en: 'Germany' } } } },
      // Anycast / satellite style record: no country, only where the network is registered.
      { cidr: '198.51.100.0/24', data: { registered_country: { iso_code: 'US' } } },
      // Garbage an operator's odd database might hold: ignored, not passed on.
      { cidr: '203.0.113.0/25', data: { country: { iso_code: 42 } } },
      { cidr: '203.0.113.128/25', data: { country: 'NL' } },
    ],
  });
  const asn = writeMmdb({
    databaseType: 'GeoLite2-ASN',
    ipVersion: 6,
    recordSize: 28,
    networks: [
      { cidr: '192.0.2.0/25', data: { autonomous_system_number: 64500, autonomous_system_organization: 'Example Net' } },
      { cidr: '2001:db8:de::/48', data: { autonomous_system_number: 64501, autonomous_system_organization: 'Example DE' } },
      { cidr: '100.64.0.0/10', data: { autonomous_system_number: 64502 } },
      { cidr: '100.128.0.0/10', data: { autonomous_system_number: '64503', autonomous_system_organization: '' } },
    ],
  });
  // An IPv4-only Country database: 32.0.0.0/3 also covers the first 32 bits of 2001:db8::/32.
  const country = writeMmdb({ databaseType: 'GeoLite2-Country', ipVersion: 4, networks: [{ cidr: '32.0.0.0/3', data: { country: { iso_code: 'AA' } } }, { cidr: '192.0.2.0/24', data: NL }] });
  await put('city.mmdb', city);
  await put('asn.mmdb', asn);
  await put('country.mmdb', country);
  await put('empty.mmdb', Buffer.alloc(0));
  await put('text.mmdb', 'this is not a database\n');
  await put('city.mmdb.gz', gzipSync(city));
  await put('anonymous.mmdb', writeMmdb({ databaseType: 'GeoIP2-Anonymous-IP', ipVersion: 6, networks: [] }));
  // Metadata that claims a tree far larger than the file.
  const meta = encodeValue({ binary_format_major_version: 2, binary_format_minor_version: 0, build_epoch: 0n, database_type: 'GeoLite2-City', ip_version: 6, node_count: 1_000_000, record_size: 24 });
  await put('truncated.mmdb', Buffer.concat([Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), meta]));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function open(city: string | null, asn: string | null): Promise<GeoIp> {
  const geo = await openGeoIp({ city, asn });
  if (geo === null) throw new Error('expected a GeoIp');
  return geo;
}

describe('openGeoIp', () => {
  it('is off (null) when neither database is configured', async () => {
    expect(await openGeoIp({ city: null, asn: null })).toBeNull();
  });

  it('city only: the country, from country then registered_country', async () => {
    const geo = await open(files['city.mmdb']!, null);
    expect(geo.databases).toEqual({ city: 'GeoLite2-City', asn: null });
    expect(geo.lookup('192.0.2.10')).toEqual({ countryIso: 'NL' });
    expect(geo.lookup('2001:db8:de::1')).toEqual({ countryIso: 'DE' });
    expect(geo.lookup('198.51.100.1')).toEqual({ countryIso: 'US' });
    expect(geo.lookup('10.0.0.1')).toBeNull();
    expect(geo.lookup('2001:db8:ff::1')).toBeNull();
  });

  it('a City or Country database with an IPv4 tree: IPv6 addresses get nothing, not a wrong country', async () => {
    const geo = await open(files['country.mmdb']!, null);
    expect(geo.databases.city).toBe('GeoLite2-Country');
    expect(geo.lookup('33.1.1.1')).toEqual({ countryIso: 'AA' });
    expect(geo.lookup('2001:db8::1')).toBeNull(); // its first 32 bits are 32.1.13.184, inside 32.0.0.0/3
    expect(geo.lookup('::ffff:192.0.2.1')).toEqual({ countryIso: 'NL' });
  });

  it('ASN only: number and organisation', async () => {
    const geo = await open(null, files['asn.mmdb']!);
    expect(geo.databases).toEqual({ city: null, asn: 'GeoLite2-ASN' });
    expect(geo.lookup('192.0.2.1')).toEqual({ asNumber: 64500, asOrganization: 'Example Net' });
    expect(geo.lookup('2001:db8:de:1::2')).toEqual({ asNumber: 64501, asOrganization: 'Example DE' });
    expect(geo.lookup('100.64.0.1')).toEqual({ asNumber: 64502 });
    expect(geo.lookup('192.0.2.200')).toBeNull();
  });

  it('both: facts merged; each database answers for what it knows', async () => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    expect(geo.databases).toEqual({ city: 'GeoLite2-City', asn: 'GeoLite2-ASN' });
    expect(geo.lookup('192.0.2.1')).toEqual({ countryIso: 'NL', asNumber: 64500, asOrganization: 'Example Net' });
    expect(geo.lookup('192.0.2.200')).toEqual({ countryIso: 'NL' });
    expect(geo.lookup('100.64.0.1')).toEqual({ asNumber: 64502 });
    expect(geo.lookup('2001:db8:de::9')).toEqual({ countryIso: 'DE', asNumber: 64501, asOrganization: 'Example DE' });
    expect(geo.lookup('8.8.8.8')).toBeNull();
  });

  it('the same answer from the cache as from the first lookup', async () => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    const first = geo.lookup('192.0.2.1');
    for (let i = 0; i < 100; i++) expect(geo.lookup(`192.0.2.${i}`)).toEqual(first);
  });

  it.each([
    ['::ffff:192.0.2.1', { countryIso: 'NL', asNumber: 64500 }],
    ['::FFFF:192.0.2.1', { countryIso: 'NL', asNumber: 64500 }],
    ['::ffff:c000:201', { countryIso: 'NL', asNumber: 64500 }],
    ['0:0:0:0:0:ffff:192.0.2.1', { countryIso: 'NL', asNumber: 64500 }],
    ['2001:db8:de::1%eth0', { countryIso: 'DE', asNumber: 64501 }],
  ])('IPv4-mapped and zoned IPv6: %s', async (ip, expected) => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    expect(geo.lookup(ip)).toMatchObject(expected);
  });

  it('ignores record fields of the wrong type', async () => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    expect(geo.lookup('203.0.113.1')).toBeNull(); // iso_code is a number
    expect(geo.lookup('203.0.113.200')).toBeNull(); // country is a string
    expect(geo.lookup('100.128.0.1')).toBeNull(); // AS number as text, empty organisation
  });

  it.each(['', 'not-an-ip', '192.0.2', '192.0.2.256', '01.2.3.4', '192.0.2.1/24', '[2001:db8::1]', '2001:db8::1::1', ' 192.0.2.1', 'x'.repeat(100)])(
    'an invalid address gives null: %j',
    async (ip) => {
      const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
      expect(geo.lookup(ip)).toBeNull();
    },
  );

  it('answers are frozen (one object is shared by every caller of an address)', async () => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    const facts = geo.lookup('192.0.2.1');
    expect(Object.isFrozen(facts)).toBe(true);
    expect(geo.lookup('192.0.2.1')).toBe(facts);
  });

  it('close(): lookups return null afterwards, cached addresses included', async () => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    expect(geo.lookup('192.0.2.1')).not.toBeNull();
    geo.close();
    expect(geo.lookup('192.0.2.1')).toBeNull();
  });
});

describe('openGeoIp: bad files fail start-up with the key, the path and the reason', () => {
  it.each([
    ['missing file', 'city', 'nope.mmdb', 'CONFIG_READ', /^geoip\.city: cannot read .*nope\.mmdb \(ENOENT\)$/],
    ['a directory', 'asn', '.', 'CONFIG_READ', /^geoip\.asn: cannot read .* \(EISDIR\)$/],
    ['empty file', 'city', 'empty.mmdb', 'CONFIG_INVALID', /^geoip\.city: .*empty\.mmdb is not a usable MaxMind DB file: the file is empty$/],
    ['text file', 'asn', 'text.mmdb', 'CONFIG_INVALID', /^geoip\.asn: .*text\.mmdb is not a usable MaxMind DB file: no MaxMind DB metadata marker/],
    ['gzip file', 'city', 'city.mmdb.gz', 'CONFIG_INVALID', /gzip-compressed; extract the \.mmdb first/],
    ['truncated tree', 'city', 'truncated.mmdb', 'CONFIG_INVALID', /truncated\.mmdb is not a usable MaxMind DB file: its metadata .* does not match the file/],
    ['ASN file as city', 'city', 'asn.mmdb', 'CONFIG_INVALID', /^geoip\.city: .*asn\.mmdb .*it is a "GeoLite2-ASN" database; expected a City or Country database/],
    ['City file as asn', 'asn', 'city.mmdb', 'CONFIG_INVALID', /^geoip\.asn: .*city\.mmdb .*it is a "GeoLite2-City" database; expected an ASN database/],
    ['another kind of database', 'city', 'anonymous.mmdb', 'CONFIG_INVALID', /"GeoIP2-Anonymous-IP" database/],
  ])('%s', async (_name, key, file, code, message) => {
    const path = file === '.' ? dir : (files[file] ?? join(dir, file));
    const err: unknown = await openGeoIp(key === 'city' ? { city: path, asn: null } : { city: null, asn: path }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isEgressError(err), String(err)).toBe(true);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
  });

  it('one bad database fails the whole open, even when the other is good', async () => {
    await expect(openGeoIp({ city: files['city.mmdb']!, asn: files['text.mmdb']! })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('lookup() never throws', () => {
  it('on arbitrary strings and on valid addresses of both families', async () => {
    const geo = await open(files['city.mmdb']!, files['asn.mmdb']!);
    const ipish = fc.stringMatching(/^[0-9a-fA-F:.%]{0,50}$/);
    const inputs = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }), ipish, fc.ipV4(), fc.ipV6(), fc.ipV4Extended());
    fc.assert(
      fc.property(inputs, (ip) => {
        const facts = geo.lookup(ip);
        return facts === null || (typeof facts === 'object' && Object.keys(facts).length > 0);
      }),
      { numRuns: 20_000 },
    );
  });

  const marker = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');
  const good = writeMmdb({ databaseType: 'GeoLite2-City', ipVersion: 6, networks: Array.from({ length: 16 }, (_, i) => ({ cidr: `10.${i}.0.0/16`, data: NL })) });

  /** Overwrites good[from, to) at a random place with noise; opens it; every lookup must return null or facts. */
  async function corruptAndLookUp(noise: Uint8Array, at: number, from: number, to: number): Promise<void> {
    const bad = Buffer.from(good);
    const start = from + (at % (to - from));
    Buffer.from(noise).copy(bad, start, 0, Math.min(noise.length, to - start));
    const path = await put('corrupt.mmdb', bad);
    const geo = await openGeoIp({ city: path, asn: null }).catch((err: unknown) => {
      expect(isEgressError(err), String(err)).toBe(true); // refusing the file is fine, if it says why
      return null;
    });
    for (let i = 0; i < 16 && geo !== null; i++) {
      for (const ip of [`10.${i}.1.1`, `2001:db8::${i}`, `::ffff:10.${i}.0.1`]) {
        const facts = geo.lookup(ip);
        expect(facts === null || typeof facts.countryIso === 'string').toBe(true);
      }
    }
  }

  it('on a database whose data section is corrupt', async () => {
    const reader = new Reader(good);
    const dataStart = reader.metadata.searchTreeSize + 16;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (noise, at) => corruptAndLookUp(noise, at, dataStart, good.lastIndexOf(marker))),
      { numRuns: 150 },
    );
  });

  it('on a database corrupt anywhere (tree, separator, data, metadata): opens with a clear error or answers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.nat(), (noise, at) => corruptAndLookUp(noise, at, 0, good.length)),
      { numRuns: 200 },
    );
  });
});

describe('normalizeIp', () => {
  it.each([
    ['192.0.2.1', { text: '192.0.2.1', v4: true }],
    ['::ffff:192.0.2.1', { text: '192.0.2.1', v4: true }],
    ['::ffff:c000:201', { text: '192.0.2.1', v4: true }],
    ['2001:db8::ffff:1', { text: '2001:db8::ffff:1', v4: false }],
    ['fe80::1%eth0', { text: 'fe80::1', v4: false }],
    ['::192.0.2.1', { text: '::192.0.2.1', v4: false }],
    ['nope', null],
  ])('%s', (ip, expected) => {
    expect(normalizeIp(ip)).toEqual(expected);
  });
});
