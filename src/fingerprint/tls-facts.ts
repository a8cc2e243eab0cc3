/**
 * The facts one ClientHello contributes to the flow record (stage `client-hello`), keyed by the flow field
 * names of src/flow/fields.ts, so the pipeline can merge them into the record as they are. Setting
 * `network.protocol: tls` is the pipeline's job (it also decides `unknown` for not-TLS tunnels).
 */
import { isIP } from 'node:net';
import type { FlowFields } from '../flow/fields.js';
import type { ClientHello } from '../parsers/client-hello.js';
import { isGrease16 } from './grease.js';
import { computeJa3 } from './ja3.js';
import { computeJa4, offeredVersion } from './ja4.js';

export type TlsFactName =
  | 'tls.client.server_name'
  | 'tls.client.ja3'
  | 'egress.tls.ja3_full'
  | 'tls.client.ja4'
  | 'egress.tls.ja4_r'
  | 'egress.tls.cipher_codes'
  | 'egress.tls.alpn'
  | 'egress.tls.version_offered'
  | 'egress.tls.ech'
  | 'egress.tls.sni_matches_destination';

export type TlsFacts = Pick<FlowFields, TlsFactName>;

/** Human-readable TLS versions for `egress.tls.version_offered`; anything else is shown as 0x-hex. */
const VERSION_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0304, '1.3'],
  [0x0303, '1.2'],
  [0x0302, '1.1'],
  [0x0301, '1.0'],
  [0x0300, 'ssl3.0'],
  [0x0002, 'ssl2.0'],
  [0xfeff, 'dtls1.0'],
  [0xfefd, 'dtls1.2'],
  [0xfefc, 'dtls1.3'],
]);

export function formatTlsVersion(version: number): string {
  return VERSION_NAMES.get(version) ?? `0x${version.toString(16).padStart(4, '0')}`;
}

/** Lower-cased, one trailing dot removed, IPv6 brackets removed: the forms a host name compares in. */
function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * Whether the SNI names the host the client asked the proxy to CONNECT to.
 *
 * - No SNI at all → false: nothing vouches for the destination (typical of tools and malware talking to a
 *   bare IP, and of ECH-less clients that omit SNI on purpose).
 * - CONNECT to an IP literal with a host-name SNI → false: the name cannot be checked against the address
 *   without trusting DNS, so it is reported as not matching and left to policy.
 * - SNI that is itself an IP literal (forbidden by RFC 6066 §3 but sent by some clients) → true only when it
 *   is the same address text as the CONNECT host.
 * - Otherwise host names compare case-insensitively with one trailing dot ignored; no wildcard or
 *   parent-domain matching (a CONNECT to a.example.com with SNI example.com is false).
 * - `connectHost` null (not a CONNECT flow) → false.
 */
export function sniMatchesDestination(sni: string | null, connectHost: string | null): boolean {
  if (sni === null || sni === '' || connectHost === null) return false;
  const host = normaliseHost(connectHost);
  const name = normaliseHost(sni);
  if (isIP(host) !== 0 && isIP(name) === 0) return false;
  return host === name;
}

/**
 * All TLS facts of one ClientHello.
 *
 * - `tls.client.server_name` and `egress.tls.alpn` are left out when the hello has no such extension, so a
 *   policy `exists: false` matches them; ALPN names and SNI are Latin-1 decoded (one char per wire byte).
 * - `egress.tls.cipher_codes` is 4-digit lower-case hex (the JA4_r form, e.g. `1301`), wire order,
 *   GREASE dropped: GREASE values change per connection and would make exact-match rules flaky.
 * - `egress.tls.version_offered` is the highest non-GREASE supported_versions entry, else legacy_version, as in JA4.
 * - `egress.tls.ech` is true when the encrypted_client_hello extension is present.
 */
export function tlsFactsOf(hello: ClientHello, connectHost: string | null): TlsFacts {
  const ja3 = computeJa3(hello);
  const ja4 = computeJa4(hello, 'tcp');
  const ciphers: string[] = [];
  for (const suite of hello.cipherSuites) {
    if (!isGrease16(suite)) ciphers.push(suite.toString(16).padStart(4, '0'));
  }
  const facts: TlsFacts = {
    'tls.client.ja3': ja3.ja3,
    'egress.tls.ja3_full': ja3.ja3Full,
    'tls.client.ja4': ja4.ja4,
    'egress.tls.ja4_r': ja4.ja4R,
    'egress.tls.cipher_codes': ciphers,
    'egress.tls.version_offered': formatTlsVersion(offeredVersion(hello)),
    'egress.tls.ech': hello.hasEncryptedClientHello,
    'egress.tls.sni_matches_destination': sniMatchesDestination(hello.serverName, connectHost),
  };
  if (hello.serverName !== null) facts['tls.client.server_name'] = hello.serverName;
  if (hello.alpn !== null) facts['egress.tls.alpn'] = hello.alpn;
  return facts;
}
