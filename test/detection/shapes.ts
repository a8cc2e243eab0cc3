/**
 * Building blocks for scenario shapes: user agents and header sets of real clients, encoders the C2 frameworks
 * use, DGA-like and tunnel-like name generators, and real-format benign tokens (OCSP requests, Delivery
 * Optimization URLs, webpack hashes). Each carries its source at the line that implements it; README.md lists
 * them per scenario.
 */
import { ALPHA, type Rng } from './rng.js';

// ---------------------------------------------------------------------------------------------------------
// User agents

/** Chrome 124 on Windows 10/11 (Chrome's reduced UA string, chromium.org "User-Agent Reduction"). */
export const UA_CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
export const UA_EDGE = `${UA_CHROME} Edg/124.0.0.0`;
export const UA_FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0';
/** Windows CryptoAPI (CRL/OCSP/CTL fetches by CryptSvc, lsass, certutil). */
export const UA_CRYPTOAPI = 'Microsoft-CryptoAPI/10.0';
/** Background Intelligent Transfer Service (SigmaHQ 8ccd35a2: c-useragent|startswith "Microsoft BITS/"). */
export const UA_BITS = 'Microsoft BITS/7.8';
export const UA_DELIVERY_OPTIMIZATION = 'Microsoft-Delivery-Optimization/10.0';
/** certutil -urlcache (SigmaHQ 7195a772 "Suspicious User Agent" lists "CertUtil URL Agent"). */
export const UA_CERTUTIL = 'CertUtil URL Agent';
/** mshta / rundll32+mshtml / WMIC+MSXML: WinINet in IE7 compatibility mode. */
export const UA_MSHTML = 'Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; Win64; x64; Trident/7.0; .NET4.0C; .NET4.0E)';
/** Windows PowerShell 5.1 Invoke-WebRequest (SigmaHQ c8557060: contains " WindowsPowerShell/"). */
export const UA_POWERSHELL = 'Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.4291';
/** Empire default profile (SigmaHQ b923f7d6 "HackTool - Empire UserAgent URI Combo"). */
export const UA_EMPIRE = 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko';
/** Covenant DefaultHttpProfile (cobbr/Covenant Covenant/Data/Profiles/DefaultProfiles.yaml). */
export const UA_COVENANT = 'Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2228.0 Safari/537.36';
/** Metasploit reverse_http(s) default HttpUserAgent (lib/msf/core/payload/windows/reverse_http.rb). */
export const UA_METERPRETER = 'Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko';
/** One of the IE user agents Cobalt Strike picks when the profile sets none (seen in public beacon configs). */
export const UA_COBALT_DEFAULT = 'Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0; BOIE9;ENUS)';

/** A Sliver implant's UA: Chrome base 106 + random minor (BishopFox/sliver server/configs/http-c2.go ChromeVer). */
export function uaSliver(rng: Rng): string {
  return `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${106 + rng.int(0, 2)}.0.${1000 + rng.int(0, 8998)}.${rng.int(0, 998)} Safari/537.36`;
}

export type Headers = ReadonlyArray<readonly [string, string]>;

/** A browser's navigation/subresource headers (Chrome order). */
export function browserHeaders(ua: string, accept = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', extra: Headers = []): Headers {
  return [
    ['Upgrade-Insecure-Requests', '1'],
    ['User-Agent', ua],
    ['Accept', accept],
    ['Accept-Encoding', 'gzip, deflate'],
    ['Accept-Language', 'en-US,en;q=0.9'],
    ...extra,
  ];
}

/** A WinINet/WinHTTP client's minimal headers. */
export function winHeaders(ua: string, extra: Headers = []): Headers {
  return [['Accept', '*/*'], ['User-Agent', ua], ...extra];
}

// ---------------------------------------------------------------------------------------------------------
// Encoders and tokens

export function b64(rng: Rng, bytes: number): string {
  return rng.bytes(bytes).toString('base64');
}

export function b64url(rng: Rng, bytes: number): string {
  return rng.bytes(bytes).toString('base64url');
}

/** base64 for a query value: '+', '/', '=' percent-encoded as WinINet and .NET's UrlEncode send them. */
export function b64q(rng: Rng, bytes: number): string {
  return encodeURIComponent(b64(rng, bytes));
}

export function hex(rng: Rng, chars: number): string {
  return rng.chars(ALPHA.hex, chars);
}

export function guid(rng: Rng): string {
  const h = hex(rng, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[rng.int(0, 3)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Rex::Text.checksum8: sum of the bytes mod 256 (rapid7/metasploit-framework uri_checksum.rb). */
function checksum8(s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s.charCodeAt(i);
  return sum % 256;
}

/** URI_CHECKSUM_INITW (92, Windows stager's first request) and URI_CHECKSUM_CONN (98): uri_checksum.rb. */
export const MSF_INITW = 92;
export const MSF_CONN = 98;

/**
 * A Metasploit reverse_http URI of `len` characters whose checksum8 is `sum` (uri_checksum.rb
 * generate_uri_checksum_with_length; the handler maps it back to INITM/CONN). Alphabet: the UUID-carrying
 * URIs are base64url characters.
 */
export function msfUri(rng: Rng, sum: number, len: number): string {
  for (;;) {
    const uri = rng.chars(ALPHA.base64url, len);
    if (checksum8(uri) === sum) return uri;
  }
}

/**
 * An OCSP request for one certificate, DER, as RFC 6960 §4.1.1 defines it with SHA-1 CertID (what Windows and
 * browsers send): SEQUENCE{ tbsRequest SEQUENCE{ requestList SEQUENCE{ Request SEQUENCE{ CertID SEQUENCE{
 * hashAlgorithm sha1, issuerNameHash OCTET STRING(20), issuerKeyHash OCTET STRING(20), serialNumber INTEGER(16)
 * }}}}}. 83 bytes; its base64 starts "MFEwTzBNMEswSTAJBgUrDgMCGgUABBS".
 */
export function ocspRequestDer(rng: Rng): Buffer {
  const serial = rng.bytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // a positive INTEGER
  return Buffer.concat([
    Buffer.from('3051304f304d304b3049300906052b0e03021a05000414', 'hex'),
    rng.bytes(20),
    Buffer.from('0414', 'hex'),
    rng.bytes(20),
    Buffer.from('0210', 'hex'),
    serial,
  ]);
}

/** RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER encoding of the OCSPRequest}. */
export function ocspGetPath(rng: Rng): string {
  return `/${encodeURIComponent(ocspRequestDer(rng).toString('base64'))}`;
}

/** A Delivery Optimization / Windows Update content URL query (P1 expiry, P2 404, P3 2, P4 signature). */
export function deliveryOptimizationQuery(rng: Rng): string {
  return `P1=${1_716_000_000 + rng.int(0, 9_999_999)}&P2=404&P3=2&P4=${b64q(rng, 64)}`;
}

/** webpack [contenthash:8] / [contenthash:20] (webpack docs, "Caching"). */
export function contentHash(rng: Rng, len = 8): string {
  return hex(rng, len);
}

// ---------------------------------------------------------------------------------------------------------
// Names

/** Necurs-like DGA: 7–21 lower-case letters over many TLDs (baderj/domain_generation_algorithms necurs/). */
export function dgaNecurs(rng: Rng): string {
  return `${rng.chars(ALPHA.lower, rng.int(7, 21))}.${rng.pick(['mx', 'ac', 'mu', 'us', 'com', 'biz', 'in', 'pw', 'tv', 'ir', 'ug', 'to', 'nf', 'ms', 'net', 'su', 'ga', 'sc', 'sx', 'cc', 'tw', 'cm', 'tj', 'sh', 'eu', 'xxx', 'pro', 'kz', 'jp', 'la', 'bit'])}`;
}

/** CryptoLocker-like DGA: 12–15 letters, .com .net .biz .ru .org .co.uk .info (DGArchive / baderj cryptolocker). */
export function dgaCryptolocker(rng: Rng): string {
  return `${rng.chars('abcdefghijklmnopqrstuvwxy', rng.int(12, 15))}.${rng.pick(['com', 'net', 'biz', 'ru', 'org', 'co.uk', 'info'])}`;
}

/** Locky-like DGA: 5–16 letters over ccTLDs (baderj/domain_generation_algorithms locky/example_domains.txt). */
export function dgaLocky(rng: Rng): string {
  return `${rng.chars(ALPHA.lower, rng.int(5, 16))}.${rng.pick(['tf', 'yt', 'us', 'be', 'pm', 'it', 'ru', 'uk', 'fr', 'de', 'eu', 'nl', 'in', 'pw'])}`;
}

const WORDS = [
  'weather', 'toward', 'reason', 'father', 'strength', 'picture', 'station', 'thought', 'morning', 'history', 'several',
  'between', 'company', 'problem', 'service', 'country', 'general', 'children', 'present', 'nothing', 'certain',
  'million', 'another', 'hundred', 'example', 'brought', 'evening', 'include', 'special', 'probably', 'measure',
];

/** Suppobox-like DGA: two dictionary words, .net (DGArchive "suppobox"): the hard, low-entropy kind. */
export function dgaWords(rng: Rng): string {
  return `${rng.pick(WORDS)}${rng.pick(WORDS)}.net`;
}

/** Split a long label into DNS labels of at most `size` characters (RFC 1035 §2.3.4: 63 octets). */
export function labels(data: string, size = 63): string {
  const out: string[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.slice(i, i + size));
  return out.join('.');
}

/**
 * dnscat2 with a domain: the packet (2-byte id, type, session id, seq/ack, data) hex-encoded in labels under
 * the domain (iagox86/dnscat2 doc/protocol.md "DNS"); record types rotate TXT/CNAME/MX.
 */
export function dnscat2Name(rng: Rng, domain: string, session: string, dataBytes: number): string {
  const packet = `${hex(rng, 4)}01${session}${hex(rng, 8)}${rng.bytes(dataBytes).toString('hex')}`;
  return `${labels(packet)}.${domain}`;
}

/** iodine upstream data: a command/user prefix and base32 payload in labels under the tunnel domain. */
export function iodineName(rng: Rng, domain: string, userHex: string): string {
  return `${labels(`${userHex}${rng.chars(ALPHA.base32, rng.int(150, 200))}`)}.${domain}`;
}
