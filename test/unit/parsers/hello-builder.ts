/**
 * Test helpers: build ClientHello bytes field by field, frame them into TLS records, and load the
 * fixture vectors. Shared by the parser, fingerprint, pcap and CLI tests.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

export interface VectorRow {
  readonly pcap: string;
  readonly frame: number;
  readonly tcp_stream: number;
  readonly hello_index_in_stream: number;
  readonly record_hex: string;
  readonly sni: string | null;
  readonly alpn: readonly string[] | null;
  readonly ja3_full: string;
  readonly ja3: string;
  readonly ja4_wireshark_4_4_19: string;
  readonly ja4_r_wireshark_4_4_19: string;
  readonly foxio_expected_python?: { readonly JA4: string; readonly JA4_r: string; readonly JA4_o: string; readonly JA4_ro: string };
  readonly foxio_expected_rust_ja4?: string;
}

export interface CaptureRow {
  readonly client: string;
  readonly pcap: string;
  readonly frame: number;
  readonly tcp_stream: number;
  readonly record_hex: string;
  readonly sni: string | null;
  readonly tshark_ja3: string;
  readonly tshark_ja3_full: string;
}

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export function loadVectorRows(): VectorRow[] {
  return readJsonl<VectorRow>(`${FIXTURES}vectors/ja4-foxio/derived/clienthellos.jsonl`);
}

export function loadCaptureRows(): CaptureRow[] {
  return readJsonl<CaptureRow>(`${FIXTURES}tls/clienthellos.jsonl`);
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export function u16(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}

export function u24(v: number): number[] {
  return [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
}

export function vec8(body: readonly number[]): number[] {
  return [body.length, ...body];
}

export function vec16(body: readonly number[]): number[] {
  return [...u16(body.length), ...body];
}

export function u16List(values: readonly number[]): number[] {
  return values.flatMap(u16);
}

export function ascii(s: string): number[] {
  return [...Buffer.from(s, 'latin1')];
}

export interface ExtensionSpec {
  readonly type: number;
  readonly data: readonly number[];
}

export const ext = {
  sni: (name: string): ExtensionSpec => ({ type: 0x0000, data: vec16([0, ...vec16(ascii(name))]) }),
  alpn: (...names: (string | number[])[]): ExtensionSpec => ({
    type: 0x0010,
    data: vec16(names.flatMap((n) => vec8(typeof n === 'string' ? ascii(n) : n))),
  }),
  supportedVersions: (...versions: number[]): ExtensionSpec => ({ type: 0x002b, data: vec8(u16List(versions)) }),
  supportedGroups: (...groups: number[]): ExtensionSpec => ({ type: 0x000a, data: vec16(u16List(groups)) }),
  ecPointFormats: (...formats: number[]): ExtensionSpec => ({ type: 0x000b, data: vec8(formats) }),
  signatureAlgorithms: (...algs: number[]): ExtensionSpec => ({ type: 0x000d, data: vec16(u16List(algs)) }),
  signatureAlgorithmsCert: (...algs: number[]): ExtensionSpec => ({ type: 0x0032, data: vec16(u16List(algs)) }),
  keyShare: (...shares: [number, number][]): ExtensionSpec => ({
    type: 0x0033,
    data: vec16(shares.flatMap(([group, len]) => [...u16(group), ...vec16(new Array<number>(len).fill(7))])),
  }),
  pskModes: (...modes: number[]): ExtensionSpec => ({ type: 0x002d, data: vec8(modes) }),
  ech: (): ExtensionSpec => ({ type: 0xfe0d, data: [0, 0, 1, 0, 1, 0x42, 0, 0, 0, 0] }),
  empty: (type: number): ExtensionSpec => ({ type, data: [] }),
};

export interface HelloSpec {
  readonly legacyVersion?: number;
  readonly sessionId?: readonly number[];
  readonly ciphers?: readonly number[];
  readonly compression?: readonly number[];
  /** undefined = no extensions block at all. */
  readonly extensions?: readonly ExtensionSpec[];
}

/** The ClientHello body (after the 4-byte handshake header). */
export function buildHelloBody(spec: HelloSpec): number[] {
  const out = [
    ...u16(spec.legacyVersion ?? 0x0303),
    ...new Array<number>(32).fill(0x11),
    ...vec8(spec.sessionId ?? []),
    ...vec16(u16List(spec.ciphers ?? [0x1301])),
    ...vec8(spec.compression ?? [0]),
  ];
  if (spec.extensions !== undefined) out.push(...vec16(spec.extensions.flatMap((e) => [...u16(e.type), ...vec16(e.data)])));
  return out;
}

/** Handshake message: msg_type 1, 3-byte length, body. */
export function buildHandshake(body: readonly number[], msgType = 1): number[] {
  return [msgType, ...u24(body.length), ...body];
}

/** Frames handshake bytes into TLS handshake records of at most `fragment` bytes each. */
export function frameRecords(handshake: readonly number[], fragment = 16_384, recordVersion = 0x0301): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < handshake.length; i += fragment) {
    const piece = handshake.slice(i, i + fragment);
    out.push(0x16, ...u16(recordVersion), ...u16(piece.length), ...piece);
  }
  return Uint8Array.from(out);
}

/** Frames handshake bytes into records with the given fragment sizes (the last takes the rest). */
export function frameRecordsAt(handshake: readonly number[], sizes: readonly number[]): Uint8Array {
  const out: number[] = [];
  let i = 0;
  for (const size of sizes) {
    if (i >= handshake.length) break;
    const piece = handshake.slice(i, i + size);
    out.push(0x16, 0x03, 0x01, ...u16(piece.length), ...piece);
    i += piece.length;
  }
  if (i < handshake.length) {
    const piece = handshake.slice(i);
    out.push(0x16, 0x03, 0x01, ...u16(piece.length), ...piece);
  }
  return Uint8Array.from(out);
}

export function buildRecord(spec: HelloSpec): Uint8Array {
  return frameRecords(buildHandshake(buildHelloBody(spec)));
}

/** The example hello of FoxIO JA4.md ("Example" and "Raw Output" sections). */
export const SPEC_EXAMPLE: HelloSpec = {
  ciphers: [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035],
  extensions: [
    ext.empty(0x001b),
    ext.sni('example.com'),
    ext.keyShare([0x001d, 32]),
    ext.alpn('h2', 'http/1.1'),
    ext.empty(0x4469),
    ext.empty(0x0017),
    ext.pskModes(1),
    ext.signatureAlgorithms(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
    ext.empty(0x0005),
    ext.empty(0x0023),
    ext.empty(0x0012),
    ext.supportedVersions(0x0304, 0x0303),
    ext.empty(0xff01),
    ext.ecPointFormats(0),
    ext.supportedGroups(0x001d, 0x0017, 0x0018),
    ext.empty(0x0015),
  ],
};
