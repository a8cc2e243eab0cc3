/**
 * Leaf certificates for TLS interception (issue 10, item 2): for each host name a bumped tunnel asks for, a
 * certificate signed by the interception CA (src/net/ca-load.ts), wrapped in a `tls.SecureContext` that the
 * proxy's TLS server hands out from its SNICallback.
 *
 * Cost is what shapes this module (measured by bench/leaf.bench.ts):
 * - one ECDSA P-256 key pair per minter, reused for every name: a key per name would cost a keygen each, and
 *   P-256 handshake signatures are far cheaper than RSA-2048 ones;
 * - the TBSCertificate is assembled with node-forge's `asn1` module (forge has no ECDSA keys, so the leaf's
 *   SubjectPublicKeyInfo is node:crypto's DER, embedded as is) and signed by node:crypto (`sign()`, off the
 *   event loop in libuv's pool) — forge's pure-JS RSA signing takes ~100 ms per leaf;
 * - contexts are kept in an LRU bounded in entries and in time (nothing served past notAfter − expiryMargin),
 *   and concurrent first calls for one name share one mint (single flight); a failed mint is not kept.
 *
 * node-forge is imported by this module (and src/net/ca.ts) only; the proxy imports it lazily, when
 * interception is configured.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import forge from 'node-forge';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6Parts } from './address-class.js';
import { LRUCache } from 'lru-cache';
import { getDomain } from 'tldts';
import { entryBound } from '../enrich/bounded-lru.js';
import { EgressError } from '../errors.js';
import { keyIdentifier, type LoadedCa } from './ca-load.js';

export interface LeafMinterOptions {
  /** Lifetime of a leaf, days (clipped to the CA's notAfter). Default 7. */
  readonly validityDays?: number;
  /** Contexts kept (LRU beyond). Default 1000. */
  readonly cacheSize?: number;
  /** Wall clock, epoch milliseconds; tests pass a fake one. Default Date.now. */
  readonly now?: () => number;
  /** A context is dropped this long before its certificate's notAfter, milliseconds. Default 1 h. */
  readonly expiryMarginMs?: number;
  /**
   * Mint one wildcard leaf per parent domain (`*.example.com` for `a.example.com` and `b.example.com`) instead of
   * one leaf per name (default true). See coverFor.
   */
  readonly wildcards?: boolean;
  /** Extra options for every context (e.g. minVersion, ciphers); key and cert are the minter's. */
  readonly contextOptions?: Omit<SecureContextOptions, 'key' | 'cert'>;
}

/** A host name checked and normalised for a certificate. */
export interface LeafName {
  readonly kind: 'dns' | 'ip';
  /** Lower-case DNS name without a trailing dot, or the IP address in its canonical text form (RFC 5952 for IPv6). */
  readonly name: string;
  /** The iPAddress octets (4 or 16, RFC 5280 §4.2.1.6) when kind is 'ip'. */
  readonly ip: Buffer | null;
}

/** The certificate behind a context: for logs, tests and `openssl verify`. */
export interface LeafCertificate {
  readonly name: LeafName;
  readonly der: Buffer;
  readonly pem: string;
  /** Serial number, lower-case hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface LeafMinterStats {
  /** Leaves minted (successful mints). */
  readonly mints: number;
  /** Calls served by a cached entry, settled or still being minted. */
  readonly hits: number;
  /** Entries in the cache. */
  readonly size: number;
}

export interface LeafMinter {
  /** The context for an SNI host name or IP literal; rejects with EgressError BAD_TARGET for a name no certificate can hold. */
  secureContext(name: string): Promise<SecureContext>;
  /** The context if one is cached and minted, without waiting: lets an SNICallback answer synchronously on a hit. */
  cachedContext(name: string): SecureContext | undefined;
  /** The certificate behind secureContext(name) (same cache entry, same mint). */
  certificate(name: string): Promise<LeafCertificate>;
  stats(): LeafMinterStats;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** RFC 5280 Appendix A (ub-common-name): a commonName holds at most 64 characters; the SAN holds the full name. */
const CN_MAX = 64;
/** RFC 1035 §2.3.4: 255 octets on the wire are 253 characters in text form. */
const DNS_NAME_MAX = 253;

const ASCII_NAME = /^[A-Za-z0-9.-]+$/;
/** RFC 1123 §2.1 LDH label: letters, digits, hyphens, not starting or ending with a hyphen, 1–63 characters. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ALL_DIGITS = /^[0-9]+$/;

function badName(name: string, why: string): EgressError {
  // JSON.stringify escapes control characters: the name comes from the network and ends up in logs.
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  return new EgressError('BAD_TARGET', `cannot make a certificate for ${shown}: ${why}`);
}

/**
 * Checks and normalises a name for a leaf: an IPv4 or IPv6 literal (IPv6 possibly in brackets, without a zone)
 * becomes an iPAddress, anything else must be a DNS name of LDH labels (RFC 1123 §2.1, ≤ 63 characters each,
 * ≤ 253 in all) and becomes a lower-case dNSName. Wildcards, underscores, non-ASCII (callers pass IDNA A-labels,
 * as SNI does, RFC 6066 §3) and an all-numeric last label (dotted numbers that are not an IP, RFC 3696 §2) are
 * refused with EgressError BAD_TARGET.
 */
export function checkLeafName(name: string): LeafName {
  if (typeof name !== 'string' || name.length === 0) throw badName(String(name), 'the name is empty');
  if (name.length > DNS_NAME_MAX + 2) throw badName(name, `longer than ${DNS_NAME_MAX} characters`);
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  const family = isIP(bare);
  if (family !== 0) {
    // A zone (fe80::1%eth0) is local to one host and has no place in a certificate (RFC 4007 §11.2).
    if (bare.includes('%')) throw badName(name, 'an IPv6 zone cannot be put in a certificate');
    if (family === 4) {
      const v4 = parseIPv4(bare);
      if (v4 < 0) throw badName(name, 'an IP address that cannot be read');
      return { kind: 'ip', name: formatIPv4(v4), ip: Buffer.from([v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff]) };
    }
    // Our own IPv6 reader (src/net/address-class.ts): ipaddr.js reads the IPv4-compatible `::a.b.c.d` as the
    // IPv4-mapped `::ffff:a.b.c.d`, another address, and the certificate would not match the client's name.
    const parts = parseIPv6Parts(bare);
    if (parts === null) throw badName(name, 'an IP address that cannot be read');
    const ip = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) ip.writeUInt16BE(parts[i] as number, 2 * i);
    return { kind: 'ip', name: formatIPv6(parts), ip };
  }
  if (bare !== name) throw badName(name, 'brackets hold an IPv6 address only');
  if (name.includes('*')) throw badName(name, 'wildcard names are refused');
  if (!ASCII_NAME.test(name)) throw badName(name, 'a host name has only letters, digits, hyphens and dots (IDNA A-labels for other scripts)');
  const dns = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  if (dns.length === 0 || dns.length > DNS_NAME_MAX) throw badName(name, `a host name has 1 to ${DNS_NAME_MAX} characters`);
  const labels = dns.split('.');
  for (const label of labels) {
    if (!LDH_LABEL.test(label)) throw badName(name, 'each label has 1 to 63 letters, digits or hyphens and neither starts nor ends with a hyphen');
  }
  if (ALL_DIGITS.test(labels[labels.length - 1] ?? '')) throw badName(name, 'dotted numbers that are not an IP address');
  return { kind: 'dns', name: dns, ip: null };
}

// ---- DER assembly (RFC 5280 §4.1), with node-forge's asn1 module ----

const { asn1 } = forge;
const UNIVERSAL = asn1.Class.UNIVERSAL;
const CONTEXT = asn1.Class.CONTEXT_SPECIFIC;
type Asn1 = forge.asn1.Asn1;

const seq = (items: Asn1[]): Asn1 => asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (dotted: string): Asn1 => asn1.create(UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes());
const octets = (bytes: string): Asn1 => asn1.create(UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
/** A context-specific tag [n] (forge types tag numbers as universal ones). */
const tagged = (n: number, constructed: boolean, value: string | Asn1[]): Asn1 => asn1.create(CONTEXT, n as forge.asn1.Type, constructed, value);
const fromDer = (der: Buffer): Asn1 => asn1.fromDer(der.toString('binary'));
const toBinary = (node: Asn1): string => asn1.toDer(node).getBytes();

const OID = {
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecdsaWithSHA512: '1.2.840.10045.4.3.4',
} as const;

/** RFC 5280 §4.1.1.2 / §4.2: Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  if (critical) parts.push(asn1.create(UNIVERSAL, asn1.Type.BOOLEAN, false, '\xff'));
  parts.push(octets(toBinary(value)));
  return seq(parts);
}

interface SignatureScheme {
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly algorithm: Asn1;
}

/** The signature algorithm for the CA's key: RFC 4055 §5 (RSA, NULL parameters) or RFC 5758 §3.2 (ECDSA, no parameters). */
function signatureScheme(key: KeyObject): SignatureScheme {
  if (key.asymmetricKeyType === 'rsa') {
    return { hash: 'sha256', algorithm: seq([oid(OID.sha256WithRSAEncryption), asn1.create(UNIVERSAL, asn1.Type.NULL, false, '')]) };
  }
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  // The hash matches the curve's strength (RFC 5480 §4), as OpenSSL and public CAs do.
  if (curve === 'prime256v1') return { hash: 'sha256', algorithm: seq([oid(OID.ecdsaWithSHA256)]) };
  if (curve === 'secp384r1') return { hash: 'sha384', algorithm: seq([oid(OID.ecdsaWithSHA384)]) };
  if (curve === 'secp521r1') return { hash: 'sha512', algorithm: seq([oid(OID.ecdsaWithSHA512)]) };
  throw new EgressError('CA_INVALID', `TLS interception CA: a ${String(key.asymmetricKeyType)} ${curve ?? ''} key cannot sign leaves; use RSA or ECDSA P-256/P-384/P-521`);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; both in seconds with Z. */
function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function toPem(der: Buffer): string {
  const b64 = der.toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
}

/** The validity of a leaf minted at `now` (seconds resolution, as in the certificate). */
export function leafValidity(now: number, ca: Pick<LoadedCa, 'notBefore' | 'notAfter'>, validityDays: number): { notBefore: Date; notAfter: Date } {
  const floorSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;
  // An hour back for clients whose clocks run slow; never before the CA itself is valid.
  const notBefore = floorSecond(Math.max(now - HOUR_MS, ca.notBefore.getTime()));
  const notAfter = floorSecond(Math.min(now + validityDays * DAY_MS, ca.notAfter.getTime()));
  if (notAfter <= now) {
    throw new EgressError('CA_INVALID', `TLS interception CA expired on ${ca.notAfter.toISOString()}: create a new one with \`egress-inspector ca init --force\` and distribute it`);
  }
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

function signAsync(hash: string, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // With a callback, node:crypto signs in libuv's thread pool: an RSA-2048 signature (~1 ms) leaves the event loop free.
    sign(hash, data, key, (err, signature) => (err ? reject(err) : resolve(signature)));
  });
}

interface Entry {
  readonly context: SecureContext;
  readonly certificate: LeafCertificate;
}

interface Slot {
  readonly entry: Promise<Entry>;
  readonly context: Promise<SecureContext>;
  settled: Entry | undefined;
}

const IGNORE = (): void => undefined;

/** A minter of leaf certificates signed by `ca`, with one ECDSA P-256 leaf key and an LRU of contexts. */
export function createLeafMinter(ca: LoadedCa, opts: LeafMinterOptions = {}): LeafMinter {
  const validityDays = opts.validityDays ?? 7;
  const expiryMarginMs = opts.expiryMarginMs ?? HOUR_MS;
  const now = opts.now ?? Date.now;
  if (!(validityDays > 0) || !Number.isFinite(validityDays)) throw new EgressError('CONFIG_INVALID', `leaf validityDays must be a positive number (got ${String(validityDays)})`);
  if (!(expiryMarginMs >= 0) || expiryMarginMs >= validityDays * DAY_MS) {
    throw new EgressError('CONFIG_INVALID', `leaf expiryMarginMs must be ≥ 0 and shorter than the validity (got ${String(expiryMarginMs)})`);
  }
  const scheme = signatureScheme(ca.key);
  // The chain a leaf is sent with. A root CA (self-signed, as `ca init` makes it) is what the clients trust: it is
  // not sent again (RFC 8446 §4.4.2 and RFC 5246 §7.4.2 allow leaving the root out), which saves parsing its PEM
  // for every new name (~0.75 ms of a ~1.5 ms mint, bench/leaf.bench.ts) and its bytes in every handshake. An
  // intermediate CA (an operator's, signed by their own root) must go with the leaf.
  const caIsRoot = ca.cert.checkIssued(ca.cert) && ca.cert.verify(ca.cert.publicKey);

  const leafKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const leafKeyPem = leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const leafSpki = leafKeys.publicKey.export({ type: 'spki', format: 'der' });

  // The parts every leaf shares, built once.
  const version = tagged(0, true, [asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, '\x02')]); // v3 (§4.1.2.1)
  const issuer = fromDer(ca.subjectDer); // §4.1.2.4: the CA's subject, byte for byte
  const spki = fromDer(leafSpki);
  const shared = {
    // §4.2.1.9: cA FALSE is the DEFAULT, so DER leaves the SEQUENCE empty; critical.
    basicConstraints: extension(OID.basicConstraints, true, seq([])),
    // §4.2.1.3: digitalSignature (bit 0) only — an ECDSA key signs the handshake, it never encrypts; critical.
    keyUsage: extension(OID.keyUsage, true, asn1.create(UNIVERSAL, asn1.Type.BITSTRING, false, '\x07\x80')),
    // §4.2.1.12: id-kp-serverAuth.
    extKeyUsage: extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth)])),
    // §4.2.1.2: the same key in every leaf, so the same identifier.
    subjectKeyIdentifier: extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(leafSpki).toString('binary'))),
    // §4.2.1.1: keyIdentifier [0] = the CA's subjectKeyIdentifier.
    authorityKeyIdentifier: extension(OID.authorityKeyIdentifier, false, seq([tagged(0, false, ca.keyId.toString('binary'))])),
  };

  async function mint(leaf: LeafName, validity: { notBefore: Date; notAfter: Date }): Promise<Entry> {
    // §4.1.2.2: a positive serial of at most 20 octets; 0x40–0x7f first keeps it positive and its DER minimal (126 random bits).
    const serial = randomBytes(16);
    serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
    const cn = leaf.name.slice(0, CN_MAX);
    // §4.2.1.6: dNSName [2] IA5String, iPAddress [7] OCTET STRING of 4 or 16 octets.
    const generalName = leaf.ip === null ? tagged(2, false, leaf.name) : tagged(7, false, leaf.ip.toString('binary'));
    const tbs = seq([
      version,
      asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, serial.toString('binary')),
      scheme.algorithm,
      issuer,
      seq([time(validity.notBefore), time(validity.notAfter)]),
      // §4.1.2.6: subject CN as UTF8String (the name is ASCII here).
      seq([asn1.create(UNIVERSAL, asn1.Type.SET, true, [seq([oid(OID.commonName), asn1.create(UNIVERSAL, asn1.Type.UTF8, false, cn)])])]),
      spki,
      tagged(3, true, [
        seq([
          shared.basicConstraints,
          shared.keyUsage,
          shared.extKeyUsage,
          extension(OID.subjectAltName, false, seq([generalName])),
          shared.subjectKeyIdentifier,
          shared.authorityKeyIdentifier,
        ]),
      ]),
    ]);
    const tbsDer = Buffer.from(toBinary(tbs), 'binary');
    const signature = await signAsync(scheme.hash, tbsDer, ca.key);
    // §4.1.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } (0 unused bits).
    const certNode = seq([tbs, scheme.algorithm, asn1.create(UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${signature.toString('binary')}`)]);
    const der = Buffer.from(toBinary(certNode), 'binary');
    const pem = toPem(der);
    const context = tls.createSecureContext({ ...opts.contextOptions, key: leafKeyPem, cert: caIsRoot ? pem : pem + ca.certPem });
    return {
      context,
      certificate: { name: leaf, der, pem, serial: serial.toString('hex'), notBefore: validity.notBefore, notAfter: validity.notAfter },
    };
  }

  const cache = new LRUCache<string, Slot>({
    ...entryBound(opts.cacheSize ?? 1000),
    ttl: validityDays * DAY_MS - expiryMarginMs,
    // Every lookup reads the (possibly fake) clock: lru-cache would otherwise reuse a reading for up to 1 ms.
    ttlResolution: 0,
    perf: { now },
  });
  let mints = 0;
  let hits = 0;

  function startMint(leaf: LeafName): Slot {
    const t = now();
    const validity = leafValidity(t, ca, validityDays);
    const entry = mint(leaf, validity);
    const slot: Slot = { entry, context: entry.then((e) => e.context), settled: undefined };
    void slot.context.catch(IGNORE); // callers of certificate() alone must not leave it unhandled
    void entry.then(
      (e) => {
        slot.settled = e;
        mints++;
      },
      () => {
        // A failed mint is not kept: the next call tries again.
        if (cache.peek(leaf.name) === slot) cache.delete(leaf.name);
      },
    );
    // Nothing is served past notAfter − margin (in a CA's last hour that is no time at all: then each call mints).
    cache.set(leaf.name, slot, { ttl: Math.max(1, validity.notAfter.getTime() - expiryMarginMs - t) });
    return slot;
  }

  /** The slot for `name`: cached under the name as given (normalised names hit without a check), else checked. */
  function slotFor(name: string): Slot {
    const raw = cache.get(name);
    if (raw !== undefined) {
      hits++;
      return raw;
    }
    const leaf = opts.wildcards === false ? checkLeafName(name) : coverFor(checkLeafName(name));
    if (leaf.name !== name) {
      const normal = cache.get(leaf.name);
      if (normal !== undefined) {
        hits++;
        return normal;
      }
    }
    return startMint(leaf);
  }

  return {
    secureContext(name) {
      try {
        return slotFor(name).context;
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    cachedContext(name) {
      let slot = cache.get(name);
      if (slot === undefined && opts.wildcards !== false) {
        try {
          slot = cache.get(coverFor(checkLeafName(name)).name);
        } catch {
          return undefined;
        }
      }
      if (slot?.settled === undefined) return undefined;
      hits++;
      return slot.settled.context;
    },
    async certificate(name) {
      return (await slotFor(name).entry).certificate;
    },
    stats() {
      return { mints, hits, size: cache.size };
    },
  };
}

/**
 * The certificate name that covers `leaf`: `*.parent` for a host name with a label below its registrable domain
 * (public suffix list, tldts), else the name itself. One leaf then serves every name under that parent, as
 * certificates of real sites do (RFC 6125 §6.4.3: the wildcard stands for exactly one left-most label), so a
 * client that opens `a.cdn.example` and then `b.cdn.example` pays for one mint. Each mint costs ~1 ms of CPU, most
 * of it OpenSSL 3 decoding the key and certificate PEM into a new SSL_CTX (`tls.createSecureContext`: ~0.8 ms,
 * measured), which no public API lets us skip; fewer mints is the lever. A wildcard over a public suffix
 * (`*.co.uk`, `*.github.io`) is never made: clients refuse it, and it would stand for other owners' sites.
 */
export function coverFor(leaf: LeafName): LeafName {
  if (leaf.kind !== 'dns') return leaf;
  const dot = leaf.name.indexOf('.');
  if (dot <= 0) return leaf;
  const parent = leaf.name.slice(dot + 1);
  const registered = getDomain(leaf.name, WILDCARD_PSL);
  if (registered === null || !(parent === registered || parent.endsWith(`.${registered}`))) return leaf;
  return { kind: 'dns', name: `*.${parent}`, ip: null };
}

/** Public suffix list with the private section (github.io, …): a wildcard never covers another owner's names. */
const WILDCARD_PSL = { allowPrivateDomains: true, extractHostname: false, validateHostname: false, detectIp: false, mixedInputs: false } as const;
