/**
 * JA4X (X.509 certificate fingerprint: how a certificate was *made*, not what it says) from FoxIO's
 * specification: technical_details/JA4X.png in FoxIO-LLC/ja4 (commit 0e54bc8), with the details taken from
 * FoxIO's reference code (rust/ja4x/src/lib.rs `X509Rec`, python/ja4x.py `oid_to_hex`).
 *
 * LICENCE: JA4X is part of JA4+, "licenced under the FoxIO License 1.1" and "Patent Pending" (FoxIO's
 * headers). That licence allows non-commercial use only; commercial use needs an OEM licence from FoxIO.
 * This file is our own code written from the spec, but the method is theirs. See
 * test/fixtures/vectors/ja4-foxio/README.md ("License") before shipping a product that computes it.
 *
 *   JA4X = a_b_c                             e.g. 7d5dbb3783b4_ba7ce0880c07_7bf9a7bf7029
 *   a = sha256 of the issuer RDN attribute OIDs, in order, first 12 hex   ("does not include values")
 *   b = sha256 of the subject RDN attribute OIDs, in order, first 12 hex
 *   c = sha256 of the extension OIDs, in order, first 12 hex
 * Each OID is the lower-case hex of its DER contents, without tag and length (`550403` for 2.5.4.3: Rust
 * `hex::encode(oid.as_bytes())`; python `oid_to_hex` strips the "06 len" prefix), comma joined.
 * An empty list hashes to "000000000000" (Rust `hash12`; JA4X.png's Sliver example shows it for an empty
 * issuer). FoxIO's python hashes the empty string instead (e3b0c44298fc, the Qakbot example's part c);
 * we follow the Rust tool and the current picture.
 */
import type { X509Structure } from '../parsers/x509.js';
import { parseX509 } from '../parsers/x509.js';
import { sha256Prefix12 } from './ja4.js';

export interface Ja4x {
  readonly ja4x: string;
  /** a_b_c with the comma-joined OID hex lists instead of their hashes. */
  readonly ja4x_r: string;
}

const EMPTY_HASH = '000000000000';

function hash12(list: string): string {
  return list === '' ? EMPTY_HASH : sha256Prefix12(list);
}

function joinHex(items: readonly { readonly oidHex: string }[]): string {
  let out = '';
  for (let i = 0; i < items.length; i++) out = i === 0 ? (items[i] as { oidHex: string }).oidHex : `${out},${(items[i] as { oidHex: string }).oidHex}`;
  return out;
}

/** JA4X of a certificate already walked by `parseX509`. */
export function ja4xOf(cert: X509Structure): Ja4x {
  const a = joinHex(cert.issuer);
  const b = joinHex(cert.subject);
  const c = joinHex(cert.extensions);
  return { ja4x: `${hash12(a)}_${hash12(b)}_${hash12(c)}`, ja4x_r: `${a}_${b}_${c}` };
}

/** JA4X of one DER certificate. Throws `ParseError` when it is not a well-formed certificate. */
export function computeJa4x(der: Uint8Array): Ja4x {
  return ja4xOf(parseX509(der));
}
