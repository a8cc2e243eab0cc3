import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { computeJa4 } from '../../../../src/fingerprint/ja4.js';
import { readClientHello } from '../../../../src/parsers/client-hello.js';
import type { ProcessCategory } from '../../../../src/scoring/features/process.js';
import type { TlsFamilyMap } from '../../../../src/scoring/features/tls-family.js';
import { compileTlsFamilies, fingerprintMismatch, loadTlsFamilies, SHIPPED_TLS_FAMILIES } from '../../../../src/scoring/features/tls-family.js';
import { hex, loadCaptureRows, loadVectorRows } from '../../parsers/hello-builder.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * Two loopback captures made on the build machine with default options (the `[ours+]` entries of
 * tls-families.yaml): curl 7.88.1 / OpenSSL 3.0 (`curl -sk https://localhost:<port>/`) and OpenJDK 17's
 * java.net.http.HttpClient, each against a local listener that kept the first TLS record. Only loopback
 * traffic to a throw-away listener: SNI "localhost", random and key shares of a one-off handshake.
 */
const CURL_DEFAULT_HELLO = [
  '1603010200010001fc0303064316bc4e30a2185543d9c818b8a15f6510939414ac1a0ac2ecf034cb8ecf6d202a82ba0108b460af4883e7aec3f884a0',
  '834a122f1b70ee1237d7553a43ce3b29003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039',
  'c009c0130033009d009c003d003c0035002f00ff010001750000000e000c0000096c6f63616c686f7374000b000403000102000a00160014001d0017',
  '001e00190018010001010102010301040010000e000c02683208687474702f312e31001600000017000000310000000d002a00280403050306030807',
  '08080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d00',
  '20f80a51a0cc5b4c597f26fa41ea9ee93ba52ab9a2161cd4598bf12d1d8a41e563001500b4',
  '00'.repeat(180), // the padding extension (RFC 7685)
].join('');
const JAVA17_HELLO = [
  '16030301d7010001d30303b48342668f02adc8a59714f016e1e2ca181e881730c7a494174dda829c97bc5a20f6b2c63b12982b182fc5636aadb5edbe',
  '6437460c8f9e84fea21222bf83e6d3d5004a130213011303c02cc02bcca9c030cca8c02f009fccaa00a3009e00a2c024c028c023c027006b006a0067',
  '0040c00ac014c009c0130039003800330032009d009c003d003c0035002f00ff010001400000000e000c0000096c6f63616c686f7374000500050100',
  '000000000a00160014001d001700180019001e01000101010201030104000b000201000010000e000c02683208687474702f312e3100110009000702',
  '0004000000000017000000230000000d002c002a040305030603080708080804080508060809080a080b040105010601040203030301030202030201',
  '0202002b00050403040303002d000201010032002c002a040305030603080708080804080508060809080a080b040105010601040203030301030202',
  '03020102020033006b0069001d002052e1b210c7a6795298c6bbad62f54b3a57b34d693b82a71f6280a53017c66a630017004104416a5b11bf384714',
  'bc2c8a95b88cd08fcdd879d216dd5a1d1d0d499998a03c2875b54af5c9c2f14e2d3f41768ae87844f0e6546e0a05e1d87ab391f926b6cf2a',
].join('');

/** JA4 of a captured TLS record, computed by the repo's own parser and fingerprint code. */
function ja4Of(recordHex: string): string {
  const r = readClientHello(hex(recordHex));
  if (r.kind !== 'complete') throw new Error(`not a complete hello: ${r.kind}`);
  return computeJa4(r.hello).ja4;
}

let map: TlsFamilyMap;
beforeAll(async () => {
  map = await loadTlsFamilies(SHIPPED_TLS_FAMILIES);
});

function compileErrors(text: string): string[] {
  const r = compileTlsFamilies(text, 't.yaml');
  if (r.ok) throw new Error('expected the map to be rejected');
  return r.errors;
}

describe('the shipped map', () => {
  it('lives in policies/data next to the package', () => {
    expect(SHIPPED_TLS_FAMILIES).toBe(resolve(REPO, 'policies/data/tls-families.yaml'));
  });

  it('loads', () => {
    expect(map.size).toBeGreaterThan(20);
  });
});

describe('our own captures map to their TLS stack', () => {
  const FAMILY_OF_CLIENT: Record<string, string> = {
    chromium: 'chromium',
    'curl-tls12': 'openssl',
    'curl-tls13': 'openssl',
    'openssl-tls12': 'openssl',
    'openssl-tls13': 'openssl',
    'node-https': 'node',
    'python-ssl': 'python',
  };
  const rows = loadCaptureRows();

  it('covers every client in test/fixtures/tls', () => {
    expect(new Set(rows.map((r) => r.client))).toEqual(new Set(Object.keys(FAMILY_OF_CLIENT)));
  });

  it.each(rows.map((r) => [`${r.client} frame ${r.frame}`, r] as const))('%s', (_name, row) => {
    expect(map.familyOf(ja4Of(row.record_hex))).toBe(FAMILY_OF_CLIENT[row.client]);
  });

  it.each([
    ['curl 7.88.1 / OpenSSL 3.0, default options', CURL_DEFAULT_HELLO, 't13d3112h2_e8f1e7e78f70_b26ce05bbdd6', 'openssl'],
    ['OpenJDK 17 java.net.http', JAVA17_HELLO, 't13d3713h2_db35923f8641_7c76daad20ec', 'java'],
  ])('%s', (_name, record, ja4, family) => {
    expect(ja4Of(record)).toBe(ja4);
    expect(map.familyOf(ja4)).toBe(family);
  });
});

describe("FoxIO's public captures map to their TLS stack", () => {
  const rows = loadVectorRows();
  const familyOfRow = (pcap: string, sni: string | null): string | null => {
    const row = rows.find((r) => r.pcap === pcap && r.sni === sni);
    if (row === undefined) throw new Error(`no vector ${pcap} ${sni}`);
    return map.familyOf(ja4Of(row.record_hex));
  };

  it.each([
    ['browsers-x509.pcapng', 'edge.microsoft.com', 'chromium'],
    ['latest.pcapng', 'app.slack.com', 'chromium'],
    ['tls-handshake.pcapng', 'mtalk.google.com', 'chromium'],
    ['tls12.pcap', 'contile.services.mozilla.com', 'firefox'],
    // Windows telemetry and Sophos' Windows agent: Schannel (FoxIO's published WinINET JA4).
    ['ssh2.pcapng', 'self.events.data.microsoft.com', 'schannel'],
    ['ssh2.pcapng', 'mcs2-cloudstation-eu-west-1.prod.hydra.sophos.com', 'schannel'],
  ])('%s %s → %s', (pcap, sni, family) => {
    expect(familyOfRow(pcap, sni)).toBe(family);
  });

  it("every Chromium-cipher-list hello in the vectors is chromium, including HelloRetryRequest second hellos", () => {
    const chromium = rows.filter((r) => r.ja4_wireshark_4_4_19.split('_')[1] === '8daaf6152771');
    expect(chromium.length).toBeGreaterThan(100);
    for (const row of chromium) expect(map.familyOf(ja4Of(row.record_hex)), `${row.pcap} ${row.frame}`).toBe('chromium');
  });

  it('hellos of undocumented clients stay unknown', () => {
    expect(familyOfRow('macos_tcp_flags.pcap', 'venarisecurity.com')).toBeNull();
    expect(familyOfRow('badcurveball.pcap', 'bad.curveballtest.com')).toBeNull();
  });
});

describe('published references (FoxIO ja4plus-mapping.csv, not our captures)', () => {
  it.each([
    ['t13d1516h2_8daaf6152771_02713d6af862', 'chromium'],
    ['q13d0312h3_55b375c5d22e_06cda9e17597', 'chromium'],
    ['t13d1715h2_5b57614c22b0_7121afd63204', 'firefox'],
    ['t13d2014h2_a09f3c656075_14788d8d241b', 'safari'],
    ['t12d190800_d83cc789557e_7af1ed941c26', 'schannel'],
    ['t12i190700_d83cc789557e_16bbda4055b2', 'cobaltstrike'],
    ['t12d210800_76e208dd3e22_16bbda4055b2', 'cobaltstrike'],
    ['t13d181000_85036bcba153_d41ae481755e', 'python'],
    ['t13d190900_9dc949149365_97f8aa674fd9', 'go'],
    ['t13i190800_9dc949149365_97f8aa674fd9', 'go'],
    ['t13d201100_2b729b4bf6f3_9e7b989ebec8', 'icedid'],
    ['t13d880900_fcb5b95cb75a_b0d3b4ac2a14', 'softether'],
  ])('%s → %s', (ja4, family) => {
    expect(map.familyOf(ja4)).toBe(family);
  });

  it('Cobalt Strike runs on Schannel', () => {
    expect(map.stackOf('cobaltstrike')).toBe('schannel');
    expect(map.stackOf('chromium')).toBe('chromium');
    expect(map.stackOf('nonexistent')).toBeNull();
  });
});

describe('fingerprintMismatch', () => {
  const captures = new Map(loadCaptureRows().map((r) => [r.client, ja4Of(r.record_hex)]));
  const ja4 = (client: string): string => captures.get(client) ?? '';

  it.each<[string, string, string, ProcessCategory, { family: string; expected: readonly string[] } | null]>([
    ['a browser name with Python’s stack', ja4('python-ssl'), 'chrome.exe', 'browser', { family: 'python', expected: ['chromium', 'firefox', 'safari'] }],
    ['a browser name with OpenSSL’s stack', ja4('curl-tls12'), 'msedge.exe', 'browser', { family: 'openssl', expected: ['chromium', 'firefox', 'safari'] }],
    ['rundll32 with Chromium’s stack', ja4('chromium'), 'rundll32.exe', 'lolbin', { family: 'chromium', expected: ['schannel'] }],
    ['mshta with Go’s stack (a Sliver-like implant)', 't13d190900_9dc949149365_97f8aa674fd9', 'mshta.exe', 'script-host', { family: 'go', expected: ['schannel'] }],
    ['chrome with Chromium’s stack', ja4('chromium'), 'chrome.exe', 'browser', null],
    ['python with Python’s stack', ja4('python-ssl'), 'python.exe', 'dev-tool', null],
    ['Windows curl.exe with OpenSSL (curl from Git) is fine', ja4('curl-tls13'), 'curl.exe', 'admin-tool', null],
    ['rundll32 with a Cobalt Strike beacon: the stack (Schannel) is consistent', 't12d190800_d83cc789557e_16bbda4055b2', 'rundll32.exe', 'lolbin', null],
    ['a browser with a Cobalt Strike beacon', 't12d190800_d83cc789557e_16bbda4055b2', 'chrome.exe', 'browser', { family: 'cobaltstrike', expected: ['chromium', 'firefox', 'safari'] }],
    ['an unknown process has no expectation', ja4('chromium'), 'payload.exe', 'unknown', null],
    ['a dev tool has no category expectation', ja4('node-https'), 'cargo.exe', 'dev-tool', null],
    ['an unknown fingerprint says nothing', 't13d2613h2_2802a3db6c62_845d286b0d67', 'chrome.exe', 'browser', null],
    ['a process name entry wins over its category: iexplore is Schannel', ja4('chromium'), 'iexplore.exe', 'browser', { family: 'chromium', expected: ['schannel'] }],
  ])('%s', (_name, fingerprint, processName, category, expected) => {
    expect(fingerprintMismatch(map, fingerprint, processName, category)).toEqual(expected);
  });

  it('expectedFor takes the name entry first, then the category, else null', () => {
    expect(map.expectedFor('PYTHON.EXE', 'dev-tool')).toEqual(['python', 'openssl']);
    expect(map.expectedFor('/usr/bin/python3', 'dev-tool')).toEqual(['python', 'openssl']);
    expect(map.expectedFor('svchost.exe', 'system')).toEqual(['schannel']);
    expect(map.expectedFor('payload.exe', 'unknown')).toBeNull();
  });
});

describe('matching rules', () => {
  const TEXT = `version: 1
families:
  a: { description: exact }
  b: { description: prefix }
  c: { description: pattern with cipher hash }
  d: { description: pattern }
  e: { description: more specific pattern }
fingerprints:
  - { match: t13d1516h2_8daaf6152771_02713d6af862, family: a, source: s }
  - { match: t13d1516h2_8daaf6152771, family: b, source: s }
  - { match: 't13*_8daaf6152771', family: c, source: s }
  - { match: 't1*', family: d, source: s }
  - { match: 't12d*', family: e, source: s }
`;

  it('the whole fingerprint wins over ja4_a+ja4_b, which wins over patterns; longer patterns first', () => {
    const r = compileTlsFamilies(TEXT, 't.yaml');
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.map.familyOf('t13d1516h2_8daaf6152771_02713d6af862')).toBe('a');
    expect(r.map.familyOf('t13d1516h2_8daaf6152771_000000000000')).toBe('b');
    expect(r.map.familyOf('t13d1517h2_8daaf6152771_000000000000')).toBe('c');
    expect(r.map.familyOf('t13i1516h2_aaaaaaaaaaaa_000000000000')).toBe('d');
    expect(r.map.familyOf('t12d1516h2_aaaaaaaaaaaa_000000000000')).toBe('e');
    expect(r.map.familyOf('q13d1516h2_aaaaaaaaaaaa_000000000000')).toBeNull();
    expect(r.map.familyOf('')).toBeNull();
    expect(r.map.familyOf('t13d1516h2')).toBe('d');
  });

  it('familyOf takes at most 1 µs per call on the shipped map', () => {
    const sample = [...loadCaptureRows().map((r) => ja4Of(r.record_hex)), 't12d190800_d83cc789557e_7af1ed941c26', 't13d2613h2_2802a3db6c62_845d286b0d67', 'q13d0312h3_55b375c5d22e_06cda9e17597'];
    for (let i = 0; i < 5000; i++) map.familyOf(sample[i % sample.length] ?? '');
    const perCall: number[] = [];
    for (let round = 0; round < 200; round++) {
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) map.familyOf(sample[i % sample.length] ?? '');
      perCall.push(performance.now() - t0); // ms per 1000 calls = µs per call
    }
    perCall.sort((a, b) => a - b);
    expect(perCall[perCall.length >> 1]).toBeLessThan(1);
  });
});

describe('malformed maps give positioned errors', () => {
  it('bad JA4 patterns', () => {
    const text = [
      'version: 1',
      'families:',
      '  x: { description: x }',
      'fingerprints:',
      '  - { match: t13d1516h2_8DAAF6152771, family: x, source: s }',
      '  - { match: t13d1516h2_a_b_c, family: x, source: s }',
      "  - { match: 't13?1516h2', family: x, source: s }",
      "  - { match: 't13*_8daaf6152771_02713d6af862', family: x, source: s }",
      '  - { match: x13d1516h2_8daaf6152771, family: x, source: s }',
    ].join('\n');
    expect(compileErrors(text)).toEqual([
      't.yaml:5:14: bad JA4 pattern "t13d1516h2_8DAAF6152771": ja4_b "8DAAF6152771" is not 12 lower-case hex characters',
      't.yaml:6:14: bad JA4 pattern "t13d1516h2_a_b_c": a JA4 has three parts, ja4_a_ja4_b_ja4_c',
      't.yaml:7:14: bad JA4 pattern "t13?1516h2": ja4_a "t13?1516h2" is not t/q/d, version, d/i, 4 digits and a 2-character ALPN code (add * to make it a pattern)',
      't.yaml:8:14: bad JA4 pattern "t13*_8daaf6152771_02713d6af862": a pattern (with *) stops after ja4_b',
      't.yaml:9:14: bad JA4 pattern "x13d1516h2_8daaf6152771": ja4_a "x13d1516h2" is not t/q/d, version, d/i, 4 digits and a 2-character ALPN code (add * to make it a pattern)',
    ]);
  });

  it('duplicates, unknown families and stacks, unknown categories', () => {
    const text = [
      'version: 1',
      'families:',
      '  chromium: { description: c }',
      '  beacon: { description: b, stack: schanel }',
      'fingerprints:',
      "  - { match: 't13*_8daaf6152771', family: chromium, source: s }",
      "  - { match: 't13*_8daaf6152771', family: chromium, source: s }",
      '  - { match: t13d1516h2_8daaf6152771_02713d6af862, family: chromum, source: s }',
      '  - { match: t13d1516h2_8daaf6152771_02713d6af862 }',
      'expectations:',
      '  categories:',
      '    browsers: [chromium]',
      '  processes:',
      '    chrome.exe: [chromium, firefox]',
    ].join('\n');
    expect(compileErrors(text)).toEqual([
      't.yaml:4:3: families.beacon.stack names "schanel", which is not a declared family',
      't.yaml:7:14: duplicate fingerprint "t13*_8daaf6152771": already listed at line 6',
      't.yaml:8:60: unknown family "chromum" (did you mean "chromium"?); declare it under families',
      't.yaml:9:5: fingerprints[3] needs "family"',
      't.yaml:9:5: fingerprints[3] needs "source"',
      't.yaml:12:5: unknown category "browsers" (did you mean "browser"?); categories are script-host, lolbin, browser, office, mail, admin-tool, updater, system, dev-tool, collaboration, security, transfer',
      't.yaml:14:28: unknown family "firefox"; declare it under families',
    ]);
  });
});
