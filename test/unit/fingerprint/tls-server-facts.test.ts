import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readServerFlight, serverFlightObserver } from '../../../src/parsers/server-hello.js';
import type { ServerFlightDecision, ServerHello } from '../../../src/parsers/server-hello.js';
import { formatCipherSuite, tlsServerFactsOf } from '../../../src/fingerprint/tls-server-facts.js';
import { TLS12_HELLO, TLS13_HELLO, frameRecords, handshakeMessage, serverHelloBody } from '../../helpers/pcap-server-flights.js';
import type { ServerHelloSpec } from '../../helpers/pcap-server-flights.js';

const DAY = 86_400_000;
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

function helloOf(spec: ServerHelloSpec): ServerHello {
  const r = readServerFlight(Uint8Array.from(frameRecords([...handshakeMessage(2, serverHelloBody(spec)), ...handshakeMessage(14, [])])));
  if (r.kind !== 'complete') throw new Error(`not complete: ${r.kind}`);
  return r.hello;
}

let dir = '';
let certPem = '';
let certDer: Uint8Array = new Uint8Array(0);

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'server-facts-'));
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'),
    '-out', join(dir, 'cert.pem'), '-days', '14', '-subj', '/O=Totally Legit/CN=c2.test', '-addext', 'subjectAltName=DNS:c2.test,IP:127.0.0.1',
  ]);
  certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  certDer = Uint8Array.from(new X509Certificate(certPem).raw);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tlsServerFactsOf', () => {
  it('ServerHello only (TLS 1.3 spliced): JA3S, JA4S, version, cipher name, nothing about a certificate', () => {
    const facts = tlsServerFactsOf(helloOf(TLS13_HELLO), null, Date.now());
    expect(facts).toEqual({
      'tls.server.ja3s': md5('771,4865,43-51'),
      'tls.server.ja4s': 't130200_1301_a56c5b993250',
      'tls.version': '1.3',
      'tls.cipher': 'TLS_AES_128_GCM_SHA256',
    });
  });

  it('TLS 1.2 hello: version from legacy_version, ECDHE cipher name', () => {
    const facts = tlsServerFactsOf(helloOf(TLS12_HELLO), null, 0);
    expect(facts['tls.version']).toBe('1.2');
    expect(facts['tls.cipher']).toBe('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
  });

  it('unknown cipher suites are shown as 0x-hex', () => {
    expect(formatCipherSuite(0x1305)).toBe('0x1305');
    expect(formatCipherSuite(0xcca9)).toBe('TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256');
  });

  it('certificate facts: self-signed, validity and age in days with one decimal', () => {
    const x = new X509Certificate(certPem);
    const notBefore = Date.parse(x.validFrom);
    const facts = tlsServerFactsOf(null, certDer, notBefore + 2.26 * DAY);
    expect(facts['egress.tls.self_signed']).toBe(true);
    expect(facts['egress.tls.validity_days']).toBe(14);
    expect(facts['egress.tls.cert_age_days']).toBe(2.3);
    expect(facts['tls.server.x509.subject.common_name']).toBe('c2.test');
    expect(facts['tls.server.x509.issuer.common_name']).toBe('c2.test');
    expect(facts['tls.server.x509.alternative_names']).toEqual(['c2.test', '127.0.0.1']);
    expect(facts['tls.server.hash.sha256']).toBe(x.fingerprint256.replaceAll(':', ''));
    expect(facts['tls.server.ja4x']).toMatch(/^[0-9a-f]{12}_[0-9a-f]{12}_[0-9a-f]{12}$/);
    expect(facts['tls.server.ja3s']).toBeUndefined();
    expect(facts['egress.tls.certificate_error']).toBeUndefined();
    // A certificate not valid yet has a negative age.
    expect(tlsServerFactsOf(null, certDer, notBefore - DAY)['egress.tls.cert_age_days']).toBe(-1);
  });

  it('never throws: a broken certificate keeps the hello facts and says why, with no partial certificate fields', () => {
    const broken = certDer.slice(0, certDer.length - 10);
    const facts = tlsServerFactsOf(helloOf(TLS12_HELLO), broken, Date.now());
    expect(Object.keys(facts).sort()).toEqual(['egress.tls.certificate_error', 'tls.cipher', 'tls.server.ja3s', 'tls.server.ja4s', 'tls.version']);
    expect(facts['egress.tls.certificate_error']).toMatch(/^incomplete|^invalid \S+ at offset \d+/);
    expect(tlsServerFactsOf(null, new Uint8Array(0), 0)).toEqual({ 'egress.tls.certificate_error': expect.any(String) });
  });
});

// ---------------------------------------------------------------------------------------------------------
// A real handshake on loopback: openssl s_server ← in-process relay (taps the server's bytes) ← Node client.

interface Handshake {
  readonly decision: ServerFlightDecision;
  readonly cipherStandardName: string;
  readonly protocol: string | null;
  readonly alpn: string | false | null;
  readonly peerDer: Uint8Array;
  /** Extension types of the ServerHello as `openssl s_server -trace` printed them. */
  readonly tracedExtensions: number[];
}

/** IANA code points of the suites these handshakes can choose (RFC 8446 §B.4, RFC 5289, RFC 7905). */
const CIPHER_CODES: Record<string, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 0xc02b,
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 0xc02c,
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca9,
};

async function startOpenssl(version: '-tls1_2' | '-tls1_3'): Promise<{ proc: ChildProcessWithoutNullStreams; port: number; output: () => string }> {
  const proc = spawn('openssl', [
    's_server', '-accept', '127.0.0.1:0', '-naccept', '1', '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem'),
    version, '-alpn', 'h2,http/1.1', '-trace',
  ]);
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`openssl s_server did not start: ${out}`)), 10_000);
    proc.stdout.on('data', () => {
      const m = /ACCEPT \S+:(\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', () => reject(new Error(`openssl s_server exited: ${out}`)));
  });
  return { proc, port, output: () => out };
}

/**
 * The ServerHello's extension types from `openssl s_server -trace` output, whose ServerHello block lists
 * lines like "extension_type=renegotiate(65281), length=1"; the block ends at the next record or message.
 */
function tracedServerHelloExtensions(trace: string): number[] {
  const lines = trace.split('\n');
  const start = lines.findIndex((l) => /^\s*ServerHello, Length=\d+/.test(l));
  if (start < 0) return [];
  const out: number[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(Sent|Received)\b/.test(line) || /^\s*[A-Za-z]+, Length=\d+/.test(line)) break;
    const m = /extension_type=[^(]*\((\d+)\)/.exec(line);
    if (m !== null) out.push(Number(m[1]));
  }
  return out;
}

async function handshake(version: '-tls1_2' | '-tls1_3'): Promise<Handshake> {
  const server = await startOpenssl(version);
  const box: { decision: ServerFlightDecision | null } = { decision: null };
  const observer = serverFlightObserver((r) => (box.decision = r));
  const relay = net.createServer((client) => {
    const upstream = net.connect(server.port, '127.0.0.1');
    upstream.on('data', (d: Buffer) => observer.push(d));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
  try {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: (relay.address() as net.AddressInfo).port,
      servername: 'c2.test',
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    const result = {
      cipherStandardName: socket.getCipher().standardName,
      protocol: socket.getProtocol(),
      alpn: socket.alpnProtocol,
      peerDer: Uint8Array.from(socket.getPeerCertificate().raw),
    };
    socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    if (box.decision === null) throw new Error('the observer did not decide');
    return { ...result, decision: box.decision, tracedExtensions: tracedServerHelloExtensions(server.output()) };
  } finally {
    server.proc.kill();
    await new Promise<void>((r) => relay.close(() => r()));
  }
}

function completeOf(d: ServerFlightDecision): Extract<ServerFlightDecision, { kind: 'complete' }> {
  if (d.kind !== 'complete') throw new Error(`not complete: ${d.error.message}`);
  return d;
}

describe('a real handshake with openssl s_server on loopback', () => {
  it('TLS 1.2: complete ServerHello + certificate; JA3S from independent fields; facts equal openssl x509', async () => {
    const hs = await handshake('-tls1_2');
    expect(hs.protocol).toBe('TLSv1.2');
    const d = completeOf(hs.decision);
    const code = CIPHER_CODES[hs.cipherStandardName];
    expect(code).toBeDefined();
    expect(d.hello.cipherSuite).toBe(code);
    expect(hs.tracedExtensions.length).toBeGreaterThan(0);
    // JA3S computed here from what Node and openssl's own trace report, not from our parser.
    const independent = `771,${code ?? -1},${hs.tracedExtensions.join('-')}`;
    const facts = tlsServerFactsOf(d.hello, d.certificates?.[0] ?? null, Date.now());
    expect(facts['tls.server.ja3s']).toBe(md5(independent));
    expect(facts['tls.version']).toBe('1.2');
    expect(d.hello.alpn).toBe(hs.alpn);
    expect(facts['tls.server.ja4s']?.slice(0, 7)).toBe(`t12${String(hs.tracedExtensions.length).padStart(2, '0')}h2`);

    // The certificate seen in the clear is the one the client verified, and its facts match openssl x509.
    expect([...(d.certificates?.[0] ?? [])]).toEqual([...hs.peerDer]);
    const want = new Map(
      openssl(['x509', '-in', join(dir, 'cert.pem'), '-noout', '-subject', '-issuer', '-dates', '-serial', '-nameopt', 'utf8,sep_comma_plus_space,sname,esc_2253'])
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
    );
    expect(facts['tls.server.x509.subject.distinguished_name']).toBe(want.get('subject'));
    expect(facts['tls.server.x509.issuer.distinguished_name']).toBe(want.get('issuer'));
    expect(facts['tls.server.x509.not_before']).toBe(new Date(want.get('notBefore') ?? '').toISOString());
    expect(facts['tls.server.x509.not_after']).toBe(new Date(want.get('notAfter') ?? '').toISOString());
    expect(facts['tls.server.x509.serial_number']).toBe(want.get('serial'));
    expect(facts['tls.server.x509.subject.common_name']).toBe('c2.test');
    expect(facts['egress.tls.self_signed']).toBe(true);
    expect(facts['egress.tls.validity_days']).toBe(14);
  });

  it('TLS 1.3: complete at the ServerHello, no certificate in the clear, ALPN not in the ServerHello', async () => {
    const hs = await handshake('-tls1_3');
    expect(hs.protocol).toBe('TLSv1.3');
    const d = completeOf(hs.decision);
    expect(d.certificates).toBeNull();
    expect(d.hello.selectedVersion).toBe(0x0304);
    const code = CIPHER_CODES[hs.cipherStandardName];
    expect(d.hello.cipherSuite).toBe(code);
    const facts = tlsServerFactsOf(d.hello, hs.peerDer, Date.now());
    expect(facts['tls.server.ja3s']).toBe(md5(`771,${code ?? -1},${hs.tracedExtensions.join('-')}`));
    expect(facts['tls.version']).toBe('1.3');
    // The chosen ALPN travels in EncryptedExtensions in TLS 1.3 (RFC 8446 §4.3.1): "00" in JA4S.
    expect(hs.alpn).toBe('h2');
    expect(facts['tls.server.ja4s']?.slice(0, 7)).toBe(`t13${String(hs.tracedExtensions.length).padStart(2, '0')}00`);
    expect(facts['tls.server.x509.subject.common_name']).toBe('c2.test');
  });
});
