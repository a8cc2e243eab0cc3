/**
 * One X.509 certificate (RFC 5280) as the facts a C2 detector needs: the issuer and subject attribute OIDs
 * in wire order and the extension OIDs in order (for JA4X), names, alternative names, validity, serial, hash,
 * and whether it is self-signed.
 *
 * Two readers, each for what it is good at:
 * - a minimal, strict DER walker (ours, below) for the *structure*: it visits a fixed path through the
 *   certificate (no recursion into unknown content), accepts only definite, minimal lengths (X.690 §10.1)
 *   and single-byte tags, and names the field and offset of anything wrong. Names, alternative names, dates
 *   and the serial come from here because Node's `X509Certificate` only offers display strings whose quoting
 *   changed between releases (subjectAltName quoting, CVE-2021-44532), which makes them poor match keys;
 * - `node:crypto` `X509Certificate` (OpenSSL) for what needs real crypto: that OpenSSL accepts the
 *   certificate at all, the self-signature check, and the public key's type, size and curve.
 *
 * Untrusted input: the walker never allocates by a declared length (every length must fit in the bytes
 * given), and every loop advances through the input, so time and memory are linear in the input size.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { Cursor, ParseError, isParseError } from './cursor.js';
import { formatIPv6Bytes } from '../net/address-class.js';

// ---------------------------------------------------------------------------------------------------------
// DER (ITU-T X.690 §8 and §10).

const TAG_BOOLEAN = 0x01;
const TAG_INTEGER = 0x02;
const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_UTF8_STRING = 0x0c;
const TAG_NUMERIC_STRING = 0x12;
const TAG_PRINTABLE_STRING = 0x13;
const TAG_TELETEX_STRING = 0x14;
const TAG_IA5_STRING = 0x16;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_VISIBLE_STRING = 0x1a;
const TAG_UNIVERSAL_STRING = 0x1c;
const TAG_BMP_STRING = 0x1e;
const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
/** RFC 5280 §4.1: version [0] EXPLICIT, issuerUniqueID [1] IMPLICIT, subjectUniqueID [2] IMPLICIT, extensions [3] EXPLICIT. */
const TAG_CTX0_CONSTRUCTED = 0xa0;
const TAG_CTX1_PRIMITIVE = 0x81;
const TAG_CTX2_PRIMITIVE = 0x82;
const TAG_CTX3_CONSTRUCTED = 0xa3;

/** Certificates beyond this are refused: the largest real ones (many SANs) are ~100 KiB; TLS caps a chain at 64 KiB here. */
export const MAX_CERTIFICATE_BYTES = 256 * 1024;

interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly at: number;
  /** A final cursor over the contents. */
  readonly body: Cursor;
}

/** Reads one DER TLV. X.690 §10.1: definite length, minimal encoding; §8.1.2.4 high tag numbers are refused. */
function readTlv(c: Cursor, field: string): Tlv {
  const at = c.offset;
  const tag = c.u8(`${field}.tag`);
  if ((tag & 0x1f) === 0x1f) throw c.invalid(`${field}.tag`, 'multi-byte tag numbers do not occur in X.509', at);
  const lengthAt = c.offset;
  const first = c.u8(`${field}.length`);
  let length = first;
  if (first === 0x80) throw c.invalid(`${field}.length`, 'indefinite length is not DER (X.690 §10.1)', lengthAt);
  if (first > 0x80) {
    const n = first & 0x7f;
    if (n > 4) throw c.invalid(`${field}.length`, `${n}-byte length field`, lengthAt);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + c.u8(`${field}.length`);
    // X.690 §10.1: "the length shall be encoded in the minimum number of octets".
    if (length < 0x80 || length < 2 ** (8 * (n - 1))) throw c.invalid(`${field}.length`, 'non-minimal length encoding', lengthAt);
  }
  return { tag, at, body: c.sub(length, field) };
}

function expectTlv(c: Cursor, tag: number, field: string): Tlv {
  const t = readTlv(c, field);
  if (t.tag !== tag) throw c.invalid(`${field}.tag`, `expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`, t.at);
  return t;
}

function peekTag(c: Cursor): number {
  return c.isAtEnd ? -1 : (c.bytes[c.offset] as number);
}

function rest(c: Cursor, field: string): Uint8Array {
  return c.take(c.remaining, field);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hexOf(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i] as number] as string;
  return s;
}

/** X.690 §8.19: an OBJECT IDENTIFIER's contents as dotted decimal. Strict: minimal sub-identifiers. */
function decodeOid(t: Tlv, field: string): string {
  const c = t.body;
  if (c.isAtEnd) throw c.invalid(field, 'empty object identifier', t.at);
  const arcs: number[] = [];
  let value = 0;
  let startOfArc = true;
  while (!c.isAtEnd) {
    const at = c.offset;
    const b = c.u8(field);
    // §8.19.2: "the leading octet of the subidentifier shall not have the value 0x80".
    if (startOfArc && b === 0x80) throw c.invalid(field, 'non-minimal sub-identifier', at);
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw c.invalid(field, 'sub-identifier too large', at);
    startOfArc = (b & 0x80) === 0;
    if (startOfArc) {
      if (arcs.length === 0) {
        // §8.19.4: the first sub-identifier packs the first two arcs as 40·X + Y (X ≤ 2).
        if (value < 80) arcs.push(Math.floor(value / 40), value % 40);
        else arcs.push(2, value - 80);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  if (!startOfArc) throw c.invalid(field, 'object identifier ends inside a sub-identifier', c.offset - 1);
  return arcs.join('.');
}

const UTF8 = new TextDecoder('utf-8');

/** The text of a directory string (RFC 5280 §4.1.2.4 DirectoryString and the IA5/Printable attribute types), or null. */
function decodeString(tag: number, bytes: Uint8Array): string | null {
  switch (tag) {
    case TAG_UTF8_STRING:
      return UTF8.decode(bytes);
    case TAG_PRINTABLE_STRING:
    case TAG_IA5_STRING:
    case TAG_NUMERIC_STRING:
    case TAG_VISIBLE_STRING:
    case TAG_TELETEX_STRING: {
      // TeletexString (T.61) is read as Latin-1, as OpenSSL does; the others are ASCII subsets.
      let s = '';
      for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i] as number);
      return s;
    }
    case TAG_BMP_STRING: {
      // UTF-16BE by hand: TextDecoder('utf-16be') needs full ICU, which not every Node build has.
      if ((bytes.length & 1) !== 0) return null;
      let s = '';
      for (let i = 0; i < bytes.length; i += 2) s += String.fromCharCode(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
      return s;
    }
    case TAG_UNIVERSAL_STRING: {
      if ((bytes.length & 3) !== 0) return null;
      let s = '';
      for (let i = 0; i < bytes.length; i += 4) {
        const cp = (((bytes[i] as number) << 24) | ((bytes[i + 1] as number) << 16) | ((bytes[i + 2] as number) << 8) | (bytes[i + 3] as number)) >>> 0;
        s += cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : '\ufffd';
      }
      return s;
    }
    default:
      return null;
  }
}

const DIGITS = /^\d+$/;

/** RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY ≥ 50 → 19YY) or GeneralizedTime YYYYMMDDHHMMSSZ, in ms since the epoch. */
function decodeTime(t: Tlv, field: string): number {
  const text = decodeString(TAG_IA5_STRING, rest(t.body, field));
  const s = text ?? '';
  let year: number;
  let tail: string;
  if (t.tag === TAG_UTC_TIME) {
    // §4.1.2.5.1 requires seconds; older certificates omit them (X.680 allows YYMMDDHHMMZ): accepted.
    if (!(s.length === 13 || s.length === 11) || !s.endsWith('Z')) throw new ParseError('invalid', t.at, field, `bad UTCTime "${s}"`);
    const yy = Number(s.slice(0, 2));
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    tail = s.slice(2, -1);
  } else if (t.tag === TAG_GENERALIZED_TIME) {
    // §4.1.2.5.2: YYYYMMDDHHMMSSZ, no fractional seconds.
    if (s.length !== 15 || !s.endsWith('Z')) throw new ParseError('invalid', t.at, field, `bad GeneralizedTime "${s}"`);
    year = Number(s.slice(0, 4));
    tail = s.slice(4, -1);
  } else {
    throw new ParseError('invalid', t.at, field, `expected UTCTime or GeneralizedTime, got tag 0x${t.tag.toString(16)}`);
  }
  const digits = s.slice(0, -1);
  if (!DIGITS.test(digits)) throw new ParseError('invalid', t.at, field, `non-digit in time "${s}"`);
  const month = Number(tail.slice(0, 2));
  const day = Number(tail.slice(2, 4));
  const hour = Number(tail.slice(4, 6));
  const minute = Number(tail.slice(6, 8));
  const second = tail.length >= 10 ? Number(tail.slice(8, 10)) : 0;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  // Date.UTC rolls 31 February into March: a round trip through the parts catches impossible dates.
  if (
    month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59 ||
    d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day
  ) {
    throw new ParseError('invalid', t.at, field, `impossible date "${s}"`);
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------------------
// The certificate structure.

export interface X509Attribute {
  /** Dotted decimal, e.g. `2.5.4.3`. */
  readonly oid: string;
  /** Lower-case hex of the OID's DER contents (no tag, no length), e.g. `550403`: what JA4X hashes. */
  readonly oidHex: string;
  /** The value's text for string types; null for other types (then `valueDer` is all there is). */
  readonly value: string | null;
  /** The value's whole DER TLV. */
  readonly valueDer: Uint8Array;
  /** Index of the RelativeDistinguishedName (SET) this attribute sits in: two attributes of one RDN share it. */
  readonly rdn: number;
}

export interface X509Extension {
  readonly oid: string;
  readonly oidHex: string;
  readonly critical: boolean;
  /** extnValue's contents (the DER of the extension's own value). */
  readonly value: Uint8Array;
}

export interface X509Structure {
  /** 1, 2 or 3 (RFC 5280 §4.1.2.1: the encoded value plus one). */
  readonly version: number;
  /** The serial INTEGER's contents (two's complement, big-endian). */
  readonly serialNumber: Uint8Array;
  /** signatureAlgorithm of the outer Certificate (RFC 5280 §4.1.1.2), dotted decimal. */
  readonly signatureAlgorithmOid: string;
  readonly issuer: readonly X509Attribute[];
  readonly subject: readonly X509Attribute[];
  /** The whole DER of the issuer and subject Names (for byte-exact comparison). */
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  /** Validity, ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** subjectPublicKeyInfo.algorithm, dotted decimal (e.g. 1.2.840.10045.2.1 for EC). */
  readonly publicKeyAlgorithmOid: string;
  /** Extensions in wire order (empty for v1/v2 certificates). */
  readonly extensions: readonly X509Extension[];
}

/** RFC 5280 §4.1.2.4: Name ::= SEQUENCE OF RelativeDistinguishedName; RDN ::= SET SIZE (1..MAX) OF AttributeTypeAndValue. */
function readName(c: Cursor, field: string): { attributes: X509Attribute[]; der: Uint8Array } {
  const start = c.offset;
  const name = expectTlv(c, TAG_SEQUENCE, field);
  const der = c.bytes.subarray(start, c.offset);
  const attributes: X509Attribute[] = [];
  let rdn = 0;
  while (!name.body.isAtEnd) {
    const set = expectTlv(name.body, TAG_SET, `${field}.rdn`);
    if (set.body.isAtEnd) throw set.body.invalid(`${field}.rdn`, 'empty RelativeDistinguishedName', set.at);
    while (!set.body.isAtEnd) {
      // AttributeTypeAndValue ::= SEQUENCE { type AttributeType (OID), value ANY -- DEFINED BY type }
      const atv = expectTlv(set.body, TAG_SEQUENCE, `${field}.attribute`);
      const oidTlv = expectTlv(atv.body, TAG_OID, `${field}.attribute.type`);
      const oidBytes = oidTlv.body.bytes.subarray(oidTlv.body.offset, oidTlv.body.offset + oidTlv.body.remaining);
      const oid = decodeOid(oidTlv, `${field}.attribute.type`);
      const valueStart = atv.body.offset;
      const value = readTlv(atv.body, `${field}.attribute.value`);
      atv.body.expectEnd(`${field}.attribute`);
      attributes.push({
        oid,
        oidHex: hexOf(oidBytes),
        value: decodeString(value.tag, value.body.bytes.subarray(value.body.offset, value.body.offset + value.body.remaining)),
        valueDer: atv.body.bytes.subarray(valueStart, atv.body.offset),
        rdn,
      });
    }
    rdn++;
  }
  return { attributes, der };
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL } (RFC 5280 §4.1.1.2). */
function readAlgorithm(c: Cursor, field: string): string {
  const seq = expectTlv(c, TAG_SEQUENCE, field);
  const oid = decodeOid(expectTlv(seq.body, TAG_OID, `${field}.algorithm`), `${field}.algorithm`);
  if (!seq.body.isAtEnd) readTlv(seq.body, `${field}.parameters`);
  seq.body.expectEnd(field);
  return oid;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1.2.9, §4.2). */
function readExtensions(c: Cursor): X509Extension[] {
  const seq = expectTlv(c, TAG_SEQUENCE, 'extensions');
  const out: X509Extension[] = [];
  const seen = new Set<string>();
  while (!seq.body.isAtEnd) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const ext = expectTlv(seq.body, TAG_SEQUENCE, 'extension');
    const oidTlv = expectTlv(ext.body, TAG_OID, 'extension.extnID');
    const oidHex = hexOf(oidTlv.body.bytes.subarray(oidTlv.body.offset, oidTlv.body.offset + oidTlv.body.remaining));
    const oid = decodeOid(oidTlv, 'extension.extnID');
    let critical = false;
    if (peekTag(ext.body) === TAG_BOOLEAN) {
      const b = expectTlv(ext.body, TAG_BOOLEAN, 'extension.critical');
      if (b.body.remaining !== 1) throw b.body.invalid('extension.critical', 'BOOLEAN must be one byte', b.at);
      critical = b.body.u8('extension.critical') !== 0;
    }
    const value = expectTlv(ext.body, TAG_OCTET_STRING, 'extension.extnValue');
    ext.body.expectEnd('extension');
    // RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular extension."
    if (seen.has(oidHex)) throw ext.body.invalid('extension.extnID', `duplicate extension ${oid}`, ext.at);
    seen.add(oidHex);
    out.push({ oid, oidHex, critical, value: rest(value.body, 'extension.extnValue') });
  }
  return out;
}

/**
 * Walks one DER certificate. Throws `ParseError` (always `invalid`) naming the field and the offset in `der`.
 *
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }   (RFC 5280 §4.1)
 */
export function parseX509(der: Uint8Array): X509Structure {
  if (der.length > MAX_CERTIFICATE_BYTES) {
    throw new ParseError('invalid', 0, 'certificate', `${der.length} bytes exceed the ${MAX_CERTIFICATE_BYTES}-byte cap`);
  }
  const top = new Cursor(der, 0, der.length, true);
  const cert = expectTlv(top, TAG_SEQUENCE, 'certificate');
  top.expectEnd('certificate');
  const tbs = expectTlv(cert.body, TAG_SEQUENCE, 'tbs_certificate');
  const t = tbs.body;
  let version = 1;
  if (peekTag(t) === TAG_CTX0_CONSTRUCTED) {
    // version [0] EXPLICIT Version DEFAULT v1; Version ::= INTEGER { v1(0), v2(1), v3(2) }.
    const wrapper = expectTlv(t, TAG_CTX0_CONSTRUCTED, 'version');
    const v = expectTlv(wrapper.body, TAG_INTEGER, 'version');
    wrapper.body.expectEnd('version');
    if (v.body.remaining !== 1) throw v.body.invalid('version', 'version must be one byte', v.at);
    const n = v.body.u8('version');
    if (n > 2) throw v.body.invalid('version', `unknown version ${n}`, v.at);
    version = n + 1;
  }
  const serial = expectTlv(t, TAG_INTEGER, 'serial_number');
  if (serial.body.isAtEnd) throw serial.body.invalid('serial_number', 'empty INTEGER', serial.at);
  const serialNumber = rest(serial.body, 'serial_number');
  readAlgorithm(t, 'signature');
  const issuer = readName(t, 'issuer');
  const validity = expectTlv(t, TAG_SEQUENCE, 'validity');
  const notBefore = decodeTime(readTlv(validity.body, 'validity.not_before'), 'validity.not_before');
  const notAfter = decodeTime(readTlv(validity.body, 'validity.not_after'), 'validity.not_after');
  validity.body.expectEnd('validity');
  const subject = readName(t, 'subject');
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const spki = expectTlv(t, TAG_SEQUENCE, 'subject_public_key_info');
  const publicKeyAlgorithmOid = readAlgorithm(spki.body, 'subject_public_key_info.algorithm');
  expectTlv(spki.body, TAG_BIT_STRING, 'subject_public_key_info.subject_public_key');
  spki.body.expectEnd('subject_public_key_info');
  if (peekTag(t) === TAG_CTX1_PRIMITIVE) readTlv(t, 'issuer_unique_id');
  if (peekTag(t) === TAG_CTX2_PRIMITIVE) readTlv(t, 'subject_unique_id');
  let extensions: X509Extension[] = [];
  if (peekTag(t) === TAG_CTX3_CONSTRUCTED) {
    const wrapper = expectTlv(t, TAG_CTX3_CONSTRUCTED, 'extensions');
    extensions = readExtensions(wrapper.body);
    wrapper.body.expectEnd('extensions');
  }
  t.expectEnd('tbs_certificate');
  const signatureAlgorithmOid = readAlgorithm(cert.body, 'signature_algorithm');
  expectTlv(cert.body, TAG_BIT_STRING, 'signature_value');
  cert.body.expectEnd('certificate');
  return {
    version,
    serialNumber,
    signatureAlgorithmOid,
    issuer: issuer.attributes,
    subject: subject.attributes,
    issuerDer: issuer.der,
    subjectDer: subject.der,
    notBefore,
    notAfter,
    publicKeyAlgorithmOid,
    extensions,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Facts for people and policies.

/** OpenSSL's short names (crypto/objects/objects.txt) for the attributes seen in server certificates. */
const ATTRIBUTE_SHORT_NAMES: ReadonlyMap<string, string> = new Map([
  ['2.5.4.3', 'CN'],
  ['2.5.4.4', 'SN'],
  ['2.5.4.5', 'serialNumber'],
  ['2.5.4.6', 'C'],
  ['2.5.4.7', 'L'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.9', 'street'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.12', 'title'],
  ['2.5.4.15', 'businessCategory'],
  ['2.5.4.17', 'postalCode'],
  ['2.5.4.42', 'GN'],
  ['2.5.4.97', 'organizationIdentifier'],
  ['1.2.840.113549.1.9.1', 'emailAddress'],
  ['0.9.2342.19200300.100.1.1', 'UID'],
  ['0.9.2342.19200300.100.1.25', 'DC'],
  ['1.3.6.1.4.1.311.60.2.1.1', 'jurisdictionL'],
  ['1.3.6.1.4.1.311.60.2.1.2', 'jurisdictionST'],
  ['1.3.6.1.4.1.311.60.2.1.3', 'jurisdictionC'],
]);

const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

/** RFC 4514 §2.4: characters escaped with a backslash in an attribute value. */
const DN_SPECIAL = /[,+"\\<>;]/g;

function escapeDnValue(v: string): string {
  let s = v.replace(DN_SPECIAL, (ch) => `\\${ch}`);
  if (s.startsWith('#') || s.startsWith(' ')) s = `\\${s}`;
  if (s.endsWith(' ') && s.length > 1) s = `${s.slice(0, -1)}\\ `;
  return s;
}

/**
 * A distinguished name in wire order (most general first, as `openssl x509 -nameopt sep_comma_plus_space,sname`
 * and ECS examples show it), e.g. `C=US, O=Example, CN=www.example.com`; attributes of one multi-valued RDN
 * joined with ` + `. Values escaped as RFC 4514 §2.4; non-string values as `#` + hex of their DER (§2.4).
 * Note: RFC 4514's own string order is the reverse (most specific first).
 */
export function formatDistinguishedName(attributes: readonly X509Attribute[]): string {
  let out = '';
  let lastRdn = -1;
  for (const a of attributes) {
    const name = ATTRIBUTE_SHORT_NAMES.get(a.oid) ?? a.oid;
    const value = a.value === null ? `#${hexOf(a.valueDer)}` : escapeDnValue(a.value);
    if (out !== '') out += a.rdn === lastRdn ? ' + ' : ', ';
    out += `${name}=${value}`;
    lastRdn = a.rdn;
  }
  return out;
}

/** The last value of an attribute (the most specific one in wire order), or null. */
export function attributeValue(attributes: readonly X509Attribute[], oid: string): string | null {
  for (let i = attributes.length - 1; i >= 0; i--) {
    const a = attributes[i] as X509Attribute;
    if (a.oid === oid) return a.value;
  }
  return null;
}

/**
 * subjectAltName (RFC 5280 §4.2.1.6) names: dNSName, iPAddress (dotted / RFC 5952 text), rfc822Name and
 * uniformResourceIdentifier, in wire order; other GeneralName forms are skipped. [] without the extension.
 * Throws `ParseError` when the extension is malformed (offsets relative to the extension value).
 */
export function subjectAltNames(cert: X509Structure): string[] {
  const ext = cert.extensions.find((e) => e.oid === OID_SUBJECT_ALT_NAME);
  if (ext === undefined) return [];
  const c = new Cursor(ext.value, 0, ext.value.length, true);
  // GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName
  const seq = expectTlv(c, TAG_SEQUENCE, 'subject_alt_name');
  c.expectEnd('subject_alt_name');
  const out: string[] = [];
  while (!seq.body.isAtEnd) {
    const gn = readTlv(seq.body, 'subject_alt_name.general_name');
    const bytes = rest(gn.body, 'subject_alt_name.general_name');
    switch (gn.tag) {
      case 0x81: // [1] rfc822Name IA5String
      case 0x82: // [2] dNSName IA5String
      case 0x86: // [6] uniformResourceIdentifier IA5String
        out.push(decodeString(TAG_IA5_STRING, bytes) ?? '');
        break;
      case 0x87: // [7] iPAddress OCTET STRING: 4 or 16 bytes (§4.2.1.6)
        if (bytes.length === 4) out.push(`${bytes[0] as number}.${bytes[1] as number}.${bytes[2] as number}.${bytes[3] as number}`);
        else if (bytes.length === 16) out.push(formatIPv6Bytes(bytes, 0));
        else throw new ParseError('invalid', gn.at, 'subject_alt_name.ip_address', `${bytes.length}-byte address`);
        break;
      default:
        break;
    }
  }
  return out;
}

/** Hex (upper case) of the serial as `openssl x509 -serial` prints it: the sign-padding 0x00 byte dropped. */
export function formatSerialNumber(serial: Uint8Array): string {
  const start = serial.length > 1 && serial[0] === 0 ? 1 : 0;
  return hexOf(serial.subarray(start)).toUpperCase();
}

export interface CertificateFacts {
  readonly structure: X509Structure;
  readonly subjectCommonName: string | null;
  readonly issuerCommonName: string | null;
  readonly subjectOrganization: string | null;
  readonly issuerOrganization: string | null;
  readonly subjectDistinguishedName: string;
  readonly issuerDistinguishedName: string;
  readonly alternativeNames: readonly string[];
  /** ISO 8601 (UTC). */
  readonly notBefore: string;
  readonly notAfter: string;
  /** Upper-case hex, as `openssl x509 -serial`. */
  readonly serialNumber: string;
  /** SHA-256 of the DER, upper-case hex without separators. */
  readonly sha256: string;
  /** Issuer and subject Names are byte-identical and the signature verifies with the certificate's own key. */
  readonly selfSigned: boolean;
  /** Node's key type (`rsa`, `ec`, `ed25519`, …), null when OpenSSL cannot load the key. */
  readonly publicKeyAlgorithm: string | null;
  /** RSA/DSA modulus bits; null otherwise. */
  readonly publicKeySize: number | null;
  /** EC named curve (`prime256v1`, …); null otherwise. */
  readonly publicKeyCurve: string | null;
  readonly signatureAlgorithmOid: string;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Every fact of one DER certificate. Throws `ParseError` when our walker or OpenSSL refuses it (an
 * OpenSSL refusal is reported at offset 0, field `certificate`).
 */
export function describeCertificate(der: Uint8Array): CertificateFacts {
  const structure = parseX509(der);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (err) {
    throw new ParseError('invalid', 0, 'certificate', `OpenSSL refused it: ${err instanceof Error ? err.message : String(err)}`);
  }
  let alternativeNames: string[];
  try {
    alternativeNames = subjectAltNames(structure);
  } catch (err) {
    if (!isParseError(err)) throw err;
    throw new ParseError('invalid', 0, err.field, `in subjectAltName at offset ${err.offset}: ${err.reason}`);
  }
  let publicKeyAlgorithm: string | null = null;
  let publicKeySize: number | null = null;
  let publicKeyCurve: string | null = null;
  let selfSigned = false;
  try {
    const key = x509.publicKey;
    publicKeyAlgorithm = key.asymmetricKeyType ?? null;
    publicKeySize = key.asymmetricKeyDetails?.modulusLength ?? null;
    publicKeyCurve = key.asymmetricKeyDetails?.namedCurve ?? null;
    // Only a certificate naming itself as issuer can be self-signed; the verify costs ~50 µs (RSA) so it
    // runs only then.
    selfSigned = sameBytes(structure.issuerDer, structure.subjectDer) && x509.verify(key);
  } catch {
    // An unsupported key or signature algorithm: the facts above stay unknown, not an error.
  }
  return {
    structure,
    subjectCommonName: attributeValue(structure.subject, OID_COMMON_NAME),
    issuerCommonName: attributeValue(structure.issuer, OID_COMMON_NAME),
    subjectOrganization: attributeValue(structure.subject, OID_ORGANIZATION),
    issuerOrganization: attributeValue(structure.issuer, OID_ORGANIZATION),
    subjectDistinguishedName: formatDistinguishedName(structure.subject),
    issuerDistinguishedName: formatDistinguishedName(structure.issuer),
    alternativeNames,
    notBefore: new Date(structure.notBefore).toISOString(),
    notAfter: new Date(structure.notAfter).toISOString(),
    serialNumber: formatSerialNumber(structure.serialNumber),
    sha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
    selfSigned,
    publicKeyAlgorithm,
    publicKeySize,
    publicKeyCurve,
    signatureAlgorithmOid: structure.signatureAlgorithmOid,
  };
}
