/**
 * The address forms of the configuration: listen addresses ("host:port", "[v6]:port"), upstream DNS servers
 * ("ip", "ip:port", "[v6]:port") and CIDRs. They share one strict notion of an IP literal, kept here.
 */
import ipaddr from 'ipaddr.js';
import type { Parsed } from './duration.js';

export interface HostPort {
  /** IP literal or host name; IPv6 without brackets, as `net.Server.listen` and `net.connect` take it. */
  readonly host: string;
  readonly port: number;
}

const PORT_TEXT = /^\d{1,5}$/;
// RFC 1123 host names; a name made only of digits and dots must be a valid IPv4 literal instead.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Dotted-quad IPv4 only: `ipaddr.isValid` also takes "10.1", "0x7f.1" and "010.0.0.1", which other tools
 * read differently (010 is octal to inet_aton, decimal to others), so an address means one thing only.
 */
function isIpv4Literal(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text);
}

/** IPv6 without a zone index: a zone ("%eth0") names an interface of one host and is never a network. */
function isIpv6Literal(text: string): boolean {
  return !text.includes('%') && ipaddr.IPv6.isValid(text);
}

/** Splits "[v6]:port", "[v6]", "host:port" or "host"; `port` is undefined when the text has none. */
function splitHostPort(text: string): { host: string; port: string | undefined; bracketed: boolean } | undefined {
  if (text.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
    if (m === null) return undefined;
    return { host: m[1] ?? '', port: m[2], bracketed: true };
  }
  const colon = text.lastIndexOf(':');
  if (colon === -1) return { host: text, port: undefined, bracketed: false };
  // More than one colon without brackets is an IPv6 literal whose port cannot be told apart from its last group.
  if (text.indexOf(':') !== colon) return undefined;
  return { host: text.slice(0, colon), port: text.slice(colon + 1), bracketed: false };
}

function parsePort(text: string, min: number): number | undefined {
  if (!PORT_TEXT.test(text)) return undefined;
  const port = Number(text);
  return port >= min && port <= 65_535 ? port : undefined;
}

const LISTEN_EXPECTED = 'expected a listen address like "0.0.0.0:3128" or "[::1]:3128"';

/** A local address to bind. Port 0 is allowed: the OS picks a free port (tests rely on it). */
export function parseListenAddress(value: unknown): Parsed<HostPort> {
  if (typeof value !== 'string') return { ok: false, expected: LISTEN_EXPECTED };
  const parts = splitHostPort(value);
  if (parts === undefined || parts.port === undefined) {
    return { ok: false, expected: isIpv6Literal(value) ? 'expected IPv6 in brackets with a port, like "[::1]:3128"' : LISTEN_EXPECTED };
  }
  const { host, bracketed } = parts;
  const hostOk = bracketed
    ? ipaddr.IPv6.isValid(host) // a zone is fine when binding a link-local address
    : isIpv4Literal(host) || (HOST_NAME.test(host) && !/^[\d.]+$/.test(host));
  if (!hostOk) return { ok: false, expected: LISTEN_EXPECTED };
  const port = parsePort(parts.port, 0);
  if (port === undefined) return { ok: false, expected: 'expected a port from 0 to 65535' };
  return { ok: true, value: { host, port } };
}

const SERVER_EXPECTED = 'expected a DNS server like "192.0.2.53", "192.0.2.53:53" or "[2001:db8::53]:53"';

/**
 * A DNS server to send queries to. Only IP literals: resolving the resolver's own name would need a resolver.
 * IPv6 must be bracketed, because "2001:db8::53" could otherwise be read as host "2001:db8:" port 53.
 */
export function parseServerAddress(value: unknown): Parsed<HostPort> {
  if (typeof value !== 'string') return { ok: false, expected: SERVER_EXPECTED };
  const parts = splitHostPort(value);
  if (parts === undefined) {
    return { ok: false, expected: isIpv6Literal(value) ? 'expected IPv6 in brackets, like "[2001:db8::53]:53"' : SERVER_EXPECTED };
  }
  const hostOk = parts.bracketed ? isIpv6Literal(parts.host) : isIpv4Literal(parts.host);
  if (!hostOk) return { ok: false, expected: SERVER_EXPECTED };
  if (parts.port === undefined) return { ok: true, value: { host: parts.host, port: 53 } };
  const port = parsePort(parts.port, 1);
  if (port === undefined) return { ok: false, expected: 'expected a port from 1 to 65535' };
  return { ok: true, value: { host: parts.host, port } };
}

const CIDR_EXPECTED = 'expected a CIDR like "10.0.0.0/8" or an IP address';

/**
 * A network in CIDR notation, kept as the string written; a bare IP becomes a /32 or /128.
 * Host bits set ("10.0.0.1/8") are refused rather than masked: the writer meant either the /32 or the
 * network, and guessing wrong in an allow list widens it.
 */
export function parseCidr(value: unknown): Parsed<string> {
  if (typeof value !== 'string') return { ok: false, expected: CIDR_EXPECTED };
  const slash = value.indexOf('/');
  const addr = slash === -1 ? value : value.slice(0, slash);
  const isV4 = isIpv4Literal(addr);
  if (!isV4 && !isIpv6Literal(addr)) return { ok: false, expected: CIDR_EXPECTED };
  const maxPrefix = isV4 ? 32 : 128;
  if (slash === -1) return { ok: true, value: `${value}/${maxPrefix}` };
  const prefixText = value.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix <= maxPrefix)) {
    return { ok: false, expected: `expected an ${isV4 ? 'IPv4' : 'IPv6'} prefix length from 0 to ${maxPrefix}` };
  }
  const network = isV4 ? ipaddr.IPv4.networkAddressFromCIDR(value) : ipaddr.IPv6.networkAddressFromCIDR(value);
  if (network.toString() !== ipaddr.parse(addr).toString()) {
    return { ok: false, expected: `expected a network address without host bits (did you mean "${network.toString()}/${prefix}"?)` };
  }
  return { ok: true, value };
}
