import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readServerFlight } from '../../../src/parsers/server-hello.js';
import type { ServerHello } from '../../../src/parsers/server-hello.js';
import { computeJa4s } from '../../../src/fingerprint/ja4s.js';
import { TLS12_HELLO, TLS13_HELLO, firstServerHellos, frameRecords, handshakeMessage, loadFoxioServerCases, serverHelloBody } from '../../helpers/pcap-server-flights.js';
import type { ServerHelloSpec } from '../../helpers/pcap-server-flights.js';
import { FIXTURES } from '../parsers/hello-builder.js';

const VECTORS = `${FIXTURES}vectors/ja4-foxio/`;
/** Connections with a JA4S in the in-tree copy of FoxIO's python outputs (15 of their pcaps). */
const EXPECTED_JA4S_CASES = 73;
const sha12 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);

function helloOf(spec: ServerHelloSpec): ServerHello {
  const r = readServerFlight(Uint8Array.from(frameRecords([...handshakeMessage(2, serverHelloBody(spec)), ...handshakeMessage(14, [])])));
  if (r.kind !== 'complete') throw new Error(`not complete: ${r.kind}`);
  return r.hello;
}

describe('JA4S on the FoxIO vectors (expected/python, FoxIO License 1.1 test data)', () => {
  const cases = loadFoxioServerCases(VECTORS).filter((c) => c.entry.JA4S !== undefined);

  it('finds the server flight of every connection that has a JA4S', () => {
    expect(cases.length).toBe(EXPECTED_JA4S_CASES);
    expect(cases.filter((c) => c.flight === undefined).map((c) => `${c.pcap}#${c.entry.stream}`)).toEqual([]);
  });

  it.each(cases.map((c) => [`${c.pcap} stream ${c.entry.stream}`, c] as const))('%s', (_name, c) => {
    const hellos = firstServerHellos(c.flight?.bytes ?? new Uint8Array(0));
    const hello = hellos[0];
    if (hello === undefined) throw new Error('no complete ServerHello in the flight');
    const got = computeJa4s(hello);
    expect(got.ja4s).toBe(c.entry.JA4S);
    expect(got.ja4s_r).toBe(c.entry.JA4S_r);
  });
});

describe('JA4S rules (JA4S.png, FoxIO python/rust)', () => {
  it('TLS 1.3: version from supported_versions, extensions in wire order, no ALPN → 00', () => {
    const got = computeJa4s(helloOf(TLS13_HELLO));
    expect(got.ja4s_r).toBe('t130200_1301_002b,0033');
    expect(got.ja4s).toBe(`t130200_1301_${sha12('002b,0033')}`);
    // The value FoxIO's vectors show for the Meta and Akamai servers of tls-handshake.pcapng.
    expect(got.ja4s).toBe('t130200_1301_a56c5b993250');
  });

  it('does not sort the extensions: another order is another fingerprint', () => {
    const swapped = { ...TLS13_HELLO, extensions: [...(TLS13_HELLO.extensions ?? [])].reverse() };
    const got = computeJa4s(helloOf(swapped));
    expect(got.ja4s_r).toBe('t130200_1301_0033,002b');
    // …which is what FoxIO's vectors show for Google's and Cloudflare's servers (key_share first).
    expect(got.ja4s).toBe('t130200_1301_234ea6891581');
  });

  it('TLS 1.2 with ALPN h2: legacy_version, first and last ALPN characters', () => {
    expect(computeJa4s(helloOf(TLS12_HELLO)).ja4s_r).toBe('t1204h2_c02f_ff01,000b,0023,0010');
  });

  it('ALPN http/1.1 → h1; a hello without extensions → 00 count and twelve zeros', () => {
    const h11 = { cipherSuite: 0xc02b, extensions: [{ type: 0x0010, data: [0, 9, 8, ...Buffer.from('http/1.1')] }] };
    expect(computeJa4s(helloOf(h11)).ja4s).toBe(`t1201h1_c02b_${sha12('0010')}`);
    expect(computeJa4s(helloOf({ legacyVersion: 0x0301, cipherSuite: 0x0005, extensions: null }))).toEqual({
      ja4s: 't100000_0005_000000000000',
      ja4s_r: 't100000_0005_',
    });
  });

  it('counts GREASE extensions (the references keep them on the server side), caps the count at 99, marks QUIC with q', () => {
    const many = { cipherSuite: 0x1301, extensions: Array.from({ length: 120 }, (_, i) => ({ type: i === 0 ? 0x0a0a : 0x1000 + i, data: [] })) };
    const got = computeJa4s(helloOf(many));
    expect(got.ja4s.slice(0, 7)).toBe('t129900');
    expect(got.ja4s_r.split('_')[2]?.startsWith('0a0a,')).toBe(true);
    expect(computeJa4s(helloOf(TLS13_HELLO), 'quic').ja4s.startsWith('q1302')).toBe(true);
  });

  it('an unknown version gives 00', () => {
    expect(computeJa4s(helloOf({ legacyVersion: 0x7f1c, cipherSuite: 0x1301, extensions: null })).ja4s.slice(0, 3)).toBe('t00');
  });
});
