/**
 * `egress-inspector fingerprint [--pcap FILE]` (SPEC "Fingerprint output").
 *
 * - No flag: each stdin line is the hex of one ClientHello TLS record (whitespace, `:` separators and an
 *   optional `0x` prefix are tolerated); prints one JSON object per line:
 *   `{"sni", "alpn", "ja3_full", "ja3", "ja4", "ja4_r"}`. A bad line prints `{"error": …}` and the run goes
 *   on; blank lines and `#` comments are skipped.
 * - `--pcap FILE`: one object per ClientHello over TCP with the same keys plus `src`, `dst` ("ip:port",
 *   IPv6 in brackets) and `stream`; a connection whose TLS bytes are broken prints `{"error", "stream",
 *   "src", "dst"}`; QUIC is out of scope and summarised in one final `{"skipped": "quic", …}` line.
 *
 * Exit code: 0 when every input gave a fingerprint, 1 when some line or connection gave an error (all were
 * still processed), 2 when the input could not be read at all (missing file, not a capture).
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { readClientHello } from '../parsers/client-hello.js';
import type { ClientHello } from '../parsers/client-hello.js';
import { PcapError, readPcapClientHellos } from '../parsers/pcap.js';
import type { PcapReport } from '../parsers/pcap.js';
import { computeJa3 } from '../fingerprint/ja3.js';
import { computeJa4 } from '../fingerprint/ja4.js';

export interface FingerprintOptions {
  readonly pcap?: string;
}

export interface FingerprintIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
}

/** The SPEC's output object for one ClientHello. */
export interface FingerprintLine {
  readonly sni: string | null;
  readonly alpn: readonly string[];
  readonly ja3_full: string;
  readonly ja3: string;
  readonly ja4: string;
  readonly ja4_r: string;
}

export function fingerprintLineOf(hello: ClientHello): FingerprintLine {
  const ja3 = computeJa3(hello);
  const ja4 = computeJa4(hello, 'tcp');
  return { sni: hello.serverName, alpn: hello.alpn ?? [], ja3_full: ja3.ja3Full, ja3: ja3.ja3, ja4: ja4.ja4, ja4_r: ja4.ja4R };
}

const HEX_SEPARATORS = /[\s:]+/g;
const HEX_ONLY = /^[0-9a-fA-F]*$/;

/** Decodes one input line; returns an error message instead of throwing. */
export function decodeHexLine(line: string): Uint8Array | string {
  let hex = line.replace(HEX_SEPARATORS, '');
  if (hex.startsWith('0x') || hex.startsWith('0X')) hex = hex.slice(2);
  if (!HEX_ONLY.test(hex)) return 'line is not hex';
  if (hex.length % 2 !== 0) return 'odd number of hex digits';
  return Buffer.from(hex, 'hex');
}

/** Fingerprint of one hex line, or the reason it has none. */
export function fingerprintHexLine(line: string): FingerprintLine | { readonly error: string } {
  const bytes = decodeHexLine(line);
  if (typeof bytes === 'string') return { error: bytes };
  const result = readClientHello(bytes);
  switch (result.kind) {
    case 'complete':
      return fingerprintLineOf(result.hello);
    case 'incomplete':
      return { error: `truncated ClientHello record (${bytes.length} bytes)` };
    case 'not-tls':
      return { error: `not a TLS ClientHello record: ${result.reason}` };
    case 'invalid':
      return { error: result.error.message };
  }
}

async function writeLine(out: NodeJS.WritableStream, value: unknown): Promise<void> {
  // Honour back-pressure so that a huge pcap piped into `head` does not buffer everything in memory.
  if (!out.write(`${JSON.stringify(value)}\n`)) {
    await new Promise<void>((resolve) => out.once('drain', resolve));
  }
}

function formatEndpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

async function runHexMode(io: FingerprintIo): Promise<number> {
  let failed = false;
  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const out = fingerprintHexLine(trimmed);
    if ('error' in out) failed = true;
    await writeLine(io.stdout, out);
  }
  return failed ? 1 : 0;
}

async function runPcapMode(path: string, io: FingerprintIo): Promise<number> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (err) {
    await writeLine(io.stdout, { error: `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}` });
    return 2;
  }
  let report: PcapReport;
  try {
    report = readPcapClientHellos(file);
  } catch (err) {
    if (err instanceof PcapError) {
      await writeLine(io.stdout, { error: `${path}: ${err.message}` });
      return 2;
    }
    throw err;
  }
  // Interleave hellos and problems in stream order so the output reads like the capture.
  const items = [
    ...report.hellos.map((h) => ({ stream: h.stream, order: h.indexInStream, h, p: null })),
    ...report.problems.map((p) => ({ stream: p.stream, order: 0, h: null, p })),
  ].sort((x, y) => x.stream - y.stream || x.order - y.order);
  for (const item of items) {
    if (item.h !== null) {
      const h = item.h;
      await writeLine(io.stdout, {
        ...fingerprintLineOf(h.hello),
        src: formatEndpoint(h.srcIp, h.srcPort),
        dst: formatEndpoint(h.dstIp, h.dstPort),
        stream: h.stream,
      });
    } else if (item.p !== null) {
      const p = item.p;
      await writeLine(io.stdout, { error: p.message, stream: p.stream, src: formatEndpoint(p.srcIp, p.srcPort), dst: formatEndpoint(p.dstIp, p.dstPort) });
    }
  }
  if (report.skipped.quicPackets > 0) {
    await writeLine(io.stdout, { skipped: 'quic', packets: report.skipped.quicPackets, reason: 'QUIC ClientHellos are not decoded (out of scope)' });
  }
  if (report.truncated) await writeLine(io.stdout, { error: `${path}: capture ends inside a packet; later packets are missing` });
  return report.problems.length > 0 || report.truncated ? 1 : 0;
}

export async function runFingerprint(opts: FingerprintOptions, io: FingerprintIo): Promise<number> {
  return opts.pcap === undefined ? runHexMode(io) : runPcapMode(opts.pcap, io);
}
