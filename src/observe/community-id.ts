/**
 * Community ID v1 (https://github.com/corelight/community-id-spec): a flow hash that Zeek, Suricata, Elastic
 * (`network.community_id`, and its `community_id` ingest processor) and most NDR tools compute the same way, so
 * one query joins our record with theirs.
 *
 * Only TCP and UDP: the proxy never sees other transports. Nothing is cached: one 40-byte SHA-1 per record.
 */
import crypto from 'node:crypto';
import { isIPv6 } from 'node:net';

/** IANA protocol numbers of the transports a flow record can carry. */
const TRANSPORTS: Readonly<Record<string, number>> = { tcp: 6, udp: 17 };

/** One-shot hashing (Node >= 20.12, 21.7) is ~2x faster than createHash; older Node 20 falls back. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'base64') => string }).hash;

function sha1Base64(data: Uint8Array): string {
  return oneShotHash !== undefined ? oneShotHash('sha1', data, 'base64') : crypto.createHash('sha1').update(data).digest('base64');
}

/** Dotted-quad IPv4 (RFC 791 text form, no leading zeros) read without regex or split: every record has one. */
function ipv4Bytes(ip: string): Uint8Array | null {
  if (ip.length < 7 || ip.length > 15) return null;
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i === ip.length ? 46 : ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 3) return null;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return null;
    } else {
      return null;
    }
  }
  return part === 4 ? out : null;
}

/** The 4 (IPv4) or 16 (IPv6) network-order bytes of an address, or null when it is not an IP literal. */
export function ipBytes(ip: string): Uint8Array | null {
  if (!ip.includes(':')) return ipv4Bytes(ip);
  if (!isIPv6(ip)) return null;
  const zone = ip.indexOf('%');
  let text = zone === -1 ? ip : ip.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  const head = halves[0] === '' ? [] : (halves[0] as string).split(':');
  const rest = halves.length > 1 && halves[1] !== '' ? (halves[1] as string).split(':') : [];
  const groups = [...head, ...new Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** Byte-wise comparison of two addresses of the same family (memcmp, as the reference implementation). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * `1:` + base64(SHA-1(seed ‖ ip1 ‖ ip2 ‖ proto ‖ 0 ‖ port1 ‖ port2)), the endpoints ordered so that the smaller
 * (ip, port) comes first (spec README "Technical details"; community-id.py `_packet_get_comm_id`). Null when an
 * address is not an IP, the families differ, a port is out of range, or the transport is neither tcp nor udp.
 */
export function communityId(
  sourceIp: string,
  sourcePort: number,
  destinationIp: string,
  destinationPort: number,
  transport: string,
  seed = 0,
): string | null {
  const proto = TRANSPORTS[transport];
  if (proto === undefined) return null;
  let src = ipBytes(sourceIp);
  let dst = ipBytes(destinationIp);
  if (src === null || dst === null) return null;
  // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): compare it as the IPv4 it is.
  if (src.length !== dst.length) {
    src = unmapped(src);
    dst = unmapped(dst);
    if (src.length !== dst.length) return null;
  }
  if (!isPort(sourcePort) || !isPort(destinationPort)) return null;
  // "swap the endpoints, if needed, so the numerically smaller IP:port tuple comes first. If the IP addresses
  // are equal, the ports decide."
  const order = compareBytes(src, dst);
  const forward = order < 0 || (order === 0 && sourcePort < destinationPort);
  const [ip1, ip2, port1, port2] = forward ? [src, dst, sourcePort, destinationPort] : [dst, src, destinationPort, sourcePort];
  const n = ip1.length;
  // Aligned on 32 bits, network byte order: 2-byte seed, addresses, protocol, one padding byte, ports.
  const buf = Buffer.allocUnsafe(2 + 2 * n + 2 + 4);
  buf.writeUInt16BE(seed & 0xffff, 0);
  buf.set(ip1, 2);
  buf.set(ip2, 2 + n);
  buf[2 + 2 * n] = proto;
  buf[3 + 2 * n] = 0;
  buf.writeUInt16BE(port1, 4 + 2 * n);
  buf.writeUInt16BE(port2, 6 + 2 * n);
  return `1:${sha1Base64(buf)}`;
}

function unmapped(ip: Uint8Array): Uint8Array {
  if (ip.length !== 16 || ip[10] !== 0xff || ip[11] !== 0xff) return ip;
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return ip;
  return ip.subarray(12);
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 0xffff;
}
