/**
 * Destination parsing for the forward proxy: the authority of `CONNECT host:port` (RFC 9110 §9.3.6, authority-form
 * of RFC 9112 §3.2.3) and the absolute-form request target of a proxied HTTP request (RFC 9112 §3.2.2).
 *
 * Pure and synchronous. Every rejection is an EgressError BAD_TARGET whose message says what is wrong; no other
 * exception leaves this module for any input string (fuzzed in test/unit/net/target.fuzz.test.ts).
 *
 * Hosts are normalised here once, so that everything downstream (policy, internal-address check, flow record)
 * sees one spelling per destination: lower case, no trailing dot, IPv4 in dotted-quad form whatever way the client
 * wrote it (`2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` are all 127.0.0.1, as browsers and inet_aton read
 * them), IPv6 in RFC 5952 form without brackets.
 */
import { EgressError } from '../errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6Parts } from './address-class.js';
import { domainToASCII } from 'node:url';

/** A destination as host and port. */
export interface Target {
  /** normalised host: a lower-case DNS name without trailing dot, or the canonical IP (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** the canonical IP when the host is an IP literal, else null (the name still has to be resolved). */
  readonly ip: string | null;
  readonly family: 4 | 6 | null;
}

/** An absolute-form `http://` request target. */
export interface HttpTarget extends Target {
  readonly scheme: 'http';
  /** the path as sent, "/" when the URI had none; not decoded or dot-normalised (forwarded byte for byte). */
  readonly path: string;
  /** the query without "?", "" for a bare "?", null when there was none. */
  readonly query: string | null;
  /** the request target exactly as the client sent it. */
  readonly original: string;
}

/** A normalised host on its own. */
export interface HostInfo {
  readonly host: string;
  readonly ip: string | null;
  readonly family: 4 | 6 | null;
}

/** RFC 1035 §2.3.4 / RFC 1123 §2.1: a name is at most 253 characters in text form, a label at most 63. */
const MAX_HOST_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const HTTP_DEFAULT_PORT = 80;
const QUOTE_LIMIT = 100;

/**
 * Parses the authority of `CONNECT host:port`. RFC 9110 §9.3.6 allows only authority-form here: a host and a
 * port, which is required; no userinfo, path, query or fragment.
 */
export function parseConnectAuthority(authority: string): Target {
  if (typeof authority !== 'string') throw badTarget('CONNECT authority is not a string');
  if (authority === '') throw badTarget('CONNECT authority is empty');
  const ctx = `CONNECT authority ${quote(authority)}`;
  checkAsciiVisible(authority, ctx);
  if (authority.includes('://')) {
    throw badTarget(`${ctx} is a URI; CONNECT takes host:port only (RFC 9110 §9.3.6)`);
  }
  for (let i = 0; i < authority.length; i++) {
    switch (authority.charCodeAt(i)) {
      case 0x40: // @
        // SECURITY: userinfo in an authority is how "allowed.example@evil.example" hides its real host.
        throw badTarget(`${ctx} contains userinfo ("@"); CONNECT takes host:port only (RFC 9110 §9.3.6)`);
      case 0x2f: // /
        throw badTarget(`${ctx} has a path; CONNECT takes host:port only (RFC 9110 §9.3.6)`);
      case 0x3f: // ?
        throw badTarget(`${ctx} has a query; CONNECT takes host:port only (RFC 9110 §9.3.6)`);
      case 0x23: // #
        throw badTarget(`${ctx} has a fragment; CONNECT takes host:port only (RFC 9110 §9.3.6)`);
      default:
    }
  }
  const { hostPart, portPart, bracketed } = splitAuthority(authority, ctx);
  if (portPart === null) throw badTarget(`${ctx} has no port; CONNECT needs host:port`);
  if (portPart === '') throw badTarget(`${ctx} has an empty port; CONNECT needs host:port`);
  const port = parsePort(portPart, ctx);
  const info = normalizeHostPart(hostPart, bracketed, ctx);
  return { host: info.host, port, ip: info.ip, family: info.family };
}

/**
 * Parses an absolute-form request target (RFC 9112 §3.2.2), as a client sends it to a forward proxy:
 * `http://host[:port][/path][?query]`.
 */
export function parseAbsoluteTarget(target: string): HttpTarget {
  if (typeof target !== 'string') throw badTarget('request target is not a string');
  if (target === '') throw badTarget('request target is empty');
  const ctx = `request target ${quote(target)}`;
  checkAsciiVisible(target, ctx);
  if (target.charCodeAt(0) === 0x2f || target === '*') {
    // origin-form (RFC 9112 §3.2.1) and asterisk-form (§3.2.4) are for origin servers, not proxies.
    throw badTarget(`${ctx} is not an absolute URI; proxy requests need an absolute URI (http://host/path)`);
  }
  const colon = target.indexOf(':');
  if (colon <= 0 || !isScheme(target, colon) || !target.startsWith('//', colon + 1)) {
    throw badTarget(`${ctx} is not an absolute URI; proxy requests need an absolute URI (http://host/path)`);
  }
  const scheme = target.slice(0, colon).toLowerCase(); // RFC 3986 §3.1: schemes are case-insensitive
  if (scheme === 'https') {
    throw badTarget(`${ctx} is an https URI; send HTTPS through the proxy with CONNECT host:443`);
  }
  if (scheme !== 'http') {
    throw badTarget(`${ctx} has scheme ${quote(scheme)}; the proxy forwards http:// URIs only`);
  }
  if (target.includes('#')) {
    // RFC 9112 §3.2: clients do not send fragments; one in a request target means a broken or crafted client.
    throw badTarget(`${ctx} has a fragment ("#"); fragments are never sent in a request`);
  }
  const authorityStart = colon + 3;
  let authorityEnd = target.length;
  for (let i = authorityStart; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      authorityEnd = i;
      break;
    }
  }
  const authority = target.slice(authorityStart, authorityEnd);
  if (authority.includes('@')) {
    // SECURITY: credentials in URLs are a smuggling and phishing vector ("http://allowed.example@evil.example/"
    // shows one host and goes to another) and would leak to the upstream; RFC 9110 §4.2.4 deprecates them.
    throw badTarget(`${ctx} contains userinfo ("user@host"); credentials in URLs are refused`);
  }
  if (authority === '') throw badTarget(`${ctx} has no host`);
  const { hostPart, portPart, bracketed } = splitAuthority(authority, ctx);
  // RFC 3986 §3.2.3: an empty port ("host:") means the scheme's default.
  const port = portPart === null || portPart === '' ? HTTP_DEFAULT_PORT : parsePort(portPart, ctx);
  const info = normalizeHostPart(hostPart, bracketed, ctx);
  const rest = target.slice(authorityEnd);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  return {
    host: info.host,
    port,
    ip: info.ip,
    family: info.family,
    scheme: 'http',
    path: path === '' ? '/' : path, // RFC 9112 §3.2.1: an empty path is sent as "/"
    query: q < 0 ? null : rest.slice(q + 1),
    original: target,
  };
}

/**
 * Normalises a host on its own: a DNS name, an IPv4 address in any accepted spelling, or an IPv6 address with or
 * without brackets. Throws EgressError BAD_TARGET when it is none of these.
 */
export function normalizeHost(host: string): HostInfo {
  if (typeof host !== 'string') throw badTarget('host is not a string');
  const ctx = `host ${quote(host)}`;
  checkAsciiVisible(host, ctx);
  if (host.charCodeAt(0) === 0x5b && host.charCodeAt(host.length - 1) === 0x5d) {
    return normalizeHostPart(host.slice(1, -1), true, ctx);
  }
  return normalizeHostPart(host, host.includes(':'), ctx);
}

/** `host:port` with IPv6 in brackets: the CONNECT authority that parses back to `target`. */
export function formatAuthority(target: Target): string {
  return `${target.family === 6 ? `[${target.host}]` : target.host}:${target.port}`;
}

/** The absolute URI that parses back to `target` (default port omitted, RFC 3986 §6.2.3). */
export function formatAbsoluteTarget(target: HttpTarget): string {
  const host = target.family === 6 ? `[${target.host}]` : target.host;
  const port = target.port === HTTP_DEFAULT_PORT ? '' : `:${target.port}`;
  const query = target.query === null ? '' : `?${target.query}`;
  return `http://${host}${port}${target.path}${query}`;
}

function splitAuthority(
  authority: string,
  ctx: string,
): { hostPart: string; portPart: string | null; bracketed: boolean } {
  if (authority.charCodeAt(0) === 0x5b) {
    // RFC 3986 §3.2.2: IP-literal = "[" IPv6address "]"
    const close = authority.indexOf(']');
    if (close < 0) throw badTarget(`${ctx} has "[" without a closing "]"`);
    const after = authority.slice(close + 1);
    if (after !== '' && after.charCodeAt(0) !== 0x3a) {
      throw badTarget(`${ctx} has ${quote(after)} after the IPv6 address; expected ":port"`);
    }
    return { hostPart: authority.slice(1, close), portPart: after === '' ? null : after.slice(1), bracketed: true };
  }
  const colon = authority.lastIndexOf(':');
  if (colon >= 0 && authority.indexOf(':') !== colon) {
    throw badTarget(`${ctx} has more than one ":"; an IPv6 address must be written in brackets, [addr]:port`);
  }
  return {
    hostPart: colon < 0 ? authority : authority.slice(0, colon),
    portPart: colon < 0 ? null : authority.slice(colon + 1),
    bracketed: false,
  };
}

function parsePort(portPart: string, ctx: string): number {
  // RFC 3986 §3.2.3: port = *DIGIT. More than 5 digits cannot be ≤ 65535 without leading zeros; refuse them
  // rather than accept "000000443".
  if (portPart.length > 5) throw badTarget(`${ctx} has port ${quote(portPart)}, which is not in 1-65535`);
  let port = 0;
  for (let i = 0; i < portPart.length; i++) {
    const c = portPart.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw badTarget(`${ctx} has port ${quote(portPart)}, which is not a number`);
    port = port * 10 + (c - 0x30);
  }
  if (port < 1 || port > 65535) throw badTarget(`${ctx} has port ${quote(portPart)}, which is not in 1-65535`);
  return port;
}

function normalizeHostPart(hostPart: string, bracketed: boolean, ctx: string): HostInfo {
  if (hostPart === '') throw badTarget(`${ctx} has an empty host`);
  if (bracketed) {
    const parts = parseIPv6Parts(hostPart);
    if (parts === null) {
      const why = hostPart.includes('%') ? ' (zone identifiers are not allowed)' : '';
      throw badTarget(`${ctx}: [${hostPart.slice(0, QUOTE_LIMIT)}] is not a valid IPv6 address${why}`);
    }
    const ip = formatIPv6(parts);
    return { host: ip, ip, family: 6 };
  }
  return normalizeName(hostPart, ctx);
}

/** A reg-name or IPv4 host (RFC 3986 §3.2.2), restricted to what DNS names and IPv4 spellings use. */
function normalizeName(raw: string, ctx: string): HostInfo {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    // "_" is not a hostname character (RFC 1123 §2.1) but real names carry it (SRV-style and some CDN names).
    if (!isAlpha(c) && !isDigit(c) && c !== 0x2d && c !== 0x2e && c !== 0x5f) {
      const ch = raw.charAt(i);
      if (ch === '%') {
        // SECURITY: a percent-encoded host ("127%2e0.0.1") means different hosts to different decoders.
        throw badTarget(`${ctx} has percent-encoding in the host, which is not allowed`);
      }
      throw badTarget(`${ctx} has ${quote(ch)} in the host, which is not allowed in a DNS name`);
    }
  }
  let host = raw.toLowerCase(); // RFC 4343: DNS names compare case-insensitively
  if (host.charCodeAt(host.length - 1) === 0x2e) host = host.slice(0, -1); // one trailing dot: the root label
  if (host === '') throw badTarget(`${ctx} has an empty host`);
  if (host.length > MAX_HOST_LENGTH) {
    throw badTarget(`${ctx} has a host longer than ${MAX_HOST_LENGTH} characters`);
  }
  let labelStart = 0;
  let lastLabelStart = 0;
  for (let i = 0; i <= host.length; i++) {
    if (i === host.length || host.charCodeAt(i) === 0x2e) {
      if (i === labelStart) throw badTarget(`${ctx} has an empty label in the host`);
      if (i - labelStart > MAX_LABEL_LENGTH) {
        throw badTarget(`${ctx} has a host label longer than ${MAX_LABEL_LENGTH} characters`);
      }
      lastLabelStart = labelStart;
      labelStart = i + 1;
    }
  }
  // RFC 5890 §2.3.2.1: an "xn--" label is an A-label and must decode as Punycode. One that does not is refused by
  // the URL Standard's host parser too, so no two parsers can disagree on which host it names.
  if (host.includes('xn--') && domainToASCII(host) === '') {
    throw badTarget(`${ctx} has an "xn--" label that is not valid Punycode`);
  }
  if (endsInNumber(host, lastLabelStart)) {
    // URL Standard §3.5 "ends in a number": such a host is an IPv4 address or invalid, never a DNS name, so
    // "0x7f.1" cannot slip past the internal-address check by being looked up as a name.
    const v4 = parseIPv4(host);
    if (v4 < 0) throw badTarget(`${ctx} ends in a number but is not a valid IPv4 address`);
    const ip = formatIPv4(v4);
    return { host: ip, ip, family: 4 };
  }
  return { host, ip: null, family: null };
}

/** URL Standard "ends in a number checker": the last label is all digits, or 0x followed by hex digits. */
function endsInNumber(host: string, lastLabelStart: number): boolean {
  let i = lastLabelStart;
  let hex = false;
  if (host.length - i >= 2 && host.charCodeAt(i) === 0x30 && host.charCodeAt(i + 1) === 0x78) {
    hex = true;
    i += 2;
  }
  for (; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (!isDigit(c) && !(hex && c >= 0x61 && c <= 0x66)) return false;
  }
  return true;
}

/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
function isScheme(s: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (i === 0 ? !isAlpha(c) : !(isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e)) {
      return false;
    }
  }
  return true;
}

function isAlpha(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Refuses whitespace, control characters and non-ASCII, which no request-target or authority may contain. */
function checkAsciiVisible(s: string, ctx: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) throw badTarget(`${ctx} contains whitespace or a control character`);
    if (c > 0x7e) {
      throw badTarget(`${ctx} contains a non-ASCII character; international names must be sent as punycode (xn--)`);
    }
  }
}

/** JSON-quoted and shortened, so an error message never carries control characters or a megabyte of input. */
function quote(s: string): string {
  return JSON.stringify(s.length > QUOTE_LIMIT ? `${s.slice(0, QUOTE_LIMIT)}…` : s);
}

function badTarget(message: string): EgressError {
  return new EgressError('BAD_TARGET', message);
}
