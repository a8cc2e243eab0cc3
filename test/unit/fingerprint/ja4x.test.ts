import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { readServerFlight } from '../../../src/parsers/server-hello.js';
import { computeJa4x, ja4xOf } from '../../../src/fingerprint/ja4x.js';
import { parseX509 } from '../../../src/parsers/x509.js';
import { ja4xValues, loadFoxioServerCases } from '../../helpers/pcap-server-flights.js';
import { FIXTURES } from '../parsers/hello-builder.js';

const VECTORS = `${FIXTURES}vectors/ja4-foxio/`;
const sha12 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);

/** JA4X values in the in-tree python outputs whose certificate is in cleartext (TLS ≤ 1.2) in our pcaps. */
const EXPECTED_OBSERVABLE_JA4X = 43;

describe('JA4X on the FoxIO vectors (expected/python, FoxIO License 1.1 test data)', () => {
  const cases = loadFoxioServerCases(VECTORS).filter((c) => c.entry['JA4X.1'] !== undefined);
  /** [label, expected, der] for every JA4X whose certificate we can see. */
  const observable: [string, string, Uint8Array][] = [];
  const hidden: string[] = [];
  for (const c of cases) {
    const r = c.flight === undefined ? null : readServerFlight(c.flight.bytes);
    const certs = r !== null && r.kind === 'complete' ? r.certificates : null;
    ja4xValues(c.entry).forEach((expected, i) => {
      const der = certs?.[i];
      const label = `${c.pcap} stream ${c.entry.stream} JA4X.${i + 1}`;
      if (der === undefined) hidden.push(label);
      else observable.push([label, expected, der]);
    });
  }

  it('sees every certificate sent in cleartext; the rest came over TLS 1.3 or QUIC, decrypted by tshark with keys', () => {
    expect(observable.length).toBe(EXPECTED_OBSERVABLE_JA4X);
    expect(hidden).toEqual(['chrome-cloudflare-quic-with-secrets.pcapng stream 0 JA4X.1', 'chrome-cloudflare-quic-with-secrets.pcapng stream 0 JA4X.2']);
  });

  it.each(observable)('%s', (_label, expected, der) => {
    expect(computeJa4x(der).ja4x).toBe(expected);
  });
});

describe('JA4X rules (JA4X.png, rust/ja4x)', () => {
  it('hashes comma-joined OID hex as FoxIO rust hash12 does (its unit test vector)', () => {
    expect(sha12('551d0f,551d25,551d11')).toBe('aae71e8db6d7');
  });

  let dir = '';
  let der: Uint8Array = new Uint8Array(0);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ja4x-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '7',
      '-subj', '/C=US/ST=California/O=Egress Test/OU=C2 Lab/CN=c2.test', '-addext', 'subjectAltName=DNS:c2.test',
      '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=serverAuth',
    ], { stdio: 'ignore' });
    der = Uint8Array.from(Buffer.from(forge.pem.decode(readFileSync(join(dir, 'c.pem'), 'utf8'))[0]?.body ?? '', 'binary'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('matches an independent computation with node-forge over an openssl-made certificate', () => {
    const cert = forge.pki.certificateFromAsn1(forge.asn1.fromDer(Buffer.from(der).toString('binary')));
    const oidHex = (oid: string): string => forge.util.bytesToHex(forge.asn1.oidToDer(oid).getBytes());
    const a = cert.issuer.attributes.map((x) => oidHex(x.type as string)).join(',');
    const b = cert.subject.attributes.map((x) => oidHex(x.type as string)).join(',');
    const c = (cert.extensions as { id: string }[]).map((x) => oidHex(x.id)).join(',');
    expect(a).toBe('550406,550408,55040a,55040b,550403');
    const got = computeJa4x(der);
    expect(got.ja4x_r).toBe(`${a}_${b}_${c}`);
    expect(got.ja4x).toBe(`${sha12(a)}_${sha12(b)}_${sha12(c)}`);
    expect(c.split(',')).toEqual(expect.arrayContaining(['551d11', '551d0f', '551d25']));
  });

  it('gives twelve zeros for an empty list (rust hash12; JA4X.png Sliver example)', () => {
    const s = parseX509(der);
    expect(ja4xOf({ ...s, issuer: [], extensions: [] }).ja4x).toBe(`000000000000_${sha12(s.subject.map((x) => x.oidHex).join(','))}_000000000000`);
  });

  it('depends on order, not on values', () => {
    const s = parseX509(der);
    const renamed = { ...s, subject: s.subject.map((x) => ({ ...x, value: 'other' })) };
    expect(ja4xOf(renamed).ja4x).toBe(ja4xOf(s).ja4x);
    const reordered = { ...s, subject: [...s.subject].reverse() };
    expect(ja4xOf(reordered).ja4x).not.toBe(ja4xOf(s).ja4x);
  });
});
