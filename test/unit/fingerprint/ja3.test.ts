import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readClientHello } from '../../../src/parsers/client-hello.js';
import type { ClientHello } from '../../../src/parsers/client-hello.js';
import { computeJa3, formatJa3 } from '../../../src/fingerprint/ja3.js';
import { isGrease16, isGrease8, withoutGrease16 } from '../../../src/fingerprint/grease.js';
import { SPEC_EXAMPLE, buildRecord, ext, hex, loadCaptureRows, loadVectorRows } from '../parsers/hello-builder.js';
import type { HelloSpec } from '../parsers/hello-builder.js';

function helloOf(bytes: Uint8Array): ClientHello {
  const r = readClientHello(bytes);
  if (r.kind !== 'complete') throw new Error(`not a complete hello: ${r.kind}`);
  return r.hello;
}

const build = (spec: HelloSpec): ClientHello => helloOf(buildRecord(spec));

describe('GREASE (RFC 8701)', () => {
  it('recognises exactly the sixteen 16-bit GREASE values', () => {
    const all = Array.from({ length: 65536 }, (_, v) => v).filter(isGrease16);
    expect(all).toEqual([0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a, 0x8a8a, 0x9a9a, 0xaaaa, 0xbaba, 0xcaca, 0xdada, 0xeaea, 0xfafa]);
  });

  it('recognises the 8-bit PskKeyExchangeMode GREASE values', () => {
    expect(Array.from({ length: 256 }, (_, v) => v).filter(isGrease8)).toEqual([0x0b, 0x2a, 0x49, 0x68, 0x87, 0xa6, 0xc5, 0xe4]);
  });

  it('filters without copying when there is nothing to drop', () => {
    const list = [1, 2, 3];
    expect(withoutGrease16(list)).toBe(list);
    expect(withoutGrease16([0x0a0a, 1, 0xfafa, 2])).toEqual([1, 2]);
  });
});

describe('JA3 (Salesforce definition)', () => {
  it('is version,ciphers,extensions,groups,formats in decimal, wire order, GREASE dropped from every list', () => {
    const hello = build({
      legacyVersion: 0x0303,
      ciphers: [0x2a2a, 0x1301, 0xc02b, 0x00ff],
      extensions: [
        ext.empty(0x3a3a),
        ext.sni('a.example'),
        ext.supportedGroups(0x4a4a, 0x001d, 0x0017),
        ext.ecPointFormats(0, 1, 2),
        ext.empty(0xff01),
        ext.empty(0x5a5a),
      ],
    });
    expect(formatJa3(hello)).toBe('771,4865-49195-255,0-10-11-65281,29-23,0-1-2');
  });

  it('leaves empty fields when lists or extensions are absent', () => {
    const hello = build({ legacyVersion: 0x0301, ciphers: [0x002f] });
    expect(computeJa3(hello)).toEqual({ ja3Full: '769,47,,,', ja3: createHash('md5').update('769,47,,,').digest('hex') });
  });

  it('uses legacy_version, not supported_versions', () => {
    expect(formatJa3(build({ ...SPEC_EXAMPLE, legacyVersion: 0x0303 }))).toMatch(/^771,/);
  });

  it('keeps extension order as on the wire (a reordered hello changes JA3)', () => {
    const a = build({ extensions: [ext.empty(0x0017), ext.empty(0x0023)] });
    const b = build({ extensions: [ext.empty(0x0023), ext.empty(0x0017)] });
    expect(computeJa3(a).ja3).not.toBe(computeJa3(b).ja3);
  });

  describe('every FoxIO vector hello gives tshark’s JA3 (161)', () => {
    const rows = loadVectorRows();
    it('has the 161 rows', () => expect(rows).toHaveLength(161));
    it.each(rows.map((r) => [`${r.pcap} frame ${r.frame}`, r] as const))('%s', (_name, row) => {
      expect(computeJa3(helloOf(hex(row.record_hex)))).toEqual({ ja3Full: row.ja3_full, ja3: row.ja3 });
    });
  });

  describe('own loopback captures: our JA3 equals tshark’s tls.handshake.ja3', () => {
    const rows = loadCaptureRows();
    it('covers curl, openssl, Node, Python and Chromium', () => {
      expect(new Set(rows.map((r) => r.client))).toEqual(
        new Set(['curl-tls12', 'curl-tls13', 'openssl-tls12', 'openssl-tls13', 'node-https', 'python-ssl', 'chromium']),
      );
    });
    it.each(rows.map((r) => [`${r.client} frame ${r.frame}`, r] as const))('%s', (_name, row) => {
      const ja3 = computeJa3(helloOf(hex(row.record_hex)));
      expect(ja3.ja3Full).toBe(row.tshark_ja3_full);
      expect(ja3.ja3).toBe(row.tshark_ja3);
    });
  });
});
