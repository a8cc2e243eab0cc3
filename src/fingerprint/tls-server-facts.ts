/**
 * The facts the server side of one TLS connection contributes to the flow record: the ServerHello
 * (JA3S, JA4S, version, cipher) and the leaf certificate (JA4X, names, validity, serial, hash, self-signed,
 * age). Keyed by flow field names (ECS `tls.server.*` and `egress.tls.*`) so the pipeline can merge the object
 * into the record as it is.
 *
 * Why these: C2 servers are often stood up minutes before use with a self-signed or freshly issued
 * short-lived certificate, default framework subjects (JA4X catches "how it was made" even when the names
 * vary), and a TLS stack whose ServerHello differs from the CDN it pretends to be (JA3S/JA4S).
 *
 * Never throws: a certificate that cannot be parsed gives the ServerHello facts plus
 * `egress.tls.certificate_error`.
 */
import type { ServerHello } from '../parsers/server-hello.js';
import { negotiatedVersion } from '../parsers/server-hello.js';
import { describeCertificate } from '../parsers/x509.js';
import { computeJa3s } from './ja3s.js';
import { computeJa4s } from './ja4s.js';
import { ja4xOf } from './ja4x.js';
import { formatTlsVersion } from './tls-facts.js';

/** Flow fields set from the server side. Every field is optional: each is present only when known. */
export interface TlsServerFacts {
  'tls.server.ja3s'?: string;
  'tls.server.ja4s'?: string;
  'tls.version'?: string;
  'tls.cipher'?: string;
  'tls.server.ja4x'?: string;
  'tls.server.x509.subject.common_name'?: string;
  'tls.server.x509.issuer.common_name'?: string;
  'tls.server.x509.subject.distinguished_name'?: string;
  'tls.server.x509.issuer.distinguished_name'?: string;
  'tls.server.x509.alternative_names'?: string[];
  'tls.server.x509.not_before'?: string;
  'tls.server.x509.not_after'?: string;
  'tls.server.x509.serial_number'?: string;
  'tls.server.hash.sha256'?: string;
  'egress.tls.self_signed'?: boolean;
  'egress.tls.validity_days'?: number;
  'egress.tls.cert_age_days'?: number;
  'egress.tls.certificate_error'?: string;
}

export type TlsServerFactName = keyof TlsServerFacts;

/**
 * IANA "TLS Cipher Suites" registry names (https://www.iana.org/assignments/tls-parameters/, RFC 8446 §B.4,
 * RFC 5289, RFC 7905, RFC 5246 appendix A.5) for the suites servers actually choose today; any other is
 * shown as 0x-hex. Kept small on purpose: it is for reading logs, policies should match on the hex.
 */
export const CIPHER_NAMES: ReadonlyMap<number, string> = new Map([
  [0x1301, 'TLS_AES_128_GCM_SHA256'],
  [0x1302, 'TLS_AES_256_GCM_SHA384'],
  [0x1303, 'TLS_CHACHA20_POLY1305_SHA256'],
  [0xc02b, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
  [0xc02c, 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
  [0xc02f, 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'],
  [0xc030, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'],
  [0xcca8, 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xcca9, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xc009, 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'],
  [0xc00a, 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA'],
  [0xc013, 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'],
  [0xc014, 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA'],
  [0xc027, 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'],
  [0xc028, 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384'],
  [0x009c, 'TLS_RSA_WITH_AES_128_GCM_SHA256'],
  [0x009d, 'TLS_RSA_WITH_AES_256_GCM_SHA384'],
  [0x002f, 'TLS_RSA_WITH_AES_128_CBC_SHA'],
  [0x0035, 'TLS_RSA_WITH_AES_256_CBC_SHA'],
  [0x000a, 'TLS_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0x0005, 'TLS_RSA_WITH_RC4_128_SHA'],
  [0x0004, 'TLS_RSA_WITH_RC4_128_MD5'],
]);

export function formatCipherSuite(suite: number): string {
  return CIPHER_NAMES.get(suite) ?? `0x${suite.toString(16).padStart(4, '0')}`;
}

const MS_PER_DAY = 86_400_000;

/** Days between two instants, rounded to one decimal (negative when `to` is before `from`). */
function daysBetween(from: number, to: number): number {
  return Math.round(((to - from) / MS_PER_DAY) * 10) / 10;
}

/**
 * All server-side TLS facts.
 *
 * @param hello the ServerHello, or null when only the certificate is known (e.g. read from a terminated
 *   upstream connection).
 * @param certDer the leaf certificate's DER, or null (TLS 1.3 spliced: it is encrypted).
 * @param now ms since the epoch, for `egress.tls.cert_age_days`.
 *
 * - `tls.version` is the negotiated version (supported_versions, else legacy_version), as `formatTlsVersion`.
 * - `tls.cipher` is the IANA name when in the small table, else `0x`-hex.
 * - `tls.server.x509.*.common_name` is the last CN in wire order (the most specific one), left out when none.
 * - `egress.tls.validity_days` = notAfter − notBefore, `egress.tls.cert_age_days` = now − notBefore, days with
 *   one decimal; a certificate not yet valid has a negative age.
 */
export function tlsServerFactsOf(hello: ServerHello | null, certDer: Uint8Array | null, now: number): TlsServerFacts {
  const facts: TlsServerFacts = {};
  if (hello !== null) {
    facts['tls.server.ja3s'] = computeJa3s(hello).ja3s;
    facts['tls.server.ja4s'] = computeJa4s(hello, 'tcp').ja4s;
    facts['tls.version'] = formatTlsVersion(negotiatedVersion(hello));
    facts['tls.cipher'] = formatCipherSuite(hello.cipherSuite);
  }
  if (certDer === null) return facts;
  try {
    const cert = describeCertificate(certDer);
    const s = cert.structure;
    facts['tls.server.ja4x'] = ja4xOf(s).ja4x;
    if (cert.subjectCommonName !== null) facts['tls.server.x509.subject.common_name'] = cert.subjectCommonName;
    if (cert.issuerCommonName !== null) facts['tls.server.x509.issuer.common_name'] = cert.issuerCommonName;
    facts['tls.server.x509.subject.distinguished_name'] = cert.subjectDistinguishedName;
    facts['tls.server.x509.issuer.distinguished_name'] = cert.issuerDistinguishedName;
    facts['tls.server.x509.alternative_names'] = [...cert.alternativeNames];
    facts['tls.server.x509.not_before'] = cert.notBefore;
    facts['tls.server.x509.not_after'] = cert.notAfter;
    facts['tls.server.x509.serial_number'] = cert.serialNumber;
    facts['tls.server.hash.sha256'] = cert.sha256;
    facts['egress.tls.self_signed'] = cert.selfSigned;
    facts['egress.tls.validity_days'] = daysBetween(s.notBefore, s.notAfter);
    facts['egress.tls.cert_age_days'] = daysBetween(s.notBefore, now);
  } catch (err) {
    // Never throws: the record keeps the ServerHello facts and says why the certificate is missing.
    return { ...helloOnly(facts), 'egress.tls.certificate_error': err instanceof Error ? err.message : String(err) };
  }
  return facts;
}

/** The facts object without any certificate field (a failure half-way must not leave some of them set). */
function helloOnly(facts: TlsServerFacts): TlsServerFacts {
  const out: TlsServerFacts = {};
  if (facts['tls.server.ja3s'] !== undefined) out['tls.server.ja3s'] = facts['tls.server.ja3s'];
  if (facts['tls.server.ja4s'] !== undefined) out['tls.server.ja4s'] = facts['tls.server.ja4s'];
  if (facts['tls.version'] !== undefined) out['tls.version'] = facts['tls.version'];
  if (facts['tls.cipher'] !== undefined) out['tls.cipher'] = facts['tls.cipher'];
  return out;
}
