import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readServerFlight } from '../../../src/parsers/server-hello.js';
import { describeCertificate, formatDistinguishedName, formatSerialNumber, parseX509 } from '../../../src/parsers/x509.js';
import type { X509Attribute } from '../../../src/parsers/x509.js';
import { loadFoxioServerCases } from '../../helpers/pcap-server-flights.js';
import { FIXTURES } from './hello-builder.js';

let dir = '';

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

function derOf(pemPath: string): Uint8Array {
  return Uint8Array.from(new X509Certificate(readFileSync(pemPath)).raw);
}

/** `openssl x509` output lines as a map: subject, issuer, notBefore, notAfter, serial. */
function opensslFacts(pemPath: string): Map<string, string> {
  const out = openssl(['x509', '-in', pemPath, '-noout', '-subject', '-issuer', '-dates', '-serial', '-nameopt', 'utf8,sep_comma_plus_space,sname,esc_2253']);
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

const SELF = 'self.pem';
const CA = 'ca.pem';
const LEAF = 'leaf.pem';
const IMPOSTOR = 'impostor.pem';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'x509-'));
  const p = (f: string): string => join(dir, f);
  // A self-signed EC certificate with every SAN form we decode and a DN needing RFC 4514 escapes.
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('self.key'), '-out', p(SELF),
    '-days', '30', '-subj', '/C=US/ST=California/O=Egress Test, Inc./CN=c2.test',
    '-addext', 'subjectAltName=DNS:c2.test,DNS:*.c2.test,IP:127.0.0.1,IP:2001:db8::1,email:ops@c2.test,URI:https://c2.test/x',
  ]);
  // A CA and a leaf it signed (RSA): not self-signed.
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p(CA), '-days', '365', '-subj', '/O=Test CA/CN=Test Root']);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1', '-nodes', '-keyout', p('leaf.key'), '-out', p('leaf.csr'), '-subj', '/CN=leaf.test']);
  openssl(['x509', '-req', '-in', p('leaf.csr'), '-CA', p(CA), '-CAkey', p('ca.key'), '-set_serial', '0x00ff00000000000000000001', '-days', '10', '-out', p(LEAF)]);
  // Issuer name equal to its subject, but signed by the CA's key: self-issued, not self-signed.
  openssl(['req', '-new', '-key', p('leaf.key'), '-out', p('imp.csr'), '-subj', '/O=Test CA/CN=Test Root']);
  openssl(['x509', '-req', '-in', p('imp.csr'), '-CA', p(CA), '-CAkey', p('ca.key'), '-set_serial', '7', '-days', '10', '-out', p(IMPOSTOR)]);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('describeCertificate agrees with openssl x509', () => {
  it.each([SELF, CA, LEAF, IMPOSTOR])('%s: subject, issuer, dates, serial', (file) => {
    const path = join(dir, file);
    const want = opensslFacts(path);
    const got = describeCertificate(derOf(path));
    expect(got.subjectDistinguishedName).toBe(want.get('subject'));
    expect(got.issuerDistinguishedName).toBe(want.get('issuer'));
    expect(got.notBefore).toBe(new Date(want.get('notBefore') ?? '').toISOString());
    expect(got.notAfter).toBe(new Date(want.get('notAfter') ?? '').toISOString());
    expect(got.serialNumber).toBe(want.get('serial'));
    const fp = openssl(['x509', '-in', path, '-noout', '-fingerprint', '-sha256']).trim().split('=')[1]?.replaceAll(':', '');
    expect(got.sha256).toBe(fp);
  });

  it('self-signed EC certificate: names, every SAN form, key facts', () => {
    const got = describeCertificate(derOf(join(dir, SELF)));
    expect(got.subjectDistinguishedName).toBe('C=US, ST=California, O=Egress Test\\, Inc., CN=c2.test');
    expect(got.subjectCommonName).toBe('c2.test');
    expect(got.issuerCommonName).toBe('c2.test');
    expect(got.subjectOrganization).toBe('Egress Test, Inc.');
    expect(got.alternativeNames).toEqual(['c2.test', '*.c2.test', '127.0.0.1', '2001:db8::1', 'ops@c2.test', 'https://c2.test/x']);
    expect(got.selfSigned).toBe(true);
    expect(got.publicKeyAlgorithm).toBe('ec');
    expect(got.publicKeyCurve).toBe('prime256v1');
    expect(got.publicKeySize).toBeNull();
    expect(got.signatureAlgorithmOid).toBe('1.2.840.10045.4.3.2'); // ecdsa-with-SHA256
    expect(got.structure.version).toBe(3);
    expect(got.structure.publicKeyAlgorithmOid).toBe('1.2.840.10045.2.1');
  });

  it('a CA-signed leaf is not self-signed; RSA CA key size; serial keeps leading zero bytes of the magnitude', () => {
    const leaf = describeCertificate(derOf(join(dir, LEAF)));
    expect(leaf.selfSigned).toBe(false);
    expect(leaf.issuerDistinguishedName).toBe('O=Test CA, CN=Test Root');
    expect(leaf.serialNumber).toBe('FF00000000000000000001');
    expect(leaf.publicKeyCurve).toBe('secp384r1');
    expect(leaf.alternativeNames).toEqual([]);
    const ca = describeCertificate(derOf(join(dir, CA)));
    expect(ca.selfSigned).toBe(true);
    expect(ca.publicKeyAlgorithm).toBe('rsa');
    expect(ca.publicKeySize).toBe(2048);
    expect(ca.signatureAlgorithmOid).toBe('1.2.840.113549.1.1.11'); // sha256WithRSAEncryption
  });

  it('issuer equal to subject but signed by another key is not self-signed', () => {
    const got = describeCertificate(derOf(join(dir, IMPOSTOR)));
    expect(got.issuerDistinguishedName).toBe(got.subjectDistinguishedName);
    expect(got.selfSigned).toBe(false);
  });
});

describe('parseX509 on real server certificates (FoxIO pcaps) vs FoxIO rust output', () => {
  it('tls-alpn-h2.pcap: the DigiCert EV chain of cloudflare.com, attribute by attribute', () => {
    const c = loadFoxioServerCases(`${FIXTURES}vectors/ja4-foxio/`).find((x) => x.pcap === 'tls-alpn-h2.pcap');
    const r = readServerFlight(c?.flight?.bytes ?? new Uint8Array(0));
    if (r.kind !== 'complete' || r.certificates === null) throw new Error('no certificates');
    expect(r.certificates).toHaveLength(2);
    const leaf = parseX509(r.certificates[0] as Uint8Array);
    const values = (attrs: readonly X509Attribute[]): string[] => attrs.map((a) => `${a.oid}=${a.value ?? '?'}`);
    // Values from expected/rust/ja4__insta@tls-alpn-h2.pcap.snap (issuer*/subject* keys, same order).
    expect(values(leaf.issuer)).toEqual([
      '2.5.4.6=US',
      '2.5.4.10=DigiCert Inc',
      '2.5.4.11=www.digicert.com',
      '2.5.4.3=DigiCert ECC Extended Validation Server CA',
    ]);
    expect(values(leaf.subject)).toEqual([
      '2.5.4.15=Private Organization',
      '1.3.6.1.4.1.311.60.2.1.3=US',
      '1.3.6.1.4.1.311.60.2.1.2=Delaware',
      '2.5.4.5=4710875',
      '2.5.4.6=US',
      '2.5.4.8=California',
      '2.5.4.7=San Francisco',
      '2.5.4.10=Cloudflare, Inc.',
      '2.5.4.3=cloudflare.com',
    ]);
    expect(formatDistinguishedName(leaf.subject)).toBe(
      'businessCategory=Private Organization, jurisdictionC=US, jurisdictionST=Delaware, serialNumber=4710875, C=US, ST=California, L=San Francisco, O=Cloudflare\\, Inc., CN=cloudflare.com',
    );
    const facts = describeCertificate(r.certificates[0] as Uint8Array);
    expect(facts.alternativeNames).toContain('cloudflare.com');
    expect(facts.selfSigned).toBe(false);
    // Cross-check with Node's own parser (OpenSSL) on the same bytes.
    const node = new X509Certificate(r.certificates[0] as Uint8Array);
    expect(facts.sha256).toBe(node.fingerprint256.replaceAll(':', ''));
    expect(facts.serialNumber).toBe(node.serialNumber.toUpperCase().padStart(facts.serialNumber.length, '0'));
  });
});

describe('parseX509 strictness (X.690 DER, RFC 5280)', () => {
  let der: Uint8Array = new Uint8Array(0);
  beforeAll(() => {
    der = derOf(join(dir, CA));
  });

  it('refuses trailing bytes after the certificate', () => {
    expect(() => parseX509(Uint8Array.from([...der, 0]))).toThrow(/invalid certificate at offset \d+: 1 unexpected trailing byte/);
  });

  it('refuses every truncation, naming a field', () => {
    for (const n of [0, 1, 2, 4, 10, 100, der.length - 1]) {
      expect(() => parseX509(der.subarray(0, n))).toThrow(expect.objectContaining({ name: 'ParseError', failure: 'invalid' }));
    }
  });

  it('refuses an indefinite length and a non-minimal length', () => {
    const indefinite = der.slice();
    indefinite[1] = 0x80;
    expect(() => parseX509(indefinite)).toThrow(/certificate.length at offset 1: indefinite length/);
    // 30 82 LL LL → 30 83 00 LL LL: same length in one more byte.
    const longer = Uint8Array.from([0x30, 0x83, 0x00, ...der.subarray(2)]);
    expect(() => parseX509(longer)).toThrow(/non-minimal length encoding/);
  });

  it('refuses a wrong tag where the serial number must be', () => {
    const s = parseX509(der);
    const at = indexOfBytes(der, Uint8Array.from([0x02, s.serialNumber.length, ...s.serialNumber]));
    const bad = der.slice();
    bad[at] = 0x04;
    expect(() => parseX509(bad)).toThrow(expect.objectContaining({ field: 'serial_number.tag', offset: at }));
  });

  it('formats the serial as openssl does: the sign byte dropped, upper case', () => {
    expect(formatSerialNumber(Uint8Array.from([0x00, 0xab, 0x01]))).toBe('AB01');
    expect(formatSerialNumber(Uint8Array.from([0x00]))).toBe('00');
    expect(formatSerialNumber(Uint8Array.from([0x7f, 0x00]))).toBe('7F00');
  });

  it('escapes DN values as RFC 4514 §2.4 and joins multi-valued RDNs with " + "', () => {
    const a = (oid: string, value: string | null, rdn: number): X509Attribute => ({ oid, oidHex: '', value, valueDer: Uint8Array.of(0x04, 0x01, 0xff), rdn });
    expect(formatDistinguishedName([a('2.5.4.3', '#a, b+c;<d>"e"\\ ', 0), a('2.5.4.11', 'x', 1), a('2.5.4.10', 'y', 1), a('1.2.3.4', null, 2)])).toBe(
      'CN=\\#a\\, b\\+c\\;\\<d\\>\\"e\\"\\\\\\ , OU=x + O=y, 1.2.3.4=#0401ff',
    );
  });

  it('the sha256 fact is the hash of the DER', () => {
    expect(describeCertificate(der).sha256).toBe(createHash('sha256').update(der).digest('hex').toUpperCase());
  });
});

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
