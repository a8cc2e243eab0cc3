/**
 * JA4S (TLS server response fingerprint) from FoxIO's specification: technical_details/JA4S.png in
 * FoxIO-LLC/ja4 (commit 0e54bc8). Where the one-page spec is silent we follow FoxIO's reference code
 * (python/ja4.py `to_ja4s`, rust/ja4/src/tls.rs `ServerStats`) and say so at the line.
 *
 * LICENCE: JA4S is part of JA4+, "licenced under the FoxIO License 1.1" and "Patent Pending" (FoxIO's
 * headers). That licence allows non-commercial use only; commercial use needs an OEM licence from FoxIO.
 * This file is our own code written from the spec, but the method is theirs. See
 * test/fixtures/vectors/ja4-foxio/README.md ("License") before shipping a product that computes it.
 *
 *   JA4S = a_b_c                                            e.g. t130200_1301_234ea6891581
 *   a = protocol (t|q) + version (2) + extension count (2) + ALPN chosen (2, "00" if none)
 *   b = the chosen cipher suite, 4 hex digits
 *   c = sha256 of the extension types, 4-hex, comma joined, IN WIRE ORDER (not sorted), first 12 hex
 *   ja4s_r = a_b_<the extension list itself>
 */
import type { ServerHello } from '../parsers/server-hello.js';
import { negotiatedVersion } from '../parsers/server-hello.js';
import { alpnCode, sha256Prefix12, VERSION_CODES } from './ja4.js';
import { hex4 } from './hex.js';

export interface Ja4s {
  readonly ja4s: string;
  readonly ja4s_r: string;
}

export type Ja4sTransport = 'tcp' | 'quic';

/** JA4S.png: "TLS version, 1.2 = "12", 1.3 = "13""; the other codes as JA4's (JA4.md, python/common.py TLS_MAPPER). */

/** FoxIO's hash12 (rust/ja4/src/lib.rs): an empty list hashes to twelve zeros (python: '000000000000' too). */
const EMPTY_HASH = '000000000000';

/**
 * JA4S and JA4S_r of one ServerHello. `transport` is how it travelled (JA4S.png: "TCP = "t" QUIC = "q"").
 *
 * - Version: supported_versions' selected_version when present, else legacy_version (python `to_ja4s`
 *   and Rust `TlsVersion::new`); unknown versions give "00" as in JA4.
 * - Extension count: every extension, GREASE included ("include grease values", python; Rust's
 *   `tls_extensions_server` does not filter either), capped at 99.
 * - ALPN: the JA4.md rule for the client's first ALPN value (first and last character; hex digits when
 *   either byte is non-alphanumeric). For the names servers choose (h2, http/1.1, h3) FoxIO's python and
 *   Rust agree with it; for one-character or non-ASCII names the two references disagree with each other
 *   (python prints one character or "99", Rust "x0" or "9"), so we use the spec rule JA4 already follows.
 * - Cipher: 4 lower-case hex digits ("1301").
 */
export function computeJa4s(hello: ServerHello, transport: Ja4sTransport = 'tcp'): Ja4s {
  const exts = hello.extensions;
  let list = '';
  for (let i = 0; i < exts.length; i++) {
    const t = hex4((exts[i] as { type: number }).type);
    list = i === 0 ? t : `${list},${t}`;
  }
  const count = Math.min(exts.length, 99);
  const a =
    (transport === 'quic' ? 'q' : 't') +
    (VERSION_CODES.get(negotiatedVersion(hello)) ?? '00') +
    (count < 10 ? `0${count}` : String(count)) +
    alpnCode(hello.alpn === null ? null : [hello.alpn]);
  const b = hex4(hello.cipherSuite);
  // JA4S.png: "Truncated SHA256 hash of the Extensions, in the order they appear".
  const c = list === '' ? EMPTY_HASH : sha256Prefix12(list);
  return { ja4s: `${a}_${b}_${c}`, ja4s_r: `${a}_${b}_${list}` };
}
