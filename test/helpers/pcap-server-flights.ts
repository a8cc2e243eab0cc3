/**
 * Test-only: the server→client TCP bytes of every connection in a pcap/pcapng file, reassembled in sequence
 * order, so server-side parsers (ServerHello, Certificate) can be checked against FoxIO's expected outputs
 * without tshark. src/parsers/pcap.ts keeps only client flights and does not export its layers, so this is a
 * compact copy of the parts we need: classic pcap + pcapng (EPB/SPB), Ethernet (VLAN), Linux SLL/SLL2, BSD
 * loopback and raw IP, IPv4 (unfragmented) and IPv6 (no extension headers), TCP.
 *
 * Streams are numbered in order of first appearance, a SYN on a used tuple starting a new one — tshark's
 * `tcp.stream`, which is FoxIO python's `stream`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { formatIPv6Bytes } from '../../src/net/address-class.js';
import { readServerFlight } from '../../src/parsers/server-hello.js';
import type { ServerHello } from '../../src/parsers/server-hello.js';

export interface ServerFlight {
  readonly stream: number;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly serverIp: string;
  readonly serverPort: number;
  /** The server's bytes from its first TLS record on (a SOCKS/CONNECT reply before it skipped). */
  readonly bytes: Uint8Array;
}

interface Seg {
  readonly seq: number;
  readonly payload: Uint8Array;
}

interface Dir {
  readonly ip: string;
  readonly port: number;
  isn: number | null;
  sentSynOnly: boolean;
  sentSynAck: boolean;
  readonly segs: Seg[];
}

interface Conn {
  readonly index: number;
  readonly dirs: Map<string, Dir>;
  hasData: boolean;
}

function packetsOf(buf: Uint8Array): { linkType: number; data: Uint8Array }[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: { linkType: number; data: Uint8Array }[] = [];
  const magic = dv.getUint32(0, false);
  if (magic === 0x0a0d0d0a) {
    let le = true;
    let ifaces: number[] = [];
    for (let pos = 0; pos + 12 <= buf.length; ) {
      if (dv.getUint32(pos, true) === 0x0a0d0d0a) {
        le = dv.getUint32(pos + 8, true) === 0x1a2b3c4d;
        ifaces = [];
      }
      const type = dv.getUint32(pos, le);
      const total = dv.getUint32(pos + 4, le);
      if (total < 12 || pos + total > buf.length) break;
      const body = pos + 8;
      if (type === 1) ifaces.push(dv.getUint16(body, le));
      else if (type === 6) {
        const lt = ifaces[dv.getUint32(body, le)];
        const cap = dv.getUint32(body + 12, le);
        if (lt !== undefined) out.push({ linkType: lt, data: buf.subarray(body + 20, body + 20 + cap) });
      } else if (type === 3) {
        const lt = ifaces[0];
        const len = Math.min(dv.getUint32(body, le), total - 16);
        if (lt !== undefined) out.push({ linkType: lt, data: buf.subarray(body + 4, body + 4 + len) });
      }
      pos += total;
    }
    return out;
  }
  const le = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  const linkType = dv.getUint32(20, le) & 0x0fffffff;
  for (let pos = 24; pos + 16 <= buf.length; ) {
    const cap = dv.getUint32(pos + 8, le);
    if (pos + 16 + cap > buf.length) break;
    out.push({ linkType, data: buf.subarray(pos + 16, pos + 16 + cap) });
    pos += 16 + cap;
  }
  return out;
}

function ipOf(linkType: number, d: Uint8Array): Uint8Array | null {
  if (linkType === 1) {
    let off = 12;
    let et = ((d[12] ?? 0) << 8) | (d[13] ?? 0);
    while ((et === 0x8100 || et === 0x88a8) && d.length >= off + 8) {
      off += 4;
      et = ((d[off] ?? 0) << 8) | (d[off + 1] ?? 0);
    }
    return et === 0x0800 || et === 0x86dd ? d.subarray(off + 2) : null;
  }
  if (linkType === 113) return d.subarray(16);
  if (linkType === 276) return d.subarray(20);
  if (linkType === 0 || linkType === 108) return d.subarray(4);
  if (linkType === 101 || linkType === 12 || linkType === 228 || linkType === 229) return d;
  return null;
}

function tcpOf(ip: Uint8Array): { src: string; dst: string; tcp: Uint8Array } | null {
  const v = (ip[0] ?? 0) >> 4;
  if (v === 4) {
    const ihl = ((ip[0] ?? 0) & 0x0f) * 4;
    const total = ((ip[2] ?? 0) << 8) | (ip[3] ?? 0);
    if (ip[9] !== 6) return null;
    const end = total >= ihl && total <= ip.length ? total : ip.length;
    const f = (n: number): string => `${ip[n] ?? 0}.${ip[n + 1] ?? 0}.${ip[n + 2] ?? 0}.${ip[n + 3] ?? 0}`;
    return { src: f(12), dst: f(16), tcp: ip.subarray(ihl, end) };
  }
  if (v === 6) {
    if (ip[6] !== 6 || ip.length < 40) return null;
    const len = ((ip[4] ?? 0) << 8) | (ip[5] ?? 0);
    const end = len > 0 && 40 + len <= ip.length ? 40 + len : ip.length;
    return { src: formatIPv6Bytes(ip, 8), dst: formatIPv6Bytes(ip, 24), tcp: ip.subarray(40, end) };
  }
  return null;
}

/** First offset in the first KiB where a TLS handshake record carrying a ServerHello starts. */
function tlsStart(b: Uint8Array): number {
  for (let i = 0; i + 6 <= Math.min(b.length, 1024); i++) {
    if (b[i] === 0x16 && b[i + 1] === 0x03 && (b[i + 2] ?? 9) <= 4 && b[i + 5] === 0x02) return i;
  }
  return -1;
}

function assemble(dir: Dir): Uint8Array {
  if (dir.segs.length === 0) return new Uint8Array(0);
  const base = dir.isn !== null ? (dir.isn + 1) >>> 0 : (dir.segs[0] as Seg).seq;
  const sorted = dir.segs.map((s) => ({ rel: (s.seq - base) | 0, p: s.payload })).sort((x, y) => x.rel - y.rel);
  let cursor = dir.isn !== null ? 0 : (sorted[0] as { rel: number }).rel;
  const parts: Uint8Array[] = [];
  for (const { rel, p } of sorted) {
    if (rel > cursor) break;
    const end = rel + p.length;
    if (end <= cursor) continue;
    parts.push(p.subarray(cursor - rel));
    cursor = end;
  }
  return Uint8Array.from(Buffer.concat(parts));
}

/** Every connection's server flight (connections where no ServerHello-looking record is found are left out). */
export function readServerFlights(path: string): ServerFlight[] {
  const file = new Uint8Array(readFileSync(path));
  const conns = new Map<string, Conn>();
  const ordered: Conn[] = [];
  for (const pkt of packetsOf(file)) {
    const ip = ipOf(pkt.linkType, pkt.data);
    if (ip === null || ip.length < 20) continue;
    const t = tcpOf(ip);
    if (t === null || t.tcp.length < 20) continue;
    const s = t.tcp;
    const sport = ((s[0] ?? 0) << 8) | (s[1] ?? 0);
    const dport = ((s[2] ?? 0) << 8) | (s[3] ?? 0);
    const seq = (((s[4] ?? 0) << 24) | ((s[5] ?? 0) << 16) | ((s[6] ?? 0) << 8) | (s[7] ?? 0)) >>> 0;
    const off = ((s[12] ?? 0) >> 4) * 4;
    const flags = s[13] ?? 0;
    const syn = (flags & 0x02) !== 0;
    const ack = (flags & 0x10) !== 0;
    const payload = s.subarray(Math.min(off, s.length));
    const a = `${t.src}|${sport}`;
    const b = `${t.dst}|${dport}`;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    let conn = conns.get(key);
    if (conn !== undefined && syn && !ack && conn.hasData) {
      const prev = conn.dirs.get(a);
      if (prev === undefined || prev.isn !== seq) conn = undefined;
    }
    if (conn === undefined) {
      conn = { index: ordered.length, dirs: new Map(), hasData: false };
      conns.set(key, conn);
      ordered.push(conn);
    }
    let dir = conn.dirs.get(a);
    if (dir === undefined) {
      dir = { ip: t.src, port: sport, isn: null, sentSynOnly: false, sentSynAck: false, segs: [] };
      conn.dirs.set(a, dir);
    }
    if (syn) {
      dir.isn = seq;
      if (ack) dir.sentSynAck = true;
      else dir.sentSynOnly = true;
    }
    if (payload.length > 0) {
      dir.segs.push({ seq: syn ? (seq + 1) >>> 0 : seq, payload });
      conn.hasData = true;
    }
  }
  const out: ServerFlight[] = [];
  for (const conn of ordered) {
    const dirs = [...conn.dirs.values()];
    for (const server of dirs) {
      if (server.sentSynOnly) continue;
      const client = dirs.find((d) => d !== server);
      if (client === undefined) continue;
      const bytes = assemble(server);
      const start = tlsStart(bytes);
      if (start < 0) continue;
      out.push({ stream: conn.index, clientIp: client.ip, clientPort: client.port, serverIp: server.ip, serverPort: server.port, bytes: bytes.subarray(start) });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Building server flights field by field (for the parser, fingerprint and fuzz tests).

const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const be24 = (v: number): number[] => [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];

export interface ServerHelloSpec {
  readonly legacyVersion?: number;
  readonly random?: readonly number[];
  readonly sessionId?: readonly number[];
  readonly cipherSuite: number;
  readonly compressionMethod?: number;
  /** null: no extensions block at all (legal up to TLS 1.2). */
  readonly extensions?: readonly { readonly type: number; readonly data: readonly number[] }[] | null;
}

/** RFC 8446 §4.1.3 HelloRetryRequest random. */
export const HRR_RANDOM: readonly number[] = [...Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex')];

export function serverHelloBody(spec: ServerHelloSpec): number[] {
  const sid = spec.sessionId ?? [];
  const out = [
    ...be16(spec.legacyVersion ?? 0x0303),
    ...(spec.random ?? Array.from({ length: 32 }, (_, i) => i + 1)),
    sid.length,
    ...sid,
    ...be16(spec.cipherSuite),
    spec.compressionMethod ?? 0,
  ];
  if (spec.extensions !== null) {
    const exts = (spec.extensions ?? []).flatMap((e) => [...be16(e.type), ...be16(e.data.length), ...e.data]);
    out.push(...be16(exts.length), ...exts);
  }
  return out;
}

export function handshakeMessage(type: number, body: readonly number[]): number[] {
  return [type, ...be24(body.length), ...body];
}

/** TLS ≤ 1.2 Certificate body (RFC 5246 §7.4.2). */
export function certificateBody(ders: readonly Uint8Array[]): number[] {
  const list = ders.flatMap((d) => [...be24(d.length), ...d]);
  return [...be24(list.length), ...list];
}

/**
 * Frames handshake bytes into records: `sizes` gives the fragment length of each record in turn (the rest
 * goes into one last record); an empty `sizes` puts everything in one record.
 */
export function frameRecords(handshake: readonly number[], sizes: readonly number[] = [], contentType = 0x16): number[] {
  const out: number[] = [];
  let pos = 0;
  for (const size of sizes) {
    if (pos >= handshake.length) break;
    const frag = handshake.slice(pos, pos + size);
    out.push(contentType, 0x03, 0x03, ...be16(frag.length), ...frag);
    pos += frag.length;
  }
  if (pos < handshake.length) {
    const frag = handshake.slice(pos);
    out.push(contentType, 0x03, 0x03, ...be16(frag.length), ...frag);
  }
  return out;
}

/** A TLS 1.3 ServerHello: supported_versions (0x0304), then an X25519 key_share. */
export const TLS13_HELLO: ServerHelloSpec = {
  cipherSuite: 0x1301,
  sessionId: Array.from({ length: 32 }, () => 0xab),
  extensions: [
    { type: 0x002b, data: [0x03, 0x04] },
    { type: 0x0033, data: [0x00, 0x1d, 0x00, 0x20, ...Array.from({ length: 32 }, () => 7)] },
  ],
};

/** A TLS 1.2 ServerHello with renegotiation_info, ec_point_formats, session_ticket and ALPN h2. */
export const TLS12_HELLO: ServerHelloSpec = {
  cipherSuite: 0xc02f,
  extensions: [
    { type: 0xff01, data: [0x00] },
    { type: 0x000b, data: [0x01, 0x00] },
    { type: 0x0023, data: [] },
    { type: 0x0010, data: [0x00, 0x03, 0x02, 0x68, 0x32] },
  ],
};

// ---------------------------------------------------------------------------------------------------------
// FoxIO's expected python outputs joined with our reassembled server flights.

/** One connection of FoxIO's expected python output (`python3 ja4.py <pcap> -J -r -o`). */
export interface FoxioEntry {
  readonly stream: number;
  readonly src: string;
  readonly dst: string;
  readonly srcport: string;
  readonly dstport: string;
  readonly JA4S?: string;
  readonly JA4S_r?: string;
  /** `JA4X.1`, `JA4X.2`, …: the n-th certificate of the chain, leaf first. */
  readonly [key: string]: unknown;
}

export interface FoxioServerCase {
  readonly pcap: string;
  readonly entry: FoxioEntry;
  /** The server flight of the same connection (4-tuple), when our reassembly found one. */
  readonly flight: ServerFlight | undefined;
}

/** The `JA4X.n` values of an entry, in chain order. */
export function ja4xValues(entry: FoxioEntry): string[] {
  const out: string[] = [];
  for (let n = 1; typeof entry[`JA4X.${n}`] === 'string'; n++) out.push(entry[`JA4X.${n}`] as string);
  return out;
}

/** Every connection of every pcap in `vectorsDir` whose python output has a JA4S or a JA4X. */
export function loadFoxioServerCases(vectorsDir: string): FoxioServerCase[] {
  const out: FoxioServerCase[] = [];
  for (const pcap of readdirSync(`${vectorsDir}pcap`).sort()) {
    const entries = JSON.parse(readFileSync(`${vectorsDir}expected/python/${pcap}.json`, 'utf8')) as FoxioEntry[];
    if (!entries.some((e) => e.JA4S !== undefined || e['JA4X.1'] !== undefined)) continue;
    const flights = readServerFlights(`${vectorsDir}pcap/${pcap}`);
    for (const entry of entries) {
      if (entry.JA4S === undefined && entry['JA4X.1'] === undefined) continue;
      // FoxIO's `src` is the client and `dst` the server. Match on the 4-tuple: tshark's tcp.stream numbers
      // can differ from ours (socks-https-example.pcap: tshark says 0, 2, 4 where we count 0, 1, 2); the
      // stream index only breaks ties between connections that reused a tuple.
      const same = flights.filter(
        (f) => f.clientIp === entry.src && String(f.clientPort) === entry.srcport && f.serverIp === entry.dst && String(f.serverPort) === entry.dstport,
      );
      const flight = same.length <= 1 ? same[0] : (same.find((f) => f.stream === entry.stream) ?? same[0]);
      out.push({ pcap, entry, flight });
    }
  }
  return out;
}

/**
 * The ServerHello(s) at the front of a server flight: the first one and, when it is a HelloRetryRequest,
 * the real ServerHello that follows it (after any middlebox-compatibility ChangeCipherSpec records).
 */
export function firstServerHellos(bytes: Uint8Array): ServerHello[] {
  const out: ServerHello[] = [];
  let pos = 0;
  for (let i = 0; i < 2; i++) {
    const r = readServerFlight(bytes.subarray(pos));
    if (r.kind !== 'complete') break;
    out.push(r.hello);
    if (!r.hello.helloRetryRequest) break;
    pos += r.consumed;
    while (pos + 5 <= bytes.length && bytes[pos] === 0x14) pos += 5 + (((bytes[pos + 3] ?? 0) << 8) | (bytes[pos + 4] ?? 0));
  }
  return out;
}
