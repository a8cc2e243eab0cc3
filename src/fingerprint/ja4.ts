/**
 * JA4 (TLS client) exactly as FoxIO's specification, technical_details/JA4.md in FoxIO-LLC/ja4 (BSD 3-Clause).
 * One set of parts rendered two ways, as the reference Rust code does: `ja4` (hashed) and `ja4_r` (raw).
 *
 *   JA4 = a_b_c, with
 *   a = protocol + version + SNI + cipher count + extension count + ALPN  (e.g. t13d1516h2)
 *   b = sha256 of the sorted cipher list, first 12 hex characters
 *   c = sha256 of the sorted extension list "_" signature algorithms, first 12 hex characters
 */
import * as crypto from 'node:crypto';
import { EXT } from '../parsers/client-hello.js';
import type { ClientHello } from '../parsers/client-hello.js';
import { isGrease16 } from './grease.js';
import { HashMemo } from './hash-memo.js';
import { hex4 } from './hex.js';

export type Ja4Transport = 'tcp' | 'quic' | 'dtls';

export interface Ja4 {
  readonly ja4: string;
  readonly ja4R: string;
}

const HEX_DIGITS = '0123456789abcdef';

/** "If there are no ciphers … JA4_b is set to 000000000000"; same for an empty extension list (JA4_c). */
const EMPTY_HASH = '000000000000';

/**
 * JA4.md "TLS and DTLS Version": "0x0304 = TLS 1.3 = “13” … 0x0300 = SSL 3.0 = “s3”, 0x0002 = SSL 2.0 = “s2”,
 * 0xfeff = DTLS 1.0 = "d1", 0xfefd = DTLS 1.2 = "d2", 0xfefc = DTLS 1.3 = "d3". Unknown = “00”".
 */
export const VERSION_CODES: ReadonlyMap<number, string> = new Map([
  [0x0304, '13'],
  [0x0303, '12'],
  [0x0302, '11'],
  [0x0301, '10'],
  [0x0300, 's3'],
  [0x0002, 's2'],
  [0xfeff, 'd1'],
  [0xfefd, 'd2'],
  [0xfefc, 'd3'],
]);

function isDtlsVersion(v: number): boolean {
  return v >= 0xfe00;
}

/**
 * The version the client offers at most: JA4.md "If extension 0x002b exists (supported_versions), then the
 * version is the highest value in the extension. Remember to ignore GREASE values. If the extension doesn’t
 * exist, then the TLS version is the value of the Protocol Version." DTLS numbers count down (0xfefc is
 * DTLS 1.3, newer than 0xfefd), so for them "highest" is the numerically smallest. A supported_versions
 * with only GREASE in it falls back to legacy_version, as if it were absent.
 */
export function offeredVersion(hello: ClientHello): number {
  const versions = hello.supportedVersions;
  let best = -1;
  if (versions !== null) {
    for (let i = 0; i < versions.length; i++) {
      const v = versions[i] as number;
      if (isGrease16(v)) continue;
      if (best < 0) best = v;
      else if (isDtlsVersion(v) && isDtlsVersion(best)) best = Math.min(best, v);
      else best = Math.max(best, v);
    }
  }
  return best >= 0 ? best : hello.legacyVersion;
}

function isAlphanumeric(byte: number): boolean {
  // JA4.md: alphanumeric means "0x30-0x39, 0x41-0x5A, or 0x61-0x7A".
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

/** The two ALPN characters of JA4_a. ALPN names are Latin-1 strings, so charCodeAt gives the wire byte. */
export function alpnCode(alpn: readonly string[] | null): string {
  // JA4.md: "If there is no ALPN extension, no ALPN values, or the first ALPN value is empty, then we print
  // "00" as the value in the fingerprint."
  const first = alpn?.[0];
  if (first === undefined || first.length === 0) return '00';
  // "If the first ALPN value is only a single character, then that character is treated as both the first
  // and last character." (falls out of first = last below)
  const b0 = first.charCodeAt(0);
  const bN = first.charCodeAt(first.length - 1);
  if (isAlphanumeric(b0) && isAlphanumeric(bN)) return String.fromCharCode(b0, bN);
  // "If the first or last byte of the first ALPN is non-alphanumeric (meaning not 0x30-0x39, 0x41-0x5A, or
  // 0x61-0x7A), then we print the first and last characters of the hex representation of the first ALPN
  // instead." The hex of the value starts with b0's high nibble and ends with bN's low nibble.
  return (HEX_DIGITS[b0 >> 4] as string) + (HEX_DIGITS[bN & 0x0f] as string);
}

/** "2 character number … If there’s > 99, which there should never be, then output “99”." */
function count2(n: number): string {
  return n > 99 ? '99' : n < 10 ? `0${n}` : String(n);
}

/**
 * One-shot `crypto.hash` (Node ≥ 20.12) is twice as fast as createHash().update().digest() on these short
 * strings; fall back for older Node 20 releases.
 */
export const hashHex: (algorithm: 'md5' | 'sha256', data: string) => string =
  typeof crypto.hash === 'function'
    ? (algorithm, data) => crypto.hash(algorithm, data, 'hex')
    : (algorithm, data) => crypto.createHash(algorithm).update(data, 'latin1').digest('hex');

// All inputs are ASCII (hex digits, commas, underscores), so UTF-8 and Latin-1 encodings agree.
const sha256Prefix12Memo = new HashMemo((s) => hashHex('sha256', s).slice(0, 12));

/** The first 12 hex digits of SHA-256 (JA4's b/c parts, JA4S, JA4X), remembered. */
export function sha256Prefix12(s: string): string {
  return sha256Prefix12Memo.get(s);
}

/** MD5 hex of a JA3/JA3S string, remembered (the same TLS stacks come back on nearly every tunnel). */
export const md5Memo = new HashMemo((s) => hashHex('md5', s));

function joinHex(values: Uint16Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out = i === 0 ? hex4(values[i] as number) : `${out},${hex4(values[i] as number)}`;
  return out;
}

function protocolCode(transport: Ja4Transport): string {
  // JA4.md "QUIC and DTLS": "If the protocol is QUIC then the first character of the fingerprint is “q”,
  // if DTLS it is "d", else it is “t”."
  return transport === 'quic' ? 'q' : transport === 'dtls' ? 'd' : 't';
}

/**
 * JA4 and JA4_r of one ClientHello. `transport` is how the hello travelled (this proxy only sees TCP; the
 * parameter exists so a future QUIC reader gets `q` without a second implementation).
 */
export function computeJa4(hello: ClientHello, transport: Ja4Transport = 'tcp'): Ja4 {
  // Ciphers: "ignore GREASE values. They don’t count. Do, however, count other non-cipher values such as
  // SCSV (0x00FF, 0x5600) and Experimental/Reserved values (0xFE00-0xFEFF)."
  const suites = hello.cipherSuites;
  const ciphers = new Uint16Array(suites.length);
  let nCiphers = 0;
  for (let i = 0; i < suites.length; i++) {
    const v = suites[i] as number;
    if (!isGrease16(v)) ciphers[nCiphers++] = v;
  }

  // Extensions: "Same as counting ciphers. Ignore GREASE. Include SNI and ALPN." (for the count), then
  // "Ignore the SNI extension (0000) and the ALPN extension (0010)" (for the hash list).
  const all = hello.extensions;
  const exts = new Uint16Array(all.length);
  let nExtsCounted = 0;
  let nExts = 0;
  let hasSni = false;
  for (let i = 0; i < all.length; i++) {
    const t = (all[i] as { type: number }).type;
    if (isGrease16(t)) continue;
    nExtsCounted++;
    if (t === EXT.serverName) {
      hasSni = true;
      continue;
    }
    if (t === EXT.alpn) continue;
    exts[nExts++] = t;
  }

  // "If the SNI extension (0x0000) exists, then the destination of the connection is a domain, or “d” in
  // the fingerprint. If the SNI does not exist, then the destination is an IP address, or “i”."
  const a =
    protocolCode(transport) +
    (VERSION_CODES.get(offeredVersion(hello)) ?? '00') +
    (hasSni ? 'd' : 'i') +
    count2(nCiphers) +
    count2(nExtsCounted) +
    alpnCode(hello.alpn);

  // "the list of ciphers sorted in hex order … 4 character hex values of the ciphers, lower case, comma
  // delimited". Numeric order of zero-padded 4-digit hex equals their string order.
  const sortedCiphers = ciphers.subarray(0, nCiphers).sort();
  const b = joinHex(sortedCiphers, nCiphers);

  // "The extension list is created using the 4 character hex values of the extensions, lower case, comma
  // delimited, sorted (not in the order they appear)."
  const sortedExts = exts.subarray(0, nExts).sort();
  const extList = joinHex(sortedExts, nExts);

  // "The signature algorithm hex values are then added to the end of the list in the order that they appear
  // (not sorted)". Only the signature_algorithms extension (0x000d) counts — not signature_algorithms_cert
  // (0x0032) nor delegated_credentials — and GREASE is dropped here too ("ignore GREASE values anywhere").
  let sigList = '';
  const sigs = hello.signatureAlgorithms;
  if (sigs !== null) {
    for (let i = 0; i < sigs.length; i++) {
      const v = sigs[i] as number;
      if (isGrease16(v)) continue;
      sigList = sigList === '' ? hex4(v) : `${sigList},${hex4(v)}`;
    }
  }
  // "If there are no signature algorithms in the hello packet, then the string ends without an underscore".
  const c = sigList === '' ? extList : `${extList}_${sigList}`;

  // "If there are no ciphers in the sorted cipher list, then the value of JA4_b is set to 000000000000";
  // "If there are no extensions in the sorted extensions list, then the value of JA4_c is set to 000000000000".
  const bHash = nCiphers === 0 ? EMPTY_HASH : sha256Prefix12(b);
  const cHash = nExts === 0 ? EMPTY_HASH : sha256Prefix12(c);
  return { ja4: `${a}_${bHash}_${cHash}`, ja4R: `${a}_${b}_${c}` };
}
