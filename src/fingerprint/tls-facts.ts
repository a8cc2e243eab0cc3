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
import { GenerationMemo } from './hash-memo.js';
import { hex4 } from './hex.js';

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
 * What a ClientHello's shape fixes — everything but its SNI, random, session id and key shares: the facts of one
 * TLS stack, the same on every tunnel it opens. The lists are frozen and shared by every flow of that stack, so
 * the flow record can write their JSON once (src/observe/ecs.ts).
 */
interface HelloShape {
  readonly ja3: string;
  readonly ja3Full: string;
  readonly ja4: string;
  readonly ja4R: string;
  readonly cipherCodes: readonly string[];
  readonly versionOffered: string;
  readonly alpn: readonly string[] | null;
}

/**
 * Shapes by their key (below). A fleet runs a handful of TLS stacks; computing JA3, JA4 and the cipher list of
 * each tunnel again was ~25 KB of garbage and ~4 % of a tunnel's CPU (issue 9). Bounded like every cache: two
 * generations of 512 shapes (a shape is 2–5 KB), ten minutes each, so a scanner's random hellos age out.
 */
const shapes = new GenerationMemo<HelloShape>(512, 10 * 60_000);

/** Keys longer than this (16-bit units) are not remembered: a hello with huge lists is computed each time. */
const MAX_KEY_UNITS = 2048;
const keyScratch = new Uint16Array(MAX_KEY_UNITS);
/** Stands for a list the hello does not have (null), which some facts tell apart from an empty one. */
const ABSENT = 0xffff;

/**
 * Every input of the shape's facts as one string of 16-bit units: legacy_version, then each list as its length
 * and its values (GREASE dropped, as every fingerprint drops it — so Chrome's per-connection GREASE values do not
 * make each of its tunnels a new shape): cipher suites, extension types in wire order, supported groups, EC point
 * formats, signature algorithms, supported versions, then the ALPN names, each as its length and its Latin-1
 * units. Length prefixes make the encoding unambiguous. null when the key would pass MAX_KEY_UNITS.
 */
export function helloShapeKey(hello: ClientHello): string | null {
  keyScratch[0] = hello.legacyVersion;
  let n = putList(1, hello.cipherSuites);
  n = putExtensionTypes(n, hello);
  n = putList(n, hello.supportedGroups);
  n = putList(n, hello.ecPointFormats);
  n = putList(n, hello.signatureAlgorithms);
  n = putList(n, hello.supportedVersions);
  n = putNames(n, hello.alpn);
  return n < 0 ? null : String.fromCharCode.apply(null, keyScratch.subarray(0, n) as unknown as number[]);
}

/** The key's units from `n` on: one list as its length and its non-GREASE values (ABSENT for none); −1 when full. */
function putList(n: number, values: readonly number[] | null): number {
  if (n < 0 || n + 1 + (values?.length ?? 0) > MAX_KEY_UNITS) return -1;
  if (values === null) {
    keyScratch[n] = ABSENT;
    return n + 1;
  }
  let end = n + 1;
  for (const v of values) if (!isGrease16(v)) keyScratch[end++] = v;
  keyScratch[n] = end - n - 1;
  return end;
}

/** As putList, for the extension types in wire order. */
function putExtensionTypes(n: number, hello: ClientHello): number {
  const exts = hello.extensions;
  if (n < 0 || n + 1 + exts.length > MAX_KEY_UNITS) return -1;
  let end = n + 1;
  for (const ext of exts) if (!isGrease16(ext.type)) keyScratch[end++] = ext.type;
  keyScratch[n] = end - n - 1;
  return end;
}

/** The ALPN names: their count (ABSENT for none), then each name as its length and its Latin-1 units. */
function putNames(n: number, names: readonly string[] | null): number {
  if (n < 0 || n + 1 > MAX_KEY_UNITS) return -1;
  if (names === null) {
    keyScratch[n] = ABSENT;
    return n + 1;
  }
  let end = n;
  keyScratch[end++] = names.length;
  for (const name of names) {
    if (end + 1 + name.length > MAX_KEY_UNITS) return -1;
    keyScratch[end++] = name.length;
    for (let i = 0; i < name.length; i++) keyScratch[end++] = name.charCodeAt(i);
  }
  return end;
}

function shapeOf(hello: ClientHello): HelloShape {
  const ja3 = computeJa3(hello);
  const ja4 = computeJa4(hello, 'tcp');
  const ciphers: string[] = [];
  for (const suite of hello.cipherSuites) {
    if (!isGrease16(suite)) ciphers.push(hex4(suite));
  }
  return {
    ja3: ja3.ja3,
    ja3Full: ja3.ja3Full,
    ja4: ja4.ja4,
    ja4R: ja4.ja4R,
    cipherCodes: Object.freeze(ciphers),
    versionOffered: formatTlsVersion(offeredVersion(hello)),
    alpn: hello.alpn === null ? null : Object.freeze([...hello.alpn]),
  };
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
 *
 * The facts of the hello's shape are computed once per shape (`helloShapeKey`); their lists are frozen.
 */
export function tlsFactsOf(hello: ClientHello, connectHost: string | null): TlsFacts {
  const key = helloShapeKey(hello);
  const shape = key === null ? shapeOf(hello) : shapes.get(key, () => shapeOf(hello));
  const facts: TlsFacts = {
    'tls.client.ja3': shape.ja3,
    'egress.tls.ja3_full': shape.ja3Full,
    'tls.client.ja4': shape.ja4,
    'egress.tls.ja4_r': shape.ja4R,
    'egress.tls.cipher_codes': shape.cipherCodes,
    'egress.tls.version_offered': shape.versionOffered,
    'egress.tls.ech': hello.hasEncryptedClientHello,
    'egress.tls.sni_matches_destination': sniMatchesDestination(hello.serverName, connectHost),
  };
  if (hello.serverName !== null) facts['tls.client.server_name'] = hello.serverName;
  if (shape.alpn !== null) facts['egress.tls.alpn'] = shape.alpn;
  return facts;
}
