/**
 * Internal-address classification: is this destination IP one the proxy must not reach on a client's behalf?
 *
 * The check runs on the resolved IP that is then connected to (never on a name), and an IPv6 address that carries
 * an IPv4 address inside it is judged by that IPv4 address too — otherwise `::ffff:127.0.0.1`, `64:ff9b::a9fe:a9fe`
 * or `2002:7f00:1::` would walk past a list that only names 127.0.0.0/8 and 169.254.0.0/16. This follows
 * stripe/smokescreen's `classifyAddr`, extended to the NAT64, 6to4 and Teredo embeddings.
 *
 * Also home of the IPv4/IPv6 text forms shared with the target parser (src/net/target.ts), so that "what counts as
 * an IPv4 address" is written once.
 */
import { isIPv6 } from 'node:net';
import os from 'node:os';
import { EgressError } from '../errors.js';

/**
 * Destination ranges treated as internal by default (SPEC `network.internal`). A flow to any of them is blocked
 * unless a policy rule allows it.
 */
export const DEFAULT_INTERNAL_CIDRS: readonly string[] = Object.freeze([
  '127.0.0.0/8', // loopback (RFC 1122 §3.2.1.3)
  '10.0.0.0/8', // private (RFC 1918 §3)
  '172.16.0.0/12', // private (RFC 1918 §3)
  '192.168.0.0/16', // private (RFC 1918 §3)
  '169.254.0.0/16', // link-local (RFC 3927), incl. the cloud metadata service 169.254.169.254
  '100.64.0.0/10', // shared address space / carrier-grade NAT (RFC 6598)
  '0.0.0.0/8', // "this network" (RFC 1122 §3.2.1.3); 0.0.0.0 reaches the local host on Linux
  '192.0.0.0/24', // IETF protocol assignments (RFC 6890 §2.2.2)
  '198.18.0.0/15', // benchmarking (RFC 2544)
  '224.0.0.0/4', // multicast (RFC 5771)
  '240.0.0.0/4', // reserved (RFC 1112 §4), incl. limited broadcast 255.255.255.255 (RFC 919)
  '::/128', // unspecified (RFC 4291 §2.5.2); like 0.0.0.0 it reaches the local host
  '::1/128', // loopback (RFC 4291 §2.5.3)
  'fc00::/7', // unique local (RFC 4193), incl. the AWS metadata service fd00:ec2::254
  'fe80::/10', // link-local unicast (RFC 4291 §2.5.6)
  'ff00::/8', // multicast (RFC 4291 §2.7)
  '64:ff9b:1::/48', // local-use IPv4/IPv6 translation (RFC 8215): reaches a private IPv4 network
]);

/**
 * Addresses that are never a destination, whatever `network.internal` says (it replaces the defaults, so an
 * operator's list can omit them): connecting to the unspecified address reaches this host on Linux, and
 * multicast, broadcast and the reserved block are not unicast peers a TCP flow can have. No rule opens them.
 */
const NEVER_DIALLED: readonly (readonly [cidrs: readonly string[], reason: string])[] = [
  [['0.0.0.0/8', '::/128'], 'the unspecified address ("this host")'], // RFC 1122 §3.2.1.3, RFC 4291 §2.5.2
  [['224.0.0.0/4', 'ff00::/8'], 'a multicast address'], // RFC 5771, RFC 4291 §2.7
  [['240.0.0.0/4'], 'a reserved or broadcast address'], // RFC 1112 §4, limited broadcast RFC 919
];

/** Loopback: always this host. Internal whatever `network.internal` says; an allow rule naming it opens it. */
export const LOOPBACK_CIDRS: readonly string[] = Object.freeze(['127.0.0.0/8', '::1/128']);

export interface DestinationGuardOptions {
  /** `network.internal`: the operator's internal networks (replaces DEFAULT_INTERNAL_CIDRS when set). */
  readonly internal: readonly string[];
  /**
   * `network.allow_loopback`: treat loopback as an ordinary destination (labs and tests whose origins run on
   * 127.0.0.0/8). Off by default; the never-dialled classes stay refused either way.
   */
  readonly allowLoopback?: boolean;
  /** This host's own interface addresses (os.networkInterfaces()): internal like loopback, since they are. */
  readonly localAddresses?: readonly string[];
}

/** The check the pipeline runs on the very IP it is about to dial. */
export interface DestinationGuard {
  /** In `network.internal`, loopback (unless allowed) or one of this host's addresses, in any IPv6 embedding. */
  isInternal(ip: string): boolean;
  /** Why `ip` can never be dialled (unspecified, multicast, broadcast/reserved), or null. */
  neverDialled(ip: string): string | null;
}

/**
 * Builds the destination check: the operator's internal list plus what always means "this host", and the
 * classes no rule can open. Every class is judged with the IPv6 embeddings too (`[::ffff:0.0.0.0]`,
 * `[64:ff9b::7f00:1]`, 6to4, Teredo), since the socket layer or a NAT64 gateway connects to the IPv4 inside.
 */
export function createDestinationGuard(options: DestinationGuardOptions): DestinationGuard {
  const hostLocal = [...(options.allowLoopback === true ? [] : LOOPBACK_CIDRS), ...(options.localAddresses ?? [])];
  const internal = createAddressClassifier([...options.internal, ...hostLocal]);
  const loopback = createAddressClassifier(LOOPBACK_CIDRS);
  const never = NEVER_DIALLED.map(([cidrs, reason]) => [createAddressClassifier(cidrs), reason] as const);
  return {
    isInternal: (ip) => internal.isInternal(ip),
    neverDialled(ip) {
      // `::1` is loopback, not "::0.0.0.1" in the deprecated IPv4-compatible embedding of 0.0.0.0/8.
      if (ip.includes(':') && isIPv6(ip) && loopback.contains(ip)) return null;
      for (const [classifier, reason] of never) if (classifier.isInternal(ip)) return reason;
      return null;
    },
  };
}

/**
 * This host's own unicast addresses on its non-loopback interfaces, as /32 and /128 CIDRs (loopback is
 * LOOPBACK_CIDRS). Link-local IPv6 addresses carry a zone and are covered by fe80::/10 in the defaults.
 */
export function localInterfaceAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  const out: string[] = [];
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (info.internal || (info.family === 'IPv6' && info.scopeid !== undefined && info.scopeid !== 0)) continue;
      out.push(info.family === 'IPv4' ? `${info.address}/32` : `${info.address}/128`);
    }
  }
  return out;
}

export interface AddressClass {
  /** true when the address, or an IPv4 address embedded in it, is in the internal list. */
  readonly internal: boolean;
  /** dotted quad for IPv4 and IPv4-mapped IPv6; RFC 5952 compressed lower-case form for other IPv6. */
  readonly canonical: string;
  readonly family: 4 | 6;
}

export interface AddressClassifier {
  /**
   * true when `ip` is internal. Anything that is not an IP address also answers true: a caller that passes a
   * name here has a bug, and the safe outcome of that bug is a block (fail closed).
   */
  isInternal(ip: string): boolean;
  /** Classifies an IP address; throws EgressError BAD_TARGET when `ip` is not one. */
  classify(ip: string): AddressClass;
  /**
   * Plain list membership for allow-lists (e.g. `proxy.clients`): IPv4-mapped IPv6 counts as the IPv4 inside
   * (a dual-stack socket reports IPv4 peers that way), no other embedding does, and anything that is not an IP
   * answers false. isInternal is the wrong tool there: its fail-closed answers widen an allow-list.
   */
  contains(ip: string): boolean;
}

/**
 * Builds a classifier over `cidrs` (each "addr/prefix", or a bare address meaning /32 or /128). The list is parsed
 * once here; a lookup is then a loop over the prefixes with no allocation for dotted-quad IPv4 input.
 * Throws EgressError CONFIG_INVALID naming the first entry that is not a CIDR.
 */
export function createAddressClassifier(cidrs: readonly string[] = DEFAULT_INTERNAL_CIDRS): AddressClassifier {
  const v4: number[] = []; // flat [network, mask, network, mask, ...]
  const v6: number[] = []; // flat [4 network words, 4 mask words, ...]
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed.kind === 4) {
      const mask = maskV4(parsed.prefix);
      v4.push((parsed.addr & mask) >>> 0, mask);
    } else {
      const words = partsToWords(parsed.parts);
      const masks = [0, 1, 2, 3].map((i) => maskV4(Math.max(0, Math.min(32, parsed.prefix - 32 * i))));
      for (let i = 0; i < 4; i++) v6.push(((words[i] ?? 0) & (masks[i] ?? 0)) >>> 0);
      v6.push(...masks);
    }
  }
  const v4Table = Uint32Array.from(v4);
  const v6Table = Uint32Array.from(v6);
  // Reused across calls: classification is synchronous, so no two calls can share it at once.
  const scratchWords = new Uint32Array(4);

  function matchesV4(addr: number): boolean {
    for (let i = 0; i < v4Table.length; i += 2) {
      if (((addr & (v4Table[i + 1] ?? 0)) >>> 0) === v4Table[i]) return true;
    }
    return false;
  }

  function matchesV6(words: Uint32Array): boolean {
    for (let i = 0; i < v6Table.length; i += 8) {
      let hit = true;
      for (let w = 0; w < 4 && hit; w++) {
        hit = (((words[w] ?? 0) & (v6Table[i + 4 + w] ?? 0)) >>> 0) === v6Table[i + w];
      }
      if (hit) return true;
    }
    return false;
  }

  /** Internal-ness of an IPv6 address given as 8 parts, judging every IPv4 address embedded in it. */
  function isInternalV6(parts: readonly number[]): boolean {
    const p = (i: number): number => parts[i] ?? 0;
    for (let w = 0; w < 4; w++) scratchWords[w] = ((p(2 * w) << 16) | p(2 * w + 1)) >>> 0;
    if (matchesV6(scratchWords)) return true;
    const low32 = scratchWords[3] ?? 0;
    // ::ffff:0:0/96 IPv4-mapped (RFC 4291 §2.5.5.2) and ::/96 IPv4-compatible (deprecated, RFC 4291 §2.5.5.1):
    // the socket layer connects to the IPv4 address inside.
    if (p(0) === 0 && p(1) === 0 && p(2) === 0 && p(3) === 0 && p(4) === 0 && (p(5) === 0xffff || p(5) === 0)) {
      return matchesV4(low32);
    }
    // 64:ff9b::/96 well-known NAT64 prefix (RFC 6052 §2.1): a NAT64 gateway forwards to the IPv4 in the low 32 bits.
    if (p(0) === 0x64 && p(1) === 0xff9b && p(2) === 0 && p(3) === 0 && p(4) === 0 && p(5) === 0) {
      return matchesV4(low32);
    }
    // 2002::/16 6to4 (RFC 3056 §2): bits 16-47 are the IPv4 address of the site's 6to4 router.
    if (p(0) === 0x2002) return matchesV4(((p(1) << 16) | p(2)) >>> 0);
    // 2001::/32 Teredo (RFC 4380 §4): bits 32-63 are the server, the low 32 bits the client's address XOR 0xffffffff.
    // Either one being internal makes the address internal (fail closed).
    if (p(0) === 0x2001 && p(1) === 0) {
      return matchesV4(((p(2) << 16) | p(3)) >>> 0) || matchesV4(~low32 >>> 0);
    }
    return false;
  }

  function isInternal(ip: string): boolean {
    const v4addr = parseDottedQuad(ip);
    if (v4addr >= 0) return matchesV4(v4addr);
    const parts = parseIPv6Parts(ip);
    if (parts !== null) return isInternalV6(parts);
    const lenient = parseIPv4(ip);
    if (lenient >= 0) return matchesV4(lenient);
    return true; // SECURITY: not an IP address → treated as internal (fail closed), see AddressClassifier.isInternal
  }

  function contains(ip: string): boolean {
    const v4addr = parseDottedQuad(ip);
    if (v4addr >= 0) return matchesV4(v4addr);
    const parts = parseIPv6Parts(ip);
    if (parts === null) return false; // SECURITY: allow-list semantics, so a non-IP is never a member (fail closed)
    for (let w = 0; w < 4; w++) scratchWords[w] = (((parts[2 * w] ?? 0) << 16) | (parts[2 * w + 1] ?? 0)) >>> 0;
    if (matchesV6(scratchWords)) return true;
    return isIPv4Mapped(parts) && matchesV4(partsLow32(parts));
  }

  function classify(ip: string): AddressClass {
    let v4addr = parseDottedQuad(ip);
    if (v4addr < 0) {
      const parts = parseIPv6Parts(ip);
      if (parts !== null) {
        if (isIPv4Mapped(parts)) {
          return { internal: isInternalV6(parts), canonical: formatIPv4(partsLow32(parts)), family: 4 };
        }
        return { internal: isInternalV6(parts), canonical: formatIPv6(parts), family: 6 };
      }
      v4addr = parseIPv4(ip); // odd spellings such as 0177.1 mean what inet_aton and browsers make of them
      if (v4addr < 0) throw new EgressError('BAD_TARGET', `${JSON.stringify(ip.slice(0, 80))} is not an IP address`);
    }
    return { internal: matchesV4(v4addr), canonical: formatIPv4(v4addr), family: 4 };
  }

  return { isInternal, classify, contains };
}

const PREFIX_LENGTH = /^\d{1,3}$/;

type ParsedCidr = { kind: 4; addr: number; prefix: number } | { kind: 6; parts: number[]; prefix: number };

function parseCidr(cidr: string): ParsedCidr {
  const slash = cidr.indexOf('/');
  const addrText = slash < 0 ? cidr : cidr.slice(0, slash);
  const prefixText = slash < 0 ? null : cidr.slice(slash + 1);
  const v4 = parseDottedQuad(addrText);
  const parts = v4 < 0 ? parseIPv6Parts(addrText) : null;
  const max = v4 >= 0 ? 32 : 128;
  const prefix = prefixText === null ? max : PREFIX_LENGTH.test(prefixText) ? Number(prefixText) : -1;
  if ((v4 < 0 && parts === null) || prefix < 0 || prefix > max) {
    throw new EgressError('CONFIG_INVALID', `internal network ${JSON.stringify(cidr)} is not a CIDR (addr/prefix)`);
  }
  return parts === null ? { kind: 4, addr: v4, prefix } : { kind: 6, parts, prefix };
}

function maskV4(prefix: number): number {
  return prefix <= 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function partsToWords(parts: readonly number[]): number[] {
  const words: number[] = [];
  for (let w = 0; w < 4; w++) words.push((((parts[2 * w] ?? 0) << 16) | (parts[2 * w + 1] ?? 0)) >>> 0);
  return words;
}

function partsLow32(parts: readonly number[]): number {
  return (((parts[6] ?? 0) << 16) | (parts[7] ?? 0)) >>> 0;
}

/** ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
export function isIPv4Mapped(parts: readonly number[]): boolean {
  return parts[0] === 0 && parts[1] === 0 && parts[2] === 0 && parts[3] === 0 && parts[4] === 0 && parts[5] === 0xffff;
}

/**
 * Strict dotted-decimal IPv4 ("a.b.c.d", each 0-255, no leading zeros) as an unsigned 32-bit number, or -1.
 * The fast path for addresses that came out of DNS answers; allocation-free.
 */
function parseDottedQuad(s: string): number {
  const len = s.length;
  if (len < 7 || len > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1; // leading zero: octal in inet_aton, so not the strict form
      part = part * 10 + (c - 0x30);
      digits++;
      if (part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** One IPv4 number of the WHATWG URL "IPv4 number parser" (0x hex, leading-0 octal, decimal), or -1. */
function parseIPv4Number(s: string, start: number, end: number): number {
  if (start === end) return -1;
  let radix = 10;
  let i = start;
  if (end - start >= 2 && s.charCodeAt(i) === 0x30) {
    const next = s.charCodeAt(i + 1) | 0x20;
    if (next === 0x78 /* x */) {
      radix = 16;
      i += 2;
    } else {
      radix = 8;
      i += 1;
    }
  }
  let value = 0;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    let digit: number;
    if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
    else if (radix === 16 && (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) digit = (c | 0x20) - 0x61 + 10;
    else return -1;
    if (digit >= radix) return -1;
    // Saturate instead of growing without bound: anything above 2^32 is out of range for every position anyway.
    value = Math.min(value * radix + digit, 2 ** 33);
  }
  return value;
}

/**
 * IPv4 in every spelling that the WHATWG URL host parser (URL Standard §3.5, "IPv4 parser") and inet_aton(3)
 * accept: 1 to 4 dot-separated numbers, each decimal, 0x-hex or 0-octal, the last one filling the remaining bytes
 * (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`), one trailing dot allowed. Returns the address as an unsigned
 * 32-bit number, or -1 when `s` is not such an address.
 */
export function parseIPv4(s: string): number {
  let end = s.length;
  if (end > 0 && s.charCodeAt(end - 1) === 0x2e) end--; // URL Standard: a trailing dot is allowed
  if (end === 0 || end > 64) return -1;
  let value = 0;
  let count = 0;
  let start = 0;
  let last = -1;
  for (let i = 0; i <= end; i++) {
    if (i === end || s.charCodeAt(i) === 0x2e) {
      const n = parseIPv4Number(s, start, i);
      if (n < 0 || count === 4) return -1;
      if (i < end) {
        if (n > 255) return -1; // every number but the last is one byte
        value = value * 256 + n;
      } else {
        last = n;
      }
      count++;
      start = i + 1;
    }
  }
  const rest = 256 ** (5 - count); // the last number fills the bytes the others did not
  if (last < 0 || last >= rest) return -1;
  return value * rest + last;
}

export function formatIPv4(addr: number): string {
  return `${(addr >>> 24) & 255}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
}

/**
 * IPv6 text → 8 16-bit parts, or null. Validation is Node's `net.isIPv6` (the inet_pton grammar: at most 4 hex
 * digits per group, an embedded IPv4 only at the end and only in strict dotted decimal), which agrees with the
 * WHATWG URL IPv6 parser; zone identifiers are refused. The splitting is ours: ipaddr.js 2.5 reads the
 * IPv4-compatible form `::a.b.c.d` as the IPv4-mapped `::ffff:a.b.c.d`, a different address.
 */
export function parseIPv6Parts(s: string): number[] | null {
  if (s.length < 2 || s.length > 45 || s.includes('%') || !isIPv6(s)) return null;
  const gap = s.indexOf('::');
  const head = splitGroups(gap < 0 ? s : s.slice(0, gap));
  const tail = gap < 0 ? [] : splitGroups(s.slice(gap + 2));
  if (head === null || tail === null) return null;
  if (gap < 0) return head.length === 8 ? head : null;
  const zeros = 8 - head.length - tail.length;
  if (zeros < 1) return null; // RFC 4291 §2.2: "::" stands for one or more groups of zeros
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

function splitGroups(text: string): number[] | null {
  if (text === '') return [];
  const parts: number[] = [];
  for (const group of text.split(':')) {
    if (group.includes('.')) {
      const v4 = parseDottedQuad(group); // RFC 4291 §2.2 form 3: x:x:x:x:x:x:d.d.d.d
      if (v4 < 0) return null;
      parts.push(v4 >>> 16, v4 & 0xffff);
    } else {
      parts.push(Number.parseInt(group, 16));
    }
  }
  return parts;
}

/**
 * RFC 5952 §4 text form, which is also the WHATWG URL IPv6 serializer: lower-case hex, no leading zeros, the first
 * longest run of two or more zero groups shortened to "::".
 */
/** The same for 16 address bytes at `off` (DNS AAAA rdata, IPv6 headers in captures). */
export function formatIPv6Bytes(b: Uint8Array, off: number): string {
  const parts = new Array<number>(8);
  for (let i = 0; i < 8; i++) parts[i] = ((b[off + 2 * i] as number) << 8) | (b[off + 2 * i + 1] as number);
  return formatIPv6(parts);
}

export function formatIPv6(parts: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (parts[i] === 0) {
      let j = i;
      while (j < 8 && parts[j] === 0) j++;
      if (j - i > bestLen) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    } else {
      i++;
    }
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (parts[i] ?? 0).toString(16);
  }
  return out;
}
