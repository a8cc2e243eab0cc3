/**
 * JA3S (Salesforce, https://github.com/salesforce/ja3, BSD 3-Clause, README "JA3S"): the decimal fields
 *   SSLVersion,Cipher,SSLExtension
 * of the ServerHello, extension types joined by "-" in wire order, and the MD5 of that string.
 *
 * As the reference implementations do (python/ja3s.py and zeek/ja3s.zeek in salesforce/ja3):
 * - SSLVersion is the ServerHello's legacy_version (771 for TLS 1.3 too; supported_versions is not read);
 * - GREASE values are NOT dropped: neither reference filters them on the server side (a server never
 *   chooses a GREASE value, RFC 8701 §3, so this only matters for broken or hostile servers);
 * - a hello without extensions keeps the trailing comma (`771,49199,`): ja3s.py appends an empty field.
 */
import type { ServerHello } from '../parsers/server-hello.js';
import { md5Memo } from './ja4.js';

export interface Ja3s {
  /** The JA3S string before hashing, e.g. `771,4865,43-51`. */
  readonly ja3sFull: string;
  /** Lower-case MD5 hex of `ja3sFull`. */
  readonly ja3s: string;
}

/** The JA3S string alone (no hashing). */
export function formatJa3s(hello: ServerHello): string {
  let exts = '';
  const all = hello.extensions;
  for (let i = 0; i < all.length; i++) {
    const t = (all[i] as { type: number }).type;
    exts = i === 0 ? String(t) : `${exts}-${t}`;
  }
  return `${hello.legacyVersion},${hello.cipherSuite},${exts}`;
}

export function computeJa3s(hello: ServerHello): Ja3s {
  const ja3sFull = formatJa3s(hello);
  // MD5 is what JA3S specifies; it is an identifier here, not a security control.
  return { ja3sFull, ja3s: md5Memo.get(ja3sFull) };
}
