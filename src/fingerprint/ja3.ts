/**
 * JA3 (Salesforce, https://github.com/salesforce/ja3): the decimal fields
 *   SSLVersion,Cipher,SSLExtension,EllipticCurve,EllipticCurvePointFormat
 * with values inside a field joined by "-", fields joined by ",", and the MD5 of that string.
 * "SSLVersion" is the ClientHello legacy_version (not supported_versions), every list is in wire order,
 * and GREASE values (RFC 8701) are dropped from every list, as the reference ja3.py does.
 */
import type { ClientHello } from '../parsers/client-hello.js';
import { isGrease16 } from './grease.js';
import { md5Memo } from './ja4.js';

export interface Ja3 {
  /** The JA3 string before hashing, e.g. `771,4865-4866-…,0-23-…,29-23-24,0`. */
  readonly ja3Full: string;
  /** Lower-case MD5 hex of `ja3Full`. */
  readonly ja3: string;
}

/** Values joined by "-" in decimal, GREASE dropped. */
function joinDecimal(values: readonly number[] | null): string {
  if (values === null) return '';
  let out = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (isGrease16(v)) continue;
    out = out === '' ? String(v) : `${out}-${v}`;
  }
  return out;
}

function joinExtensionTypes(hello: ClientHello): string {
  let out = '';
  const exts = hello.extensions;
  for (let i = 0; i < exts.length; i++) {
    const t = (exts[i] as { type: number }).type;
    if (isGrease16(t)) continue;
    out = out === '' ? String(t) : `${out}-${t}`;
  }
  return out;
}

/** The JA3 string alone (no hashing). */
export function formatJa3(hello: ClientHello): string {
  return `${hello.legacyVersion},${joinDecimal(hello.cipherSuites)},${joinExtensionTypes(hello)},${joinDecimal(
    hello.supportedGroups,
  )},${joinDecimal(hello.ecPointFormats)}`;
}

export function computeJa3(hello: ClientHello): Ja3 {
  const ja3Full = formatJa3(hello);
  // MD5 is what the JA3 definition specifies; it is an identifier here, not a security control.
  // ja3Full is ASCII (digits, "-" and ","), so the string encoding the hash uses does not matter.
  return { ja3Full, ja3: md5Memo.get(ja3Full) };
}
