import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readClientHello } from '../../../src/parsers/client-hello.js';
import type { ClientHello } from '../../../src/parsers/client-hello.js';
import { formatTlsVersion, helloShapeKey, sniMatchesDestination, tlsFactsOf } from '../../../src/fingerprint/tls-facts.js';
import { computeJa3 } from '../../../src/fingerprint/ja3.js';
import { computeJa4 } from '../../../src/fingerprint/ja4.js';
import { isFieldName } from '../../../src/flow/fields.js';
import { buildRecord, ext, hex, loadCaptureRows, loadVectorRows, type ExtensionSpec } from '../parsers/hello-builder.js';

function helloOf(bytes: Uint8Array): ClientHello {
  const r = readClientHello(bytes);
  if (r.kind !== 'complete') throw new Error(`not a complete hello: ${r.kind}`);
  return r.hello;
}

const badcurveball = loadVectorRows().find((r) => r.pcap === 'badcurveball.pcap');
const chromium = loadCaptureRows().find((r) => r.client === 'chromium');

describe('tlsFactsOf', () => {
  it('returns the flow fields of a real hello, keyed by their declared names', () => {
    const hello = helloOf(hex(badcurveball?.record_hex ?? ''));
    const facts = tlsFactsOf(hello, 'bad.curveballtest.com');
    expect(facts).toEqual({
      'tls.client.server_name': 'bad.curveballtest.com',
      'tls.client.ja3': '66918128f1b9b03303d77c6f2eefd128',
      'egress.tls.ja3_full': badcurveball?.ja3_full,
      'tls.client.ja4': 't13d1615h2_46e7e9700bed_45f260be83e2',
      'egress.tls.ja4_r': badcurveball?.foxio_expected_python?.JA4_r,
      'egress.tls.cipher_codes': [
        '1301', '1302', '1303', 'c02b', 'c02f', 'c02c', 'c030', 'cca9', 'cca8', 'c013', 'c014', '009c', '009d', '002f', '0035', '000a',
      ],
      'egress.tls.alpn': ['h2', 'http/1.1'],
      'egress.tls.version_offered': '1.3',
      'egress.tls.ech': false,
      'egress.tls.sni_matches_destination': true,
    });
    for (const key of Object.keys(facts)) expect(isFieldName(key), key).toBe(true);
  });

  it('drops GREASE from supported_ciphers (the wire list starts with 0xaaaa)', () => {
    const hello = helloOf(hex(badcurveball?.record_hex ?? ''));
    expect(hello.cipherSuites[0]).toBe(0xaaaa);
    expect(tlsFactsOf(hello, null)['egress.tls.cipher_codes']).not.toContain('aaaa');
  });

  it('reports ECH offered by Chromium', () => {
    expect(tlsFactsOf(helloOf(hex(chromium?.record_hex ?? '')), 'localhost')['egress.tls.ech']).toBe(true);
  });

  it('leaves out server_name and alpn when the hello has no such extension', () => {
    const facts = tlsFactsOf(helloOf(buildRecord({ legacyVersion: 0x0303, extensions: [ext.supportedGroups(0x001d)] })), '192.0.2.1');
    expect('tls.client.server_name' in facts).toBe(false);
    expect('egress.tls.alpn' in facts).toBe(false);
    expect(facts['egress.tls.version_offered']).toBe('1.2');
    expect(facts['egress.tls.sni_matches_destination']).toBe(false);
  });

  it('names versions in dotted form, unknown ones in hex', () => {
    expect(formatTlsVersion(0x0304)).toBe('1.3');
    expect(formatTlsVersion(0x0301)).toBe('1.0');
    expect(formatTlsVersion(0x0300)).toBe('ssl3.0');
    expect(formatTlsVersion(0x7f17)).toBe('0x7f17');
  });
});

describe('egress.tls.sni_matches_destination', () => {
  it.each([
    ['same name', 'example.com', 'example.com', true],
    ['case differs', 'Example.COM', 'example.com', true],
    ['trailing dot on the CONNECT host', 'example.com', 'example.com.', true],
    ['trailing dot on the SNI', 'example.com.', 'example.com', true],
    ['different host', 'evil.example', 'example.com', false],
    ['parent domain is not a match', 'example.com', 'www.example.com', false],
    ['CONNECT to an IPv4 literal, hostname SNI', 'example.com', '93.184.216.34', false],
    ['CONNECT to an IPv6 literal, hostname SNI', 'example.com', '[2001:db8::1]', false],
    ['IP SNI equal to the IP CONNECT host', '192.0.2.7', '192.0.2.7', true],
    ['no SNI', null, 'example.com', false],
    ['empty SNI', '', 'example.com', false],
    ['no CONNECT host', 'example.com', null, false],
  ] as const)('%s', (_name, sni, host, expected) => {
    expect(sniMatchesDestination(sni, host)).toBe(expected);
  });

  it('is wired into tlsFactsOf', () => {
    const hello = helloOf(buildRecord({ extensions: [ext.sni('Api.Example.com')] }));
    expect(tlsFactsOf(hello, 'api.example.com.')['egress.tls.sni_matches_destination']).toBe(true);
    expect(tlsFactsOf(hello, '203.0.113.9')['egress.tls.sni_matches_destination']).toBe(false);
  });
});

describe('facts of a hello shape, computed once per TLS stack', () => {
  const grease = [0x0a0a, 0x1a1a, 0x2a2a, 0xfafa];
  /** A Chrome-like hello whose GREASE values, random and SNI change per connection, as Chrome's do. */
  const chromeLike = (g: number, sni: string): ClientHello =>
    helloOf(
      buildRecord({
        ciphers: [g, 0x1301, 0x1302, 0xc02b],
        extensions: [ext.empty(g), ext.sni(sni), ext.supportedGroups(g, 0x001d), ext.alpn('h2', 'http/1.1'), ext.supportedVersions(g, 0x0304, 0x0303), ext.signatureAlgorithms(0x0403)],
      }),
    );

  it('shares one set of lists between the tunnels of one stack, whatever their GREASE values and SNI', () => {
    const a = tlsFactsOf(chromeLike(grease[0] as number, 'a.example'), 'a.example');
    const b = tlsFactsOf(chromeLike(grease[1] as number, 'b.example'), 'b.example');
    expect(b['egress.tls.cipher_codes']).toBe(a['egress.tls.cipher_codes']);
    expect(b['egress.tls.alpn']).toBe(a['egress.tls.alpn']);
    expect(Object.isFrozen(a['egress.tls.cipher_codes'])).toBe(true);
    expect(Object.isFrozen(a['egress.tls.alpn'])).toBe(true);
    expect(b['tls.client.ja4']).toBe(a['tls.client.ja4']);
    // What is the flow's own stays its own.
    expect(a['tls.client.server_name']).toBe('a.example');
    expect(b['tls.client.server_name']).toBe('b.example');
  });

  it('tells apart what any fingerprint tells apart (length-prefixed lists, absent vs empty)', () => {
    const key = (extensions: ExtensionSpec[], ciphers = [0x1301]): string | null => helloShapeKey(helloOf(buildRecord({ ciphers, extensions })));
    const keys = [
      key([ext.alpn('h2')]),
      key([ext.alpn('h', '2')]),
      key([ext.alpn()]),
      key([]),
      key([ext.supportedGroups()]),
      key([ext.supportedGroups(0x001d)]),
      key([ext.supportedGroups(0x001d)], [0x1301, 0x1302]),
      key([ext.supportedGroups(0x001d), ext.ecPointFormats(0)]),
      key([ext.ecPointFormats(0), ext.supportedGroups(0x001d)]), // JA3 keeps the wire order of extensions
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('equals the fingerprints computed afresh, for random hellos read once and again (property)', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(
        fc.array(u16, { minLength: 1, maxLength: 40 }),
        fc.array(u16, { maxLength: 6 }),
        fc.array(u16, { maxLength: 6 }),
        fc.option(fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 3 }), { nil: undefined }),
        fc.boolean(),
        (ciphers, groups, sigs, alpn, sni) => {
          const extensions: ExtensionSpec[] = [ext.supportedGroups(...groups), ext.signatureAlgorithms(...sigs), ext.supportedVersions(0x0304)];
          if (alpn !== undefined) extensions.push(ext.alpn(...alpn.map((n) => [...Buffer.from(n, 'latin1')])));
          if (sni) extensions.push(ext.sni('x.example'));
          const hello = helloOf(buildRecord({ ciphers, extensions }));
          const ja3 = computeJa3(hello);
          const ja4 = computeJa4(hello, 'tcp');
          for (let round = 0; round < 2; round++) {
            const facts = tlsFactsOf(hello, 'x.example');
            expect(facts['tls.client.ja3']).toBe(ja3.ja3);
            expect(facts['egress.tls.ja3_full']).toBe(ja3.ja3Full);
            expect(facts['tls.client.ja4']).toBe(ja4.ja4);
            expect(facts['egress.tls.ja4_r']).toBe(ja4.ja4R);
            expect(facts['egress.tls.cipher_codes']).toEqual(ciphers.filter((c) => (c & 0x0f0f) !== 0x0a0a || c >> 8 !== (c & 0xff)).map((c) => c.toString(16).padStart(4, '0')));
            expect(facts['egress.tls.alpn']).toEqual(hello.alpn ?? undefined);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
