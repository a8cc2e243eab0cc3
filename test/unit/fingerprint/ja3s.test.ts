import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readServerFlight } from '../../../src/parsers/server-hello.js';
import type { ServerHello } from '../../../src/parsers/server-hello.js';
import { computeJa3s, formatJa3s } from '../../../src/fingerprint/ja3s.js';
import { TLS12_HELLO, TLS13_HELLO, frameRecords, handshakeMessage, serverHelloBody } from '../../helpers/pcap-server-flights.js';
import type { ServerHelloSpec } from '../../helpers/pcap-server-flights.js';

function helloOf(spec: ServerHelloSpec): ServerHello {
  const r = readServerFlight(Uint8Array.from(frameRecords([...handshakeMessage(2, serverHelloBody(spec)), ...handshakeMessage(14, [])])));
  if (r.kind !== 'complete') throw new Error(`not complete: ${r.kind}`);
  return r.hello;
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

describe('JA3S (salesforce/ja3 python/ja3s.py, zeek/ja3s.zeek)', () => {
  it('TLS 1.3: legacy_version 771 (not supported_versions), decimal cipher, extension types in wire order', () => {
    const got = computeJa3s(helloOf(TLS13_HELLO));
    expect(got.ja3sFull).toBe('771,4865,43-51');
    expect(got.ja3s).toBe(md5('771,4865,43-51'));
    expect(got.ja3s).toMatch(/^[0-9a-f]{32}$/);
  });

  it('TLS 1.2 with four extensions', () => {
    expect(formatJa3s(helloOf(TLS12_HELLO))).toBe('771,49199,65281-11-35-16');
  });

  it('keeps the trailing comma when there are no extensions, as ja3s.py does', () => {
    expect(formatJa3s(helloOf({ legacyVersion: 0x0301, cipherSuite: 0x0005, extensions: null }))).toBe('769,5,');
    // An empty extensions block is the same string.
    expect(formatJa3s(helloOf({ legacyVersion: 0x0301, cipherSuite: 0x0005, extensions: [] }))).toBe('769,5,');
  });

  it('does not drop GREASE values (neither reference does on the server side) and does not sort', () => {
    const spec = { cipherSuite: 0x1301, extensions: [{ type: 0x0033, data: [] }, { type: 0x2a2a, data: [] }, { type: 0x002b, data: [3, 4] }] };
    expect(formatJa3s(helloOf(spec))).toBe('771,4865,51-10794-43');
  });

  it('different extension order → different JA3S', () => {
    const reversed = { ...TLS13_HELLO, extensions: [...(TLS13_HELLO.extensions ?? [])].reverse() };
    expect(computeJa3s(helloOf(reversed)).ja3s).not.toBe(computeJa3s(helloOf(TLS13_HELLO)).ja3s);
  });
});
