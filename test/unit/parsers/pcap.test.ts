import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { PcapError, readPcapClientHellos } from '../../../src/parsers/pcap.js';
import { formatIPv6Bytes } from '../../../src/net/address-class.js';
import type { PcapReport } from '../../../src/parsers/pcap.js';
import { computeJa4 } from '../../../src/fingerprint/ja4.js';
import { FIXTURES, SPEC_EXAMPLE, buildHandshake, buildHelloBody, frameRecords, loadCaptureRows, loadVectorRows, u16 } from './hello-builder.js';

const VECTORS = `${FIXTURES}vectors/ja4-foxio/`;
const vectorRows = loadVectorRows();

interface PythonEntry {
  readonly stream: number;
  readonly src: string;
  readonly dst: string;
  readonly srcport: string;
  readonly dstport: string;
  readonly [key: string]: unknown;
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const readVectorPcap = (name: string): PcapReport => readPcapClientHellos(readFileSync(`${VECTORS}pcap/${name}`));

/** Copied pcaps with at least one TLS-over-TCP hello in derived/clienthellos.jsonl. */
const TCP_PCAPS = [
  'badcurveball.pcap',
  'browsers-x509.pcapng',
  'chrome-cloudflare-quic-with-secrets.pcapng',
  'https-connect.pcap',
  'https3-301-get.pcap',
  'ipv6.pcapng',
  'latest.pcapng',
  'macos_tcp_flags.pcap',
  'socks-https-example.pcap',
  'tls-alpn-h2.pcap',
  'tls-handshake.pcapng',
  'tls-non-ascii-alpn.pcapng',
  'tls-sni.pcapng',
  'tls12.pcap',
];

/**
 * tshark numbers `tcp.stream` in order of appearance, like we do, except in socks-https-example.pcap where
 * its SOCKS dissector makes extra conversations (its streams are 0, 2, 4; ours 0, 1, 2). There we match
 * connections by address and port instead.
 */
const TSHARK_STREAM_NUMBERING_DIFFERS = new Set(['socks-https-example.pcap']);

describe('readPcapClientHellos on the FoxIO captures', () => {
  it.each(TCP_PCAPS)('%s: the same hellos (bytes, frame, stream, index) as derived/clienthellos.jsonl', (name) => {
    const report = readVectorPcap(name);
    const expected = vectorRows.filter((r) => r.pcap === name);
    expect(report.hellos).toHaveLength(expected.length);
    for (const row of expected) {
      const match = report.hellos.find((h) => h.frame === row.frame && h.indexInStream === row.hello_index_in_stream);
      expect(match, `frame ${row.frame}`).toBeDefined();
      expect(hexOf(match?.record ?? new Uint8Array())).toBe(row.record_hex);
      if (!TSHARK_STREAM_NUMBERING_DIFFERS.has(name)) expect(match?.stream).toBe(row.tcp_stream);
    }
    expect(report.problems).toEqual([]);
  });

  it.each(TCP_PCAPS.filter((n) => n !== 'https-connect.pcap'))('%s: JA4/JA4_r equal FoxIO Python’s expected output', (name) => {
    const report = readVectorPcap(name);
    const entries = JSON.parse(readFileSync(`${VECTORS}expected/python/${name}.json`, 'utf8')) as PythonEntry[];
    let compared = 0;
    for (const e of entries) {
      for (let n = 1; typeof e[`JA4.${n}`] === 'string'; n++) {
        const h = report.hellos.find(
          (x) => x.srcIp === e.src && String(x.srcPort) === e.srcport && x.dstIp === e.dst && String(x.dstPort) === e.dstport && x.indexInStream === n,
        );
        expect(h, `${e.src}:${e.srcport} hello ${n}`).toBeDefined();
        if (h === undefined) continue;
        if (!TSHARK_STREAM_NUMBERING_DIFFERS.has(name)) expect(h.stream).toBe(e.stream);
        const got = computeJa4(h.hello);
        if (name === 'tls-non-ascii-alpn.pcapng') {
          // Spec over vector (see ja4.test.ts): the ALPN slot is "bd" per JA4.md, FoxIO Python says "99".
          expect(got.ja4).toBe(String(e[`JA4.${n}`]).replace('t13d151699', 't13d1516bd'));
        } else {
          expect(got.ja4).toBe(e[`JA4.${n}`]);
          expect(got.ja4R).toBe(e[`JA4_r.${n}`]);
        }
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(0);
  });

  it('finds the hello behind an HTTP CONNECT and gives FoxIO Rust’s JA4 (https-connect.pcap)', () => {
    const report = readVectorPcap('https-connect.pcap');
    expect(report.hellos).toHaveLength(1);
    const h = report.hellos[0];
    expect(h?.preamble).toBe('http-connect');
    expect(`${h?.srcIp}:${h?.srcPort} -> ${h?.dstIp}:${h?.dstPort}`).toBe('10.11.12.13:54723 -> 10.9.8.7:8080');
    expect(computeJa4(h!.hello).ja4).toBe('t12i860500_e18388e7f3a3_a1e935682795');
  });

  it('finds the hellos behind SOCKS 4a and SOCKS 5 (socks-https-example.pcap)', () => {
    const report = readVectorPcap('socks-https-example.pcap');
    // tshark's socks.version per client port: 53554 → 4, 53555 → 4, 53556 → 5.
    expect(report.hellos.map((h) => [h.srcPort, h.preamble])).toEqual([
      [53554, 'socks4'],
      [53555, 'socks4'],
      [53556, 'socks5'],
    ]);
    expect(report.hellos.every((h) => h.dstPort === 1080)).toBe(true);
  });

  it('finds the second hello after a HelloRetryRequest', () => {
    const report = readVectorPcap('tls-handshake.pcapng');
    const second = report.hellos.filter((h) => h.indexInStream === 2);
    expect(second.length).toBe(vectorRows.filter((r) => r.pcap === 'tls-handshake.pcapng' && r.hello_index_in_stream === 2).length);
    expect(second.length).toBeGreaterThan(0);
  });

  it('counts QUIC as skipped, without errors', () => {
    for (const name of ['quic-tls-handshake.pcapng', 'chrome-cloudflare-quic-with-secrets.pcapng']) {
      const report = readVectorPcap(name);
      expect(report.skipped.quicPackets, name).toBeGreaterThan(0);
      expect(report.problems).toEqual([]);
    }
    expect(readVectorPcap('quic-tls-handshake.pcapng').hellos).toEqual([]);
  });

  it('reads IPv6 addresses in RFC 5952 form', () => {
    const h = readVectorPcap('ipv6.pcapng').hellos[0];
    expect(h?.srcIp).toBe('2001:4998:ef83:14:8000::100d');
    expect(h?.dstIp).toBe('2606:4700::6811:d209');
    expect(formatIPv6Bytes(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), 0)).toBe('::1');
    expect(formatIPv6Bytes(Uint8Array.from([0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), 0)).toBe('2001:db8:0:1::1');
  });
});

describe('readPcapClientHellos on our own loopback captures', () => {
  const rows = loadCaptureRows();
  it.each([...new Set(rows.map((r) => r.pcap))])('%s', (pcap) => {
    const report = readPcapClientHellos(readFileSync(`${FIXTURES}tls/${pcap}`));
    const expected = rows.filter((r) => r.pcap === pcap);
    expect(report.format).toBe('pcapng');
    expect(report.hellos.map((h) => [h.stream, h.frame, hexOf(h.record)])).toEqual(expected.map((r) => [r.tcp_stream, r.frame, r.record_hex]));
    expect(report.hellos.every((h) => h.srcIp === '127.0.0.1' && h.dstIp === '127.0.0.1')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Synthetic captures: a small writer for every container, link type and TCP situation we claim to handle.

const HELLO = Array.from(frameRecords(buildHandshake(buildHelloBody(SPEC_EXAMPLE))));
const SPEC_JA4 = 't13d1516h2_8daaf6152771_e5627efa2ab1';

interface Seg {
  readonly seq: number;
  readonly flags: number; // 0x02 SYN, 0x10 ACK, 0x18 PSH|ACK
  readonly payload: readonly number[];
  readonly fromServer?: boolean;
}

const SYN = 0x02;
const SYNACK = 0x12;
const PSHACK = 0x18;

function tcp(srcPort: number, dstPort: number, s: Seg): number[] {
  return [
    ...u16(srcPort), ...u16(dstPort),
    (s.seq >>> 24) & 0xff, (s.seq >>> 16) & 0xff, (s.seq >>> 8) & 0xff, s.seq & 0xff,
    0, 0, 0, 0, 0x50, s.flags, 0xff, 0xff, 0, 0, 0, 0,
    ...s.payload,
  ];
}

function ipv4(src: number[], dst: number[], l4: number[]): number[] {
  const total = 20 + l4.length;
  return [0x45, 0, ...u16(total), 0, 0, 0x40, 0, 64, 6, 0, 0, ...src, ...dst, ...l4];
}

function ipv6WithExtensionHeaders(l4: number[]): number[] {
  // hop-by-hop (8 bytes) → destination options (8 bytes) → TCP
  const hbh = [60, 0, 1, 4, 0, 0, 0, 0];
  const dest = [6, 0, 1, 4, 0, 0, 0, 0];
  const src = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1];
  const dst = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 2];
  return [0x60, 0, 0, 0, ...u16(16 + l4.length), 0, 64, ...src, ...dst, ...hbh, ...dest, ...l4];
}

const CLIENT = [10, 0, 0, 1];
const SERVER = [10, 0, 0, 2];

/** IP packets of one connection, client port 40000 → server port 443. */
function ipPackets(segs: readonly Seg[], v6 = false): number[][] {
  return segs.map((s) => {
    const l4 = s.fromServer === true ? tcp(443, 40000, s) : tcp(40000, 443, s);
    if (v6) return ipv6WithExtensionHeaders(l4);
    return s.fromServer === true ? ipv4(SERVER, CLIENT, l4) : ipv4(CLIENT, SERVER, l4);
  });
}

type LinkWrap = (ip: number[]) => number[];
const LINK: Record<string, { type: number; wrap: LinkWrap }> = {
  ethernet: { type: 1, wrap: (ip) => [...new Array<number>(12).fill(0xaa), ...u16(ip[0] === 0x60 ? 0x86dd : 0x0800), ...ip] },
  'ethernet+vlan': { type: 1, wrap: (ip) => [...new Array<number>(12).fill(0xaa), 0x81, 0x00, 0x00, 0x05, ...u16(ip[0] === 0x60 ? 0x86dd : 0x0800), ...ip] },
  sll: { type: 113, wrap: (ip) => [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...u16(ip[0] === 0x60 ? 0x86dd : 0x0800), ...ip] },
  sll2: { type: 276, wrap: (ip) => [...u16(ip[0] === 0x60 ? 0x86dd : 0x0800), 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...ip] },
  null: { type: 0, wrap: (ip) => [ip[0] === 0x60 ? 30 : 2, 0, 0, 0, ...ip] },
  raw: { type: 101, wrap: (ip) => ip },
};

function classicPcap(linkType: number, frames: readonly number[][], opts: { bigEndian?: boolean; nanos?: boolean } = {}): Uint8Array {
  const le = opts.bigEndian !== true;
  const chunks: Buffer[] = [];
  const hdr = Buffer.alloc(24);
  const w32 = (b: Buffer, v: number, o: number): number => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const w16 = (b: Buffer, v: number, o: number): number => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  w32(hdr, opts.nanos === true ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(hdr, 2, 4);
  w16(hdr, 4, 6);
  w32(hdr, 262144, 16);
  w32(hdr, linkType, 20);
  chunks.push(hdr);
  frames.forEach((f, i) => {
    const rec = Buffer.alloc(16);
    w32(rec, 1700000000 + i, 0);
    w32(rec, 0, 4);
    w32(rec, f.length, 8);
    w32(rec, f.length, 12);
    chunks.push(rec, Buffer.from(f));
  });
  return Uint8Array.from(Buffer.concat(chunks));
}

function pcapngBlock(type: number, body: Buffer, le: boolean): Buffer {
  const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  const total = padded.length + 12;
  const b = Buffer.alloc(total);
  if (le) {
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(total, 4);
    b.writeUInt32LE(total, total - 4);
  } else {
    b.writeUInt32BE(type, 0);
    b.writeUInt32BE(total, 4);
    b.writeUInt32BE(total, total - 4);
  }
  padded.copy(b, 8);
  return b;
}

/** pcapng with one interface per link type; frames name their interface. SPB used for interface 0 if asked. */
function pcapng(linkTypes: readonly number[], frames: readonly { iface: number; data: number[] }[], opts: { bigEndian?: boolean; simple?: boolean } = {}): Uint8Array {
  const le = opts.bigEndian !== true;
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    if (le) b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    return b;
  };
  const u16b = (v: number): Buffer => {
    const b = Buffer.alloc(2);
    if (le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  };
  const shb = pcapngBlock(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d), u16b(1), u16b(0), Buffer.alloc(8, 0xff)]), le);
  const idbs = linkTypes.map((t) => pcapngBlock(1, Buffer.concat([u16b(t), u16b(0), u32(0)]), le));
  const pkts = frames.map((f) =>
    opts.simple === true && f.iface === 0
      ? pcapngBlock(3, Buffer.concat([u32(f.data.length), Buffer.from(f.data)]), le)
      : pcapngBlock(6, Buffer.concat([u32(f.iface), u32(0), u32(0), u32(f.data.length), u32(f.data.length), Buffer.from(f.data)]), le),
  );
  return Uint8Array.from(Buffer.concat([shb, ...idbs, ...pkts]));
}

const ISN = 0xfffffff0; // close to the wrap, so sequence arithmetic must be modular
const dataSeq = (offset: number): number => (ISN + 1 + offset) >>> 0;

function handshakeThen(payloadSegs: readonly Seg[]): Seg[] {
  return [{ seq: ISN, flags: SYN, payload: [] }, { seq: 5000, flags: SYNACK, payload: [], fromServer: true }, ...payloadSegs];
}

function only(report: PcapReport): string {
  expect(report.hellos).toHaveLength(1);
  return computeJa4(report.hellos[0]!.hello).ja4;
}

describe('readPcapClientHellos on synthetic captures', () => {
  const inOrder = handshakeThen([
    { seq: dataSeq(0), flags: PSHACK, payload: HELLO.slice(0, 100) },
    { seq: dataSeq(100), flags: PSHACK, payload: HELLO.slice(100) },
  ]);

  it.each(Object.keys(LINK))('link type %s in classic pcap', (name) => {
    const link = LINK[name]!;
    const report = readPcapClientHellos(classicPcap(link.type, ipPackets(inOrder).map(link.wrap)));
    expect(report.format).toBe('pcap');
    expect(only(report)).toBe(SPEC_JA4);
    expect(report.hellos[0]?.frame).toBe(4); // the frame with the hello's last byte
  });

  it.each([
    ['big-endian, µs', { bigEndian: true }],
    ['little-endian, ns', { nanos: true }],
    ['big-endian, ns', { bigEndian: true, nanos: true }],
  ] as const)('classic pcap %s', (_name, opts) => {
    expect(only(readPcapClientHellos(classicPcap(1, ipPackets(inOrder).map(LINK.ethernet!.wrap), opts)))).toBe(SPEC_JA4);
  });

  it('IPv6 with extension headers', () => {
    const report = readPcapClientHellos(classicPcap(101, ipPackets(inOrder, true)));
    expect(only(report)).toBe(SPEC_JA4);
    expect(report.hellos[0]?.srcIp).toBe('2001:db8::1');
  });

  it('pcapng: per-interface link types, both byte orders, simple packet blocks', () => {
    const packets = ipPackets(inOrder);
    const frames = packets.map((ip, i) => (i % 2 === 0 ? { iface: 0, data: LINK.raw!.wrap(ip) } : { iface: 1, data: LINK.sll!.wrap(ip) }));
    for (const opts of [{}, { bigEndian: true }, { simple: true }]) {
      const report = readPcapClientHellos(pcapng([101, 113], frames, opts));
      expect(report.format).toBe('pcapng');
      expect(only(report)).toBe(SPEC_JA4);
    }
  });

  it('reassembles out-of-order segments and ignores retransmissions and overlaps', () => {
    const segs = handshakeThen([
      { seq: dataSeq(300), flags: PSHACK, payload: HELLO.slice(300) },
      { seq: dataSeq(0), flags: PSHACK, payload: HELLO.slice(0, 150) },
      { seq: dataSeq(0), flags: PSHACK, payload: HELLO.slice(0, 150) }, // retransmission
      { seq: dataSeq(100), flags: PSHACK, payload: HELLO.slice(100, 300) }, // overlaps the first
    ]);
    const report = readPcapClientHellos(classicPcap(101, ipPackets(segs)));
    expect(only(report)).toBe(SPEC_JA4);
    expect(hexOf(report.hellos[0]!.record)).toBe(hexOf(Uint8Array.from(HELLO)));
  });

  it('works without the SYN (capture started mid-handshake)', () => {
    const segs = [
      { seq: 777, flags: PSHACK, payload: HELLO.slice(0, 60) },
      { seq: 837, flags: PSHACK, payload: HELLO.slice(60) },
    ];
    expect(only(readPcapClientHellos(classicPcap(101, ipPackets(segs))))).toBe(SPEC_JA4);
  });

  it('reports a hello cut by a lost segment as a problem, not as a fingerprint', () => {
    const segs = handshakeThen([
      { seq: dataSeq(0), flags: PSHACK, payload: HELLO.slice(0, 100) },
      { seq: dataSeq(200), flags: PSHACK, payload: HELLO.slice(200) },
    ]);
    const report = readPcapClientHellos(classicPcap(101, ipPackets(segs)));
    expect(report.hellos).toEqual([]);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]?.message).toContain('incomplete');
  });

  it('skips an HTTP CONNECT head and a SOCKS 5 greeting with user/password', () => {
    const connect = [...Buffer.from('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), ...HELLO];
    const socks5 = [
      0x05, 0x01, 0x02, // greeting: one method, user/password
      0x01, 0x01, 0x75, 0x01, 0x70, // RFC 1929: user "u", password "p"
      0x05, 0x01, 0x00, 0x03, 0x0b, ...Buffer.from('example.com'), 0x01, 0xbb, // CONNECT example.com:443
      ...HELLO,
    ];
    for (const [stream, preamble] of [[connect, 'http-connect'], [socks5, 'socks5']] as const) {
      const segs = handshakeThen([{ seq: dataSeq(0), flags: PSHACK, payload: stream }]);
      const report = readPcapClientHellos(classicPcap(101, ipPackets(segs)));
      expect(only(report)).toBe(SPEC_JA4);
      expect(report.hellos[0]?.preamble).toBe(preamble);
    }
  });

  it('ignores non-TLS connections silently', () => {
    const segs = handshakeThen([{ seq: dataSeq(0), flags: PSHACK, payload: [...Buffer.from('GET / HTTP/1.1\r\n\r\n')] }]);
    const report = readPcapClientHellos(classicPcap(101, ipPackets(segs)));
    expect(report.hellos).toEqual([]);
    expect(report.problems).toEqual([]);
  });

  it('reports a truncated file but keeps what came before', () => {
    const file = classicPcap(101, ipPackets(inOrder));
    const report = readPcapClientHellos(file.subarray(0, file.length - 10));
    expect(report.truncated).toBe(true);
    expect(report.packets).toBe(3);
  });

  it('throws PcapError on something that is not a capture', () => {
    expect(() => readPcapClientHellos(Uint8Array.from(Buffer.from('hello world')))).toThrow(PcapError);
    expect(() => readPcapClientHellos(new Uint8Array(2))).toThrow(PcapError);
  });
});
