import { describe, it, expect } from 'vitest';
import { readClientHello } from '../../../src/parsers/client-hello.js';
import type { ClientHello } from '../../../src/parsers/client-hello.js';
import { formatTlsVersion, sniMatchesDestination, tlsFactsOf } from '../../../src/fingerprint/tls-facts.js';
import { isFieldName } from '../../../src/flow/fields.js';
import { buildRecord, ext, hex, loadCaptureRows, loadVectorRows } from '../parsers/hello-builder.js';

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
