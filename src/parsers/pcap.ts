/**
 * Finds the TLS ClientHellos in a packet capture, for `egress-inspector fingerprint --pcap` and for tests
 * against captured traffic. Pure over the file's bytes; no libpcap, no tshark.
 *
 * Scope: classic pcap (both byte orders, µs and ns timestamps) and pcapng (SHB, IDB, EPB, SPB and the
 * obsolete PB; link type per interface); link types Ethernet (802.1Q/802.1ad VLAN tags), Linux cooked
 * SLL and SLL2, BSD null/loopback, raw IP; IPv4 and IPv6 (extension headers skipped); TCP only. Each TCP
 * connection's client-to-server first flight is reassembled in sequence order, an HTTP CONNECT or SOCKS
 * 4/5 preamble is skipped, and the bytes go through `readClientHello`, the same reader the proxy uses.
 * A second ClientHello is looked for only when the server answered with a HelloRetryRequest.
 * Out of scope, counted in `skipped`: QUIC (ClientHellos inside encrypted QUIC Initial packets), IP
 * fragments, non-IP frames, unknown link types.
 */
import { Cursor, ParseError } from './cursor.js';
import { readClientHello } from './client-hello.js';
import type { ClientHello } from './client-hello.js';
import { formatIPv6Bytes } from '../net/address-class.js';

/** Bytes of each direction of a connection we keep: enough for any first flight, bounded for big captures. */
export const MAX_FLIGHT_BYTES = 256 * 1024;
/** Longest HTTP CONNECT request head we skip over. */
const MAX_CONNECT_HEAD = 16 * 1024;

export type Preamble = 'none' | 'http-connect' | 'socks4' | 'socks5';

export interface PcapClientHello {
  /** Connection index in order of first appearance, from 0 (tshark's `tcp.stream` for ordinary captures). */
  readonly stream: number;
  /** 1 for the first ClientHello of the connection, 2 for the one after a HelloRetryRequest. */
  readonly indexInStream: number;
  /** 1-based frame number of the packet holding the hello's last byte (where tshark shows it). */
  readonly frame: number;
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly preamble: Preamble;
  /** The TLS record(s) that carried the hello. */
  readonly record: Uint8Array;
  readonly hello: ClientHello;
}

/** A connection whose client bytes looked like TLS but did not give a ClientHello. */
export interface PcapProblem {
  readonly stream: number;
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly message: string;
}

export interface PcapReport {
  readonly format: 'pcap' | 'pcapng';
  readonly packets: number;
  readonly hellos: readonly PcapClientHello[];
  readonly problems: readonly PcapProblem[];
  readonly skipped: {
    /** UDP packets to or from port 443 that look like QUIC long-header packets. */
    readonly quicPackets: number;
    readonly ipFragments: number;
    readonly unsupportedFrames: number;
  };
  /** The file ended inside a packet or block (a cut capture); what came before is still reported. */
  readonly truncated: boolean;
}

export class PcapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PcapError';
  }
}

// ---------------------------------------------------------------------------------------------------------
// File formats.

interface RawPacket {
  readonly frame: number;
  readonly linkType: number;
  readonly data: Uint8Array;
}

interface RawFile {
  readonly format: 'pcap' | 'pcapng';
  readonly packets: RawPacket[];
  readonly truncated: boolean;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Classic pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html §4–5). */
function readClassicPcap(buf: Uint8Array): RawFile {
  const dv = view(buf);
  const magicBe = dv.getUint32(0, false);
  // Magic 0xA1B2C3D4 (µs) or 0xA1B23C4D (ns), written in the capturing host's byte order.
  const littleEndian = magicBe === 0xd4c3b2a1 || magicBe === 0x4d3cb2a1;
  if (buf.length < 24) throw new PcapError('pcap file header is truncated');
  // §4: LinkType is the low 28 bits of the last header field (the top bits carry FCS information).
  const linkType = dv.getUint32(20, littleEndian) & 0x0fffffff;
  const packets: RawPacket[] = [];
  let pos = 24;
  let frame = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 16) return { format: 'pcap', packets, truncated: true };
    const capLen = dv.getUint32(pos + 8, littleEndian);
    if (buf.length - pos - 16 < capLen) return { format: 'pcap', packets, truncated: true };
    frame++;
    packets.push({ frame, linkType, data: buf.subarray(pos + 16, pos + 16 + capLen) });
    pos += 16 + capLen;
  }
  return { format: 'pcap', packets, truncated: false };
}

/** pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html §4). */
function readPcapng(buf: Uint8Array): RawFile {
  const dv = view(buf);
  const packets: RawPacket[] = [];
  let littleEndian = true;
  let interfaces: { linkType: number; snapLen: number }[] = [];
  let pos = 0;
  let frame = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 12) return { format: 'pcapng', packets, truncated: true };
    const typeRaw = dv.getUint32(pos, true);
    if (typeRaw === 0x0a0d0d0a) {
      // §4.1 Section Header Block: the byte-order magic 0x1A2B3C4D tells this section's endianness, and
      // interface ids restart from 0 in each section.
      const bom = dv.getUint32(pos + 8, true);
      if (bom === 0x1a2b3c4d) littleEndian = true;
      else if (bom === 0x4d3c2b1a) littleEndian = false;
      else throw new PcapError(`pcapng section at ${pos} has a bad byte-order magic`);
      interfaces = [];
    }
    const type = dv.getUint32(pos, littleEndian);
    const total = dv.getUint32(pos + 4, littleEndian);
    if (total < 12 || total % 4 !== 0) throw new PcapError(`pcapng block at ${pos} has a bad length ${total}`);
    if (buf.length - pos < total) return { format: 'pcapng', packets, truncated: true };
    const body = pos + 8;
    const bodyEnd = pos + total - 4;
    if (type === 0x00000001 && bodyEnd - body >= 8) {
      // §4.2 Interface Description Block: LinkType (2), reserved (2), SnapLen (4).
      interfaces.push({ linkType: dv.getUint16(body, littleEndian), snapLen: dv.getUint32(body + 4, littleEndian) });
    } else if (type === 0x00000006 && bodyEnd - body >= 20) {
      // §4.3 Enhanced Packet Block: Interface ID, Timestamp (8), Captured Length, Original Length, data.
      const ifId = dv.getUint32(body, littleEndian);
      const capLen = dv.getUint32(body + 12, littleEndian);
      frame++;
      const iface = interfaces[ifId];
      if (iface !== undefined && body + 20 + capLen <= bodyEnd) {
        packets.push({ frame, linkType: iface.linkType, data: buf.subarray(body + 20, body + 20 + capLen) });
      }
    } else if (type === 0x00000003 && bodyEnd - body >= 4) {
      // §4.4 Simple Packet Block: Original Length, then data; always interface 0, captured length implied.
      const origLen = dv.getUint32(body, littleEndian);
      frame++;
      const iface = interfaces[0];
      if (iface !== undefined) {
        const capLen = Math.min(origLen, bodyEnd - body - 4, iface.snapLen === 0 ? Infinity : iface.snapLen);
        packets.push({ frame, linkType: iface.linkType, data: buf.subarray(body + 4, body + 4 + capLen) });
      }
    } else if (type === 0x00000002 && bodyEnd - body >= 20) {
      // Appendix: obsolete Packet Block: Interface ID (2), Drops Count (2), Timestamp (8), CapLen, Len, data.
      const ifId = dv.getUint16(body, littleEndian);
      const capLen = dv.getUint32(body + 12, littleEndian);
      frame++;
      const iface = interfaces[ifId];
      if (iface !== undefined && body + 20 + capLen <= bodyEnd) {
        packets.push({ frame, linkType: iface.linkType, data: buf.subarray(body + 20, body + 20 + capLen) });
      }
    }
    pos += total;
  }
  return { format: 'pcapng', packets, truncated: false };
}

function readCaptureFile(buf: Uint8Array): RawFile {
  if (buf.length < 4) throw new PcapError('file is too short to be a capture');
  const magic = view(buf).getUint32(0, false);
  if (magic === 0x0a0d0d0a) return readPcapng(buf);
  if (magic === 0xa1b2c3d4 || magic === 0xd4c3b2a1 || magic === 0xa1b23c4d || magic === 0x4d3cb2a1) return readClassicPcap(buf);
  throw new PcapError(`unknown capture format (magic 0x${magic.toString(16).padStart(8, '0')}); expected pcap or pcapng`);
}

// ---------------------------------------------------------------------------------------------------------
// Link, network and transport layers.

const LINKTYPE_NULL = 0; // BSD loopback: 4-byte address family in the capturing host's byte order
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101; // raw IPv4/IPv6
const LINKTYPE_LOOP = 108; // OpenBSD loopback: 4-byte family in network byte order
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_LINUX_SLL2 = 276;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const LINKTYPE_RAW_ALT = 12; // DLT_RAW as some BSDs number it

type Decoded =
  | { readonly kind: 'tcp'; readonly segment: TcpSegment }
  | { readonly kind: 'udp'; readonly srcPort: number; readonly dstPort: number; readonly payload: Uint8Array }
  | { readonly kind: 'fragment' }
  | { readonly kind: 'other' };

interface TcpSegment {
  readonly srcIp: string;
  readonly dstIp: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly syn: boolean;
  readonly ack: boolean;
  readonly payload: Uint8Array;
}

const OTHER: Decoded = { kind: 'other' };
const FRAGMENT: Decoded = { kind: 'fragment' };

/** Returns the IP packet inside a link-layer frame, or null. */
function ipPayloadOf(linkType: number, data: Uint8Array): Uint8Array | null {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      let off = 12;
      let etherType = data.length >= 14 ? ((data[12] as number) << 8) | (data[13] as number) : -1;
      // 802.1Q (0x8100), 802.1ad (0x88A8) and the old QinQ 0x9100 tags: 4 bytes each, possibly stacked.
      while ((etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100) && data.length >= off + 8) {
        off += 4;
        etherType = ((data[off] as number) << 8) | (data[off + 1] as number);
      }
      if (etherType !== 0x0800 && etherType !== 0x86dd) return null;
      return data.subarray(off + 2);
    }
    case LINKTYPE_LINUX_SLL: {
      // 16-byte header; protocol type (an EtherType) in the last two bytes.
      if (data.length < 16) return null;
      const proto = ((data[14] as number) << 8) | (data[15] as number);
      return proto === 0x0800 || proto === 0x86dd ? data.subarray(16) : null;
    }
    case LINKTYPE_LINUX_SLL2: {
      // 20-byte header; protocol type first.
      if (data.length < 20) return null;
      const proto = ((data[0] as number) << 8) | (data[1] as number);
      return proto === 0x0800 || proto === 0x86dd ? data.subarray(20) : null;
    }
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (data.length < 4) return null;
      // The family's byte order depends on the capturing host; read it both ways. AF_INET is 2 everywhere,
      // AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS) or 10 (Linux).
      const le = (data[0] as number) | ((data[1] as number) << 8);
      const be = ((data[2] as number) << 8) | (data[3] as number);
      const family = le !== 0 ? le : be;
      return family === 2 || family === 24 || family === 28 || family === 30 || family === 10 ? data.subarray(4) : null;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_ALT:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return data;
    default:
      return null;
  }
}

function formatIpv4(b: Uint8Array, off: number): string {
  return `${b[off] as number}.${b[off + 1] as number}.${b[off + 2] as number}.${b[off + 3] as number}`;
}

function decodeTransport(proto: number, seg: Uint8Array, srcIp: string, dstIp: string): Decoded {
  if (proto === 6) {
    // RFC 9293 §3.1: data offset in 32-bit words in the high nibble of byte 12; flags in byte 13.
    if (seg.length < 20) return OTHER;
    const dataOffset = ((seg[12] as number) >> 4) * 4;
    if (dataOffset < 20 || dataOffset > seg.length) return OTHER;
    const flags = seg[13] as number;
    const dv = view(seg);
    return {
      kind: 'tcp',
      segment: {
        srcIp,
        dstIp,
        srcPort: dv.getUint16(0, false),
        dstPort: dv.getUint16(2, false),
        seq: dv.getUint32(4, false),
        syn: (flags & 0x02) !== 0,
        ack: (flags & 0x10) !== 0,
        payload: seg.subarray(dataOffset),
      },
    };
  }
  if (proto === 17) {
    if (seg.length < 8) return OTHER;
    const dv = view(seg);
    return { kind: 'udp', srcPort: dv.getUint16(0, false), dstPort: dv.getUint16(2, false), payload: seg.subarray(8) };
  }
  return OTHER;
}

function decodeIp(ip: Uint8Array): Decoded {
  if (ip.length < 1) return OTHER;
  const version = (ip[0] as number) >> 4;
  if (version === 4) {
    if (ip.length < 20) return OTHER;
    const ihl = ((ip[0] as number) & 0x0f) * 4;
    const totalLength = ((ip[2] as number) << 8) | (ip[3] as number);
    const fragField = ((ip[6] as number) << 8) | (ip[7] as number);
    // More-fragments flag or a non-zero fragment offset: reassembling IP fragments is out of scope.
    if ((fragField & 0x2000) !== 0 || (fragField & 0x1fff) !== 0) return FRAGMENT;
    if (ihl < 20 || ihl > ip.length) return OTHER;
    // Trim Ethernet padding; a zero total length (TSO captures) means "the rest of the frame".
    const end = totalLength >= ihl && totalLength <= ip.length ? totalLength : ip.length;
    return decodeTransport(ip[9] as number, ip.subarray(ihl, end), formatIpv4(ip, 12), formatIpv4(ip, 16));
  }
  if (version === 6) {
    if (ip.length < 40) return OTHER;
    const payloadLength = ((ip[4] as number) << 8) | (ip[5] as number);
    const end = payloadLength > 0 && 40 + payloadLength <= ip.length ? 40 + payloadLength : ip.length;
    let next = ip[6] as number;
    let off = 40;
    // RFC 8200 §4: walk hop-by-hop (0), routing (43), fragment (44), destination options (60) and AH (51).
    for (let hops = 0; hops < 16; hops++) {
      if (next === 0 || next === 43 || next === 60) {
        if (off + 2 > end) return OTHER;
        const len = ((ip[off + 1] as number) + 1) * 8;
        next = ip[off] as number;
        off += len;
      } else if (next === 51) {
        // RFC 4302 §2.2: AH length is in 4-byte units, minus 2.
        if (off + 2 > end) return OTHER;
        const len = ((ip[off + 1] as number) + 2) * 4;
        next = ip[off] as number;
        off += len;
      } else if (next === 44) {
        if (off + 8 > end) return OTHER;
        const fragField = ((ip[off + 2] as number) << 8) | (ip[off + 3] as number);
        if ((fragField & 0xfff8) !== 0 || (fragField & 0x0001) !== 0) return FRAGMENT;
        next = ip[off] as number;
        off += 8;
      } else {
        break;
      }
    }
    if (off > end) return OTHER;
    return decodeTransport(next, ip.subarray(off, end), formatIPv6Bytes(ip, 8), formatIPv6Bytes(ip, 24));
  }
  return OTHER;
}

function decodeFrame(linkType: number, data: Uint8Array): Decoded {
  const ip = ipPayloadOf(linkType, data);
  return ip === null ? OTHER : decodeIp(ip);
}

// ---------------------------------------------------------------------------------------------------------
// TCP reassembly of each direction's first bytes.

interface StoredSegment {
  readonly seq: number;
  readonly frame: number;
  readonly order: number;
  readonly payload: Uint8Array;
}

interface Direction {
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
  /** Sequence number of the first data byte (ISN + 1) when the SYN was seen. */
  dataStart: number | null;
  /** true when this side sent a SYN without ACK: it opened the connection. */
  opened: boolean;
  readonly segments: StoredSegment[];
  stored: number;
}

interface Connection {
  readonly index: number;
  readonly directions: Map<string, Direction>;
  hasData: boolean;
}

interface Assembled {
  readonly bytes: Uint8Array;
  /** For byte offsets: the frames that contributed them, as parallel arrays of [startOffset, frame]. */
  readonly starts: readonly number[];
  readonly frames: readonly number[];
}

function endpointKey(ip: string, port: number): string {
  return `${ip}|${port}`;
}

function connectionKey(s: TcpSegment): string {
  const a = endpointKey(s.srcIp, s.srcPort);
  const b = endpointKey(s.dstIp, s.dstPort);
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** Signed distance from `base` to `seq` in 32-bit sequence space (RFC 9293 §3.4 modular comparison). */
function seqDelta(seq: number, base: number): number {
  return (seq - base) | 0;
}

function assemble(dir: Direction): Assembled {
  const segs = dir.segments;
  if (segs.length === 0) return { bytes: new Uint8Array(0), starts: [], frames: [] };
  const base = dir.dataStart ?? (segs[0] as StoredSegment).seq;
  const sorted = segs
    .map((s) => ({ rel: seqDelta(s.seq, base), s }))
    .sort((x, y) => x.rel - y.rel || x.s.order - y.s.order);
  // With the SYN seen, bytes start at ISN + 1; without it, at the lowest sequence number we saw.
  let cursor = dir.dataStart !== null ? 0 : (sorted[0] as { rel: number }).rel;
  const parts: Uint8Array[] = [];
  const starts: number[] = [];
  const frames: number[] = [];
  let length = 0;
  for (const { rel, s } of sorted) {
    if (rel > cursor) break; // a gap: a lost segment; stop at the last contiguous byte
    const end = rel + s.payload.length;
    if (end <= cursor) continue; // a retransmission of bytes we have (first copy wins)
    const piece = s.payload.subarray(cursor - rel);
    starts.push(length);
    frames.push(s.frame);
    parts.push(piece);
    length += piece.length;
    cursor = end;
    if (length >= MAX_FLIGHT_BYTES) break;
  }
  const bytes = new Uint8Array(length);
  let w = 0;
  for (const p of parts) {
    bytes.set(p, w);
    w += p.length;
  }
  return { bytes, starts, frames };
}

function frameAt(a: Assembled, offset: number): number {
  let frame = a.frames[0] ?? 0;
  for (let i = 0; i < a.starts.length; i++) {
    if ((a.starts[i] as number) <= offset) frame = a.frames[i] as number;
    else break;
  }
  return frame;
}

// ---------------------------------------------------------------------------------------------------------
// Proxy preambles.

const CRLFCRLF = [0x0d, 0x0a, 0x0d, 0x0a];

function startsWithAscii(b: Uint8Array, text: string): boolean {
  if (b.length < text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[i] !== text.charCodeAt(i)) return false;
  return true;
}

function indexOfSeq(b: Uint8Array, needle: readonly number[], from: number, limit: number): number {
  const last = Math.min(b.length, limit) - needle.length;
  outer: for (let i = from; i <= last; i++) {
    for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Where the TLS bytes start in a client stream, skipping an HTTP CONNECT request head (RFC 9110 §9.3.6)
 * or a SOCKS 5 (RFC 1928, RFC 1929 user/password) or SOCKS 4/4a request. Returns null when a preamble
 * starts but does not finish within the captured bytes.
 */
function skipPreamble(b: Uint8Array): { offset: number; preamble: Preamble } | null {
  if (startsWithAscii(b, 'CONNECT ')) {
    const end = indexOfSeq(b, CRLFCRLF, 8, MAX_CONNECT_HEAD);
    return end < 0 ? null : { offset: end + 4, preamble: 'http-connect' };
  }
  try {
    if (b[0] === 0x05 && b.length >= 2 && (b[1] as number) >= 1) {
      const c = new Cursor(b);
      c.u8('socks5.version');
      c.vec8('socks5.methods');
      // RFC 1929: user/password sub-negotiation starts with version 0x01 (a request starts with 0x05).
      if (!c.isAtEnd && b[c.offset] === 0x01) {
        c.u8('socks5.auth.version');
        c.vec8('socks5.auth.username');
        c.vec8('socks5.auth.password');
      }
      // RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT.
      if (c.u8('socks5.request.version') !== 0x05) return null;
      c.u8('socks5.request.cmd');
      c.u8('socks5.request.rsv');
      const atyp = c.u8('socks5.request.atyp');
      if (atyp === 0x01) c.skip(4, 'socks5.request.ipv4');
      else if (atyp === 0x04) c.skip(16, 'socks5.request.ipv6');
      else if (atyp === 0x03) c.vec8('socks5.request.domain');
      else return null;
      c.u16('socks5.request.port');
      return { offset: c.offset, preamble: 'socks5' };
    }
    if (b[0] === 0x04 && b.length >= 9 && (b[1] === 0x01 || b[1] === 0x02)) {
      // SOCKS 4: VN CD DSTPORT(2) DSTIP(4) USERID NUL; 4a: DSTIP 0.0.0.x (x ≠ 0) then DOMAIN NUL.
      let off = b.indexOf(0x00, 8);
      if (off < 0) return null;
      off++;
      if (b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] !== 0) {
        const end = b.indexOf(0x00, off);
        if (end < 0) return null;
        off = end + 1;
      }
      return { offset: off, preamble: 'socks4' };
    }
  } catch (err) {
    if (err instanceof ParseError) return null;
    throw err;
  }
  return { offset: 0, preamble: 'none' };
}

// ---------------------------------------------------------------------------------------------------------
// The whole pass.

function isQuicLongHeader(payload: Uint8Array): boolean {
  // RFC 9000 §17.2: long header form bit and fixed bit set.
  return payload.length >= 7 && ((payload[0] as number) & 0xc0) === 0xc0;
}

/** Every ClientHello over TCP in a pcap or pcapng file. Throws `PcapError` only when the file is not a capture. */
export function readPcapClientHellos(file: Uint8Array): PcapReport {
  const raw = readCaptureFile(file);
  const connections = new Map<string, Connection>();
  const ordered: Connection[] = [];
  let quicPackets = 0;
  let ipFragments = 0;
  let unsupportedFrames = 0;
  let order = 0;

  for (const pkt of raw.packets) {
    const d = decodeFrame(pkt.linkType, pkt.data);
    if (d.kind === 'udp') {
      if ((d.srcPort === 443 || d.dstPort === 443) && isQuicLongHeader(d.payload)) quicPackets++;
      continue;
    }
    if (d.kind === 'fragment') {
      ipFragments++;
      continue;
    }
    if (d.kind !== 'tcp') {
      unsupportedFrames++;
      continue;
    }
    const s = d.segment;
    const key = connectionKey(s);
    let conn = connections.get(key);
    const dirKey = endpointKey(s.srcIp, s.srcPort);
    // A fresh SYN on a tuple that already carried data is a new connection (port reuse), as tshark counts.
    if (conn !== undefined && s.syn && !s.ack && conn.hasData) {
      const prev = conn.directions.get(dirKey);
      if (prev === undefined || prev.dataStart !== (s.seq + 1) >>> 0) conn = undefined;
    }
    if (conn === undefined) {
      conn = { index: ordered.length, directions: new Map(), hasData: false };
      connections.set(key, conn);
      ordered.push(conn);
    }
    let dir = conn.directions.get(dirKey);
    if (dir === undefined) {
      dir = { srcIp: s.srcIp, srcPort: s.srcPort, dstIp: s.dstIp, dstPort: s.dstPort, dataStart: null, opened: false, segments: [], stored: 0 };
      conn.directions.set(dirKey, dir);
    }
    let seq = s.seq;
    if (s.syn) {
      dir.dataStart = (s.seq + 1) >>> 0;
      if (!s.ack) dir.opened = true;
      seq = (s.seq + 1) >>> 0; // data carried on a SYN (TCP Fast Open) starts at ISN + 1
    }
    if (s.payload.length > 0 && dir.stored < MAX_FLIGHT_BYTES) {
      dir.segments.push({ seq, frame: pkt.frame, order: order++, payload: s.payload });
      dir.stored += s.payload.length;
      conn.hasData = true;
    }
  }

  const hellos: PcapClientHello[] = [];
  const problems: PcapProblem[] = [];
  for (const conn of ordered) {
    const dirs = [...conn.directions.values()];
    const opener = dirs.find((d) => d.opened);
    // Without the SYN we do not know who the client is; try both sides (a server never sends a ClientHello).
    const candidates = opener !== undefined ? [opener] : dirs;
    for (const dir of candidates) {
      findHellos(conn.index, dir, opener !== undefined, hellos, problems);
    }
  }
  return {
    format: raw.format,
    packets: raw.packets.length,
    hellos,
    problems,
    skipped: { quicPackets, ipFragments, unsupportedFrames },
    truncated: raw.truncated,
  };
}

function findHellos(
  stream: number,
  dir: Direction,
  knownClient: boolean,
  hellos: PcapClientHello[],
  problems: PcapProblem[],
): void {
  if (dir.segments.length === 0) return;
  const a = assemble(dir);
  const where = { stream, srcIp: dir.srcIp, srcPort: dir.srcPort, dstIp: dir.dstIp, dstPort: dir.dstPort };
  const pre = skipPreamble(a.bytes);
  if (pre === null) return;
  let pos = pre.offset;
  let index = 0;
  for (;;) {
    const rest = a.bytes.subarray(pos);
    const result = readClientHello(rest);
    if (result.kind === 'complete') {
      index++;
      hellos.push({
        ...where,
        indexInStream: index,
        frame: frameAt(a, pos + result.consumed - 1),
        preamble: pre.preamble,
        record: rest.subarray(0, result.consumed),
        hello: result.hello,
      });
      pos += result.consumed;
    } else {
      // Only report a broken hello where one was expected: the first TLS bytes of a known client.
      // After the first hello, whatever follows (ClientKeyExchange, encrypted records) is not a problem.
      if (index === 0 && knownClient && result.kind !== 'not-tls') {
        problems.push({
          ...where,
          message:
            result.kind === 'incomplete' ? 'ClientHello is incomplete in the capture (missing segments or capture ended)' : result.error.message,
        });
      }
      return;
    }
    // A second ClientHello follows a HelloRetryRequest (RFC 8446 §4.1.4), at most once. We do not require
    // the HRR itself in the capture (one-sided captures lack it, yet FoxIO's vectors count the second
    // hello): the record after the first hello must itself parse as a complete ClientHello, which the
    // client's later records (ClientKeyExchange, encrypted data) do not.
    if (index >= 2) return;
    // Skip the middlebox-compatibility ChangeCipherSpec records (RFC 8446 appendix D.4) before it.
    while (pos + 5 <= a.bytes.length && a.bytes[pos] === 0x14) {
      pos += 5 + (((a.bytes[pos + 3] as number) << 8) | (a.bytes[pos + 4] as number));
    }
    if (pos >= a.bytes.length) return;
  }
}
