/**
 * GeoIP and ASN facts for a destination address, from MaxMind DB (`.mmdb`) files read with `maxmind` 5:
 * a City or Country database (GeoLite2/GeoIP2, DB-IP lite) gives the country, an ASN database the
 * autonomous system. C2 on rented hosting shows as an AS and a country the organisation never talks to;
 * policy and scoring match on those facts (destination.geo.country_iso_code, destination.as.*).
 *
 * Files are read once, asynchronously, at start-up and validated then, so a wrong path or a wrong file stops
 * the start with a message naming the config key; no reload (restart to pick up a new database). After that,
 * lookup() is synchronous, never throws, and touches no disk: an LRU of answers per address, else a tree walk
 * over the in-memory files plus mmdb-lib's LRU of decoded records.
 *
 * maxmind (and mmdb-lib) are imported when a database is configured, not at start-up: GeoIP is off by default,
 * and a proxy should not hold code it never runs (issue 9, memory).
 */
import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import type { Reader, Response } from 'maxmind';
import { EgressError } from '../errors.js';

export interface GeoFacts {
  /** ISO 3166-1 alpha-2 country (country.iso_code, else registered_country.iso_code). */
  readonly countryIso?: string;
  readonly asNumber?: number;
  readonly asOrganization?: string;
}

export interface GeoIp {
  /** Facts for an IPv4/IPv6 address (IPv4-mapped IPv6 is looked up as IPv4); null when invalid or unknown. */
  lookup(ip: string): GeoFacts | null;
  /** The `database_type` of each open database (e.g. "GeoLite2-City"), null when not configured. */
  readonly databases: { readonly city: string | null; readonly asn: string | null };
  /** Drops the databases; lookups return null afterwards. */
  close(): void;
}

export interface GeoIpOptions {
  /** Path of a City or Country `.mmdb` (config geoip.city). */
  readonly city: string | null;
  /** Path of an ASN `.mmdb` (config geoip.asn). */
  readonly asn: string | null;
}

type ConfigKey = 'geoip.city' | 'geoip.asn';

/** Decoded records kept per database. Each caches the record of one network, so 10k covers the busy ones. */
const CACHE_RECORDS = 10_000;
/** Answers kept per address text, and how long an address not asked again stays. */
const CACHE_ADDRESSES = 10_000;
const CACHE_ADDRESS_TTL_MS = 3_600_000;
/** The cached answer "nothing for this address" (lru-cache values cannot be null). */
const NO_FACTS: Readonly<Record<string, never>> = Object.freeze({});
/** Longest address text we try: full IPv6 with an embedded IPv4 is 45 characters, plus a short zone id. */
const MAX_IP_TEXT = 64;
/** Spec "Database Metadata": the last occurrence of this marker starts the metadata (MaxMind-DB-spec.md). */
const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');
const GZIP_MAGIC = 0x1f8b;
/** database_type values that carry country.iso_code: GeoLite2/GeoIP2-City, -Country, -Enterprise, DBIP-*-Lite. */
const CITY_TYPES = /city|country|enterprise/i;
/** database_type values that carry autonomous_system_number/_organization at the top: GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite. */
const ASN_TYPES = /asn|isp/i;
/** IPv4-mapped IPv6 (RFC 4291 §2.5.5.2) always spells out ffff; anything else skips the slower full parse. */
const MAYBE_MAPPED = /ffff/i;

/** The slice of a City/Country/ASN record we read. The file is operator-supplied: every field is checked. */
interface GeoRecord {
  readonly country?: { readonly iso_code?: unknown };
  readonly registered_country?: { readonly iso_code?: unknown };
  readonly autonomous_system_number?: unknown;
  readonly autonomous_system_organization?: unknown;
}

interface OpenDatabase {
  readonly reader: Reader<Response>;
  readonly ipv4Only: boolean;
  readonly type: string;
}

/** Returns null when both paths are null (GeoIP off). Throws EgressError CONFIG_READ / CONFIG_INVALID. */
export async function openGeoIp(opts: GeoIpOptions): Promise<GeoIp | null> {
  if (opts.city === null && opts.asn === null) return null;
  const [city, asn] = await Promise.all([
    opts.city === null ? null : openDatabase('geoip.city', opts.city, CITY_TYPES, 'a City or Country database (e.g. GeoLite2-City, GeoLite2-Country)'),
    opts.asn === null ? null : openDatabase('geoip.asn', opts.asn, ASN_TYPES, 'an ASN database (e.g. GeoLite2-ASN)'),
  ]);
  let cityDb = city;
  let asnDb = asn;
  // Destinations repeat (the same CDN and API addresses all day), and a miss costs two tree walks of 32–128
  // steps (~0.8 µs each in mmdb-lib, see bench/geoip.bench.ts), so answers are kept per address text. The
  // databases never change under a GeoIp (no reload), so the TTL only ages out addresses no longer seen.
  const answers = new LRUCache<string, GeoFacts | typeof NO_FACTS>({ max: CACHE_ADDRESSES, ttl: CACHE_ADDRESS_TTL_MS });
  const answer = (ip: string): GeoFacts | null => {
    const addr = normalizeIp(ip);
    if (addr === null) return null;
    const countryIso = cityDb === null ? undefined : countryOf(get(cityDb, addr));
    const asRecord = asnDb === null ? null : get(asnDb, addr);
    const asNumber = asRecord === null ? undefined : asNumberOf(asRecord);
    const asOrganization = asRecord === null ? undefined : nonEmpty(asRecord.autonomous_system_organization);
    if (countryIso === undefined && asNumber === undefined && asOrganization === undefined) return null;
    const facts: { countryIso?: string; asNumber?: number; asOrganization?: string } = {};
    if (countryIso !== undefined) facts.countryIso = countryIso;
    if (asNumber !== undefined) facts.asNumber = asNumber;
    if (asOrganization !== undefined) facts.asOrganization = asOrganization;
    return Object.freeze(facts); // shared by every caller that asks for this address
  };
  return {
    databases: { city: city?.type ?? null, asn: asn?.type ?? null },
    lookup(ip: string): GeoFacts | null {
      if (typeof ip !== 'string' || ip.length === 0 || ip.length > MAX_IP_TEXT) return null;
      const cached = answers.get(ip);
      if (cached !== undefined) return cached === NO_FACTS ? null : cached;
      if (cityDb === null && asnDb === null) return null; // closed
      const facts = answer(ip);
      answers.set(ip, facts ?? NO_FACTS); // invalid and unknown addresses too: both repeat as often as the rest
      return facts;
    },
    close(): void {
      cityDb = null;
      asnDb = null;
      answers.clear();
    },
  };
}

async function openDatabase(key: ConfigKey, path: string, types: RegExp, expected: string): Promise<OpenDatabase> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    throw new EgressError('CONFIG_READ', `${key}: cannot read ${path} (${reason})`, { cause: err });
  }
  const invalid = (reason: string, cause?: unknown): EgressError =>
    new EgressError('CONFIG_INVALID', `${key}: ${path} is not a usable MaxMind DB file: ${reason}`, cause === undefined ? undefined : { cause });
  if (buf.length === 0) throw invalid('the file is empty');
  if (buf.length >= 2 && buf.readUInt16BE(0) === GZIP_MAGIC) throw invalid('it is gzip-compressed; extract the .mmdb first');
  if (buf.lastIndexOf(METADATA_MARKER) < 0) throw invalid('no MaxMind DB metadata marker (is it an .mmdb file?)');
  // The LRU is handed to mmdb-lib's decoder as its cache (get/set by data offset). `new Reader(buf, { cache:
  // { max } })` is maxmind.open()'s option shape and would crash here: Reader wants an object with get/set.
  // No TTL (house rule exception): keys are offsets into this immutable buffer, so an entry cannot go stale;
  // the size bound caps the memory.
  const cache = new LRUCache<string | number, object>({ max: CACHE_RECORDS });
  const { Reader: MaxMindReader } = await import('maxmind');
  let reader: Reader<Response>;
  try {
    reader = new MaxMindReader<Response>(buf, { cache });
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : String(err), err);
  }
  const meta = reader.metadata;
  // Spec "Calculating the Search Tree Section Size" + 16-byte separator: the tree must fit in the file.
  const treeFits = Number.isSafeInteger(meta.nodeCount) && meta.nodeCount > 0 && meta.searchTreeSize + 16 <= buf.length;
  if ((meta.ipVersion !== 4 && meta.ipVersion !== 6) || !treeFits) throw invalid('its metadata (ip_version, node_count, record_size) does not match the file');
  const type = typeof meta.databaseType === 'string' ? meta.databaseType : '';
  if (!types.test(type)) throw invalid(`it is a ${JSON.stringify(type)} database; expected ${expected}`);
  return { reader, ipv4Only: meta.ipVersion === 4, type };
}

/** A normalised address: IPv4 text, or IPv6 text that is not IPv4-mapped. */
interface Address {
  readonly text: string;
  readonly v4: boolean;
}

/** Validates and normalises; null for anything that is not an IP address. mmdb-lib does not validate. */
export function normalizeIp(ip: string): Address | null {
  if (typeof ip !== 'string' || ip.length === 0 || ip.length > MAX_IP_TEXT) return null;
  if (isIPv4(ip)) return { text: ip, v4: true };
  const zone = ip.indexOf('%'); // fe80::1%eth0: the zone names a link, not part of the address (RFC 4007 §11)
  const text = zone < 0 ? ip : ip.slice(0, zone);
  if (!isIPv6(text)) return null;
  if (MAYBE_MAPPED.test(text)) {
    // ::ffff:a.b.c.d: look it up as a.b.c.d, which also works in IPv4-only databases and in trees without
    // MaxMind's ::ffff:0:0/96 alias (spec "IPv4 addresses in an IPv6 tree").
    try {
      const parsed = ipaddr.IPv6.parse(text);
      if (parsed.isIPv4MappedAddress()) return { text: parsed.toIPv4Address().toString(), v4: true };
    } catch {
      return null; // node:net accepted what ipaddr.js does not: treat as not an address
    }
  }
  return { text, v4: false };
}

function get(db: OpenDatabase, addr: Address): GeoRecord | null {
  // An IPv4 tree has no IPv6 space: mmdb-lib would walk the first 32 bits of the IPv6 address and answer wrongly.
  if (db.ipv4Only && !addr.v4) return null;
  try {
    const record: unknown = db.reader.get(addr.text);
    return typeof record === 'object' && record !== null ? (record as GeoRecord) : null;
  } catch {
    return null; // a corrupt data section: no facts rather than a failed flow
  }
}

function countryOf(record: GeoRecord | null): string | undefined {
  if (record === null) return undefined;
  return nonEmpty(record.country?.iso_code) ?? nonEmpty(record.registered_country?.iso_code);
}

function asNumberOf(record: GeoRecord): number | undefined {
  const n = record.autonomous_system_number;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
