/**
 * TLS interception end to end (issue 10): real clients (curl, openssl s_client, Node's tls) trusting a test CA
 * made like `ca init`, through the proxy, to local HTTPS origins whose own certificates the proxy trusts via
 * `tls.upstream_ca` — or does not, for the verification failures.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import fc from 'fast-check';
import forge from 'node-forge';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/net/ca.js';
import { parseConfigText } from '../../src/config/load.js';
import { startProxy } from '../../src/cli/start.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, openTunnel } from '../helpers/servers.js';
import { makeCert, tlsOverTunnel, type TestCert } from '../helpers/tls.js';
import type { EcsRecord } from '../../src/observe/ecs.js';

interface Origin {
  port: number;
  requests: string[];
  close(): Promise<void>;
}

/** An HTTPS origin that answers `<method> <url> host=<host> body=<body>` and remembers each request. */
async function startHttpsOrigin(cert: TestCert): Promise<Origin> {
  const requests: string[] = [];
  const server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const line = `${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''} body=${body}`;
      requests.push(line);
      res.end(line);
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const FUZZ_CLIENT = '127.0.0.3';

/** A self-signed certificate for `name` whose validity ended yesterday (node-forge can date it in the past). */
function expiredCert(name: string): TestCert {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '0a';
  cert.validity.notBefore = new Date(Date.now() - 10 * 86_400_000);
  cert.validity.notAfter = new Date(Date.now() - 86_400_000);
  const subject = [{ name: 'commonName', value: name }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: name }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { key: keyPem, cert: forge.pki.certificateToPem(cert) };
}

/** The ClientHello Node's TLS client sends for `servername`, captured from a stream that answers nothing. */
function realClientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const wire = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        resolve(Buffer.from(chunk));
        callback();
      },
    });
    const client = tls.connect({ socket: wire, servername, rejectUnauthorized: false });
    client.on('error', () => undefined);
    setTimeout(() => client.destroy(), 100);
  });
}

function openssl(args: string[], input: string, timeoutMs = 10_000): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ stdout, stderr, code });
    });
    child.stdin?.end(input);
  });
}

const POLICY = `version: 1
rules:
  - id: never-bump-bank
    when: { destination.domain: { endswith: .bank.test } }
    action: splice
  - id: bump-origin
    when: { destination.domain: { in: [origin.test, untrusted.test, wrongname.test, pinned.test, fronted.test, expired.test] } }
    action: bump
  - id: bump-by-sni
    when: { tls.client.server_name: sni-bump.test }
    action: bump
  - id: block-admin
    when: { url.path: { startswith: /admin } }
    action: block
    severity: high
`;

describe('TLS interception (bump)', () => {
  let caDir: string;
  let caPem: string;
  let originCert: TestCert;
  let origin: Origin;
  let untrusted: Origin;
  let expired: Origin;
  let h: Harness;
  const tunnelOf = (inner: EcsRecord): EcsRecord | undefined => h.records.find((r) => field(r, 'event.id') === field(inner, 'egress.tunnel_id'));

  beforeAll(async () => {
    caDir = mkdtempSync(join(tmpdir(), 'egress-ca-'));
    const ca = createCa('egress-inspector test CA');
    writeFileSync(join(caDir, 'ca.pem'), ca.certPem);
    writeFileSync(join(caDir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    chmodSync(join(caDir, 'ca-key.pem'), 0o600);
    caPem = ca.certPem;
    originCert = makeCert(['origin.test', 'sni-bump.test', 'pinned.test', 'fronted.test', 'shop.bank.test']);
    writeFileSync(join(caDir, 'origin-ca.pem'), originCert.cert);
    origin = await startHttpsOrigin(originCert);
    untrusted = await startHttpsOrigin(makeCert(['untrusted.test']));
    // Trusted (listed in tls.upstream_ca) but past its notAfter.
    const old = expiredCert('expired.test');
    writeFileSync(join(caDir, 'expired-ca.pem'), old.cert);
    expired = await startHttpsOrigin(old);
    const names = ['origin.test', 'sni-bump.test', 'pinned.test', 'fronted.test', 'shop.bank.test', 'untrusted.test', 'wrongname.test', 'expired.test'];
    h = await startHarness({
      policy: POLICY,
      dns: Object.fromEntries(names.map((n) => [n, { A: ['127.0.0.1'] }])),
      config: { tls: `tls:\n  ca_dir: "${caDir}"\n  upstream_ca: ["${join(caDir, 'origin-ca.pem')}", "${join(caDir, 'expired-ca.pem')}"]` },
    });
  });

  afterAll(async () => {
    writeFileSync('/tmp/bump-records.jsonl', h.records.map((r) => JSON.stringify(r)).join('\n'));
    await h.stop();
    await origin.close();
    await untrusted.close();
    await expired.close();
    rmSync(caDir, { recursive: true, force: true });
  });

  it('curl trusting the CA sees the origin through a bumped tunnel; the inner request has its own linked record with URL and JA4H', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), '-A', 'inner-agent/1.0', `https://origin.test:${origin.port}/beacon?id=42`]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(200);
    expect(r.body).toBe(`GET /beacon?id=42 host=origin.test:${origin.port} body=`);
    const inner = await h.waitForRecord((x) => field(x, 'url.path') === '/beacon' && field(x, 'egress.tunnel_id') !== undefined);
    expect(field(inner, 'url.query')).toBe('id=42');
    expect(field(inner, 'url.scheme')).toBe('https');
    expect(field(inner, 'url.domain')).toBe('origin.test');
    expect(field(inner, 'user_agent.original')).toBe('inner-agent/1.0');
    expect(field(inner, 'http.request.method')).toBe('GET');
    expect(field(inner, 'http.response.status_code')).toBe(200);
    expect(String(field(inner, 'http.request.ja4h'))).toMatch(/^ge11nn\d{2}0000_[0-9a-f]{12}_0{12}_0{12}$/);
    expect(field(inner, 'egress.tls.verification')).toBe('ok');
    expect(field(inner, 'tls.client.server_name')).toBe('origin.test');
    expect(field(inner, 'tls.client.ja4')).toMatch(/^t1[23]d/);
    // The server side: the first connection to the origin was tapped for its ServerHello; the certificate is the origin's.
    expect(field(inner, 'tls.server.ja3s')).toMatch(/^[0-9a-f]{32}$/);
    expect(field(inner, 'tls.server.ja4s')).toMatch(/^t13\d{2}\d{2}_130[123]_[0-9a-f]{12}$/);
    expect(field(inner, 'tls.server.ja4x')).toMatch(/^[0-9a-f]{12}_[0-9a-f]{12}_[0-9a-f]{12}$/);
    expect(field(inner, 'tls.server.x509.subject.common_name')).toEqual(['origin.test']); // ECS: an array
    expect(field(inner, 'tls.server.x509.alternative_names')).toContain('fronted.test');
    expect(field(inner, 'egress.tls.self_signed')).toBe(true);
    expect(field(inner, 'tls.version')).toBe('1.3');
    const tunnel = await h.waitForRecord((x) => field(x, 'event.id') === field(inner, 'egress.tunnel_id'));
    expect(field(tunnel, 'http.request.method')).toBe('CONNECT');
    expect(field(tunnel, 'egress.tunnel')).toBe('bump');
    expect(field(tunnel, 'rule.id')).toBeUndefined();
    expect(field(tunnel, 'egress.rules')).toContain('bump-origin');
    expect(field(tunnel, 'egress.tls.verification')).toBe('ok');
  });

  it('a bump rule on the SNI (decided at the ClientHello) bumps too; keep-alive requests each get a record', async () => {
    const url = `https://sni-bump.test:${origin.port}`;
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `${url}/one`, `${url}/two`]);
    expect(r.body).toContain('GET /one');
    expect(r.body).toContain('GET /two');
    const one = await h.waitForRecord((x) => field(x, 'url.path') === '/one');
    const two = await h.waitForRecord((x) => field(x, 'url.path') === '/two');
    expect(field(one, 'egress.tunnel_id')).toBe(field(two, 'egress.tunnel_id'));
    expect(field(tunnelOf(one) ?? {}, 'egress.tunnel')).toBe('bump');
  });

  it('a blocked inner path gets 403 inside TLS and never reaches the origin', async () => {
    const before = origin.requests.length;
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://origin.test:${origin.port}/admin/panel`]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(403);
    expect(r.body).toContain('block-admin');
    expect(origin.requests.length).toBe(before);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/admin/panel');
    expect(field(rec, 'event.action')).toBe('block');
    expect(field(rec, 'rule.id')).toBe('block-admin');
    expect(field(rec, 'event.kind')).toBe('alert');
  });

  it('POST bodies pass inside the tunnel; an extension method is forwarded as is', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), '--data-binary', 'payload-123', `https://origin.test:${origin.port}/submit`]);
    expect(r.body).toBe(`POST /submit host=origin.test:${origin.port} body=payload-123`);
    // Node's own server (the origin here) refuses methods llhttp does not know with 400: that answer coming
    // back shows the proxy forwarded CCM_POST with its body (the plain-HTTP test drives a Python origin).
    const ccm = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), '-X', 'CCM_POST', '--data-binary', 'ccm-body', `https://origin.test:${origin.port}/ccm_system/request`]);
    expect(ccm.status).toBe(400);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/ccm_system/request');
    expect(field(rec, 'http.request.method')).toBe('CCM_POST');
    expect(field(rec, 'egress.tls.verification')).toBe('ok');
    expect(field(rec, 'event.action')).toBe('allow');
  });

  it('a Host header that is not the SNI is recorded as fronting; the request still goes where the tunnel was allowed to', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), '-H', 'Host: hidden-c2.example', `https://fronted.test:${origin.port}/f`]);
    expect(r.body).toBe('GET /f host=hidden-c2.example body=');
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/f');
    expect(field(rec, 'egress.features.host_mismatch')).toBe(true);
    expect(field(rec, 'egress.tls.fronting')).toBe('sni≠host');
    expect(field(rec, 'url.domain')).toBe('fronted.test');
  });

  it('openssl s_client trusting the CA verifies the minted certificate (return code 0)', async () => {
    const out = await openssl(
      ['s_client', '-proxy', `127.0.0.1:${h.port}`, '-connect', `origin.test:${origin.port}`, '-servername', 'origin.test', '-CAfile', join(caDir, 'ca.pem'), '-verify_return_error', '-quiet'],
      `GET /openssl HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n`,
    );
    expect(out.stdout).toContain('GET /openssl host=origin.test body=');
    expect(out.stderr).toContain('verify return:1');
  });

  it('a spliced name (never-bump rule first) shows the origin its own certificate', async () => {
    const { socket, head } = await openTunnel(h.port, `shop.bank.test:${origin.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    // Trusting only the origin's certificate: a minted one would fail here.
    const client = tls.connect({ socket, servername: 'shop.bank.test', ca: originCert.cert });
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', () => resolve());
      client.once('error', reject);
    });
    client.destroy();
    const rec = await h.waitForRecord((x) => field(x, 'url.original') === `shop.bank.test:${origin.port}`);
    expect(field(rec, 'egress.tunnel')).toBe('splice');
  });

  it('an origin whose certificate is not trusted gets 502 inside TLS, recorded as a failed verification', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://untrusted.test:${untrusted.port}/x`]);
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/did not verify/);
    expect(untrusted.requests).toEqual([]);
    const rec = await h.waitForRecord((x) => field(x, 'url.domain') === 'untrusted.test' && field(x, 'url.path') === '/x');
    expect(field(rec, 'egress.tls.verification')).toBe('failed');
    expect(String(field(rec, 'egress.tls.verification_error'))).toMatch(/not trusted/);
    expect(field(rec, 'error.code')).toBe('TLS_UPSTREAM_FAILED');
  });

  it('an origin whose (trusted) certificate has expired gets 502, recorded with the reason', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://expired.test:${expired.port}/z`]);
    expect(r.status).toBe(502);
    expect(expired.requests).toEqual([]);
    const rec = await h.waitForRecord((x) => field(x, 'url.domain') === 'expired.test' && field(x, 'url.path') === '/z');
    expect(field(rec, 'egress.tls.verification')).toBe('failed');
    expect(String(field(rec, 'egress.tls.verification_error'))).toMatch(/CERT_HAS_EXPIRED/);
  });

  it('an origin whose certificate names another host gets 502 (name mismatch)', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://wrongname.test:${origin.port}/y`]);
    expect(r.status).toBe(502);
    expect(origin.requests.some((l) => l.startsWith('GET /y '))).toBe(false);
    const rec = await h.waitForRecord((x) => field(x, 'url.domain') === 'wrongname.test');
    expect(field(rec, 'egress.tls.verification')).toBe('failed');
    expect(String(field(rec, 'egress.tls.verification_error'))).toMatch(/name mismatch/);
  });

  it('a client that refuses our certificate (pinning) is recorded, and its next tunnel to that name is spliced', async () => {
    const first = await openTunnel(h.port, `pinned.test:${origin.port}`);
    // Trusting only the origin's own certificate, as a pinned application would.
    await expect(tlsOverTunnel(first.socket, 'pinned.test', originCert.cert)).rejects.toThrow();
    const rejected = await h.waitForRecord((x) => field(x, 'url.original') === `pinned.test:${origin.port}` && field(x, 'error.code') === 'TLS_CLIENT_REJECTED');
    expect(field(rejected, 'egress.tunnel')).toBe('bump');
    const second = await openTunnel(h.port, `pinned.test:${origin.port}`);
    const client = tls.connect({ socket: second.socket, servername: 'pinned.test', ca: originCert.cert });
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', () => resolve());
      client.once('error', reject);
    });
    client.destroy();
    const spliced = await h.waitForRecord((x) => field(x, 'url.original') === `pinned.test:${origin.port}` && field(x, 'egress.tunnel') === 'splice');
    expect(field(spliced, 'egress.tunnel_reason')).toBe('pinned client, spliced');
  });

  it('an SNI no certificate can carry (an underscore) is spliced, and the record says why', async () => {
    const { socket } = await openTunnel(h.port, `origin.test:${origin.port}`);
    const client = tls.connect({ socket, servername: 'bad_name.test', rejectUnauthorized: false });
    const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      client.once('secureConnect', () => resolve(client.getPeerCertificate()));
      client.once('error', reject);
    });
    client.destroy();
    // The origin's own certificate, not a minted one.
    expect(cert.subject.CN).toBe('origin.test');
    const rec = await h.waitForRecord((x) => field(x, 'tls.client.server_name') === 'bad_name.test' && field(x, 'http.request.method') === 'CONNECT');
    expect(field(rec, 'egress.tunnel')).toBe('splice');
    expect(String(field(rec, 'egress.tunnel_reason'))).toMatch(/^no certificate can name it, spliced/);
  });

  it('metrics count bumped tunnels, verifications and minted certificates', async () => {
    const text = await h.metrics();
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');
    expect(value('egress_tls_tunnels_total{mode="bump"}')).toBeGreaterThanOrEqual(5);
    expect(value('egress_tls_tunnels_total{mode="client_rejected"}')).toBe(1);
    expect(value('egress_tls_tunnels_total{mode="pinned_splice"}')).toBe(1);
    expect(value('egress_tls_upstream_verifications_total{result="failed"}')).toBe(3);
    expect(value('egress_tls_leaf_lookups_total{result="mint"}')).toBeGreaterThanOrEqual(5);
  });

  it('garbage inside a bumped tunnel gets 400 and the proxy keeps serving', async () => {
    const { socket } = await openTunnel(h.port, `origin.test:${origin.port}`);
    const client = tls.connect({ socket, servername: 'origin.test', ca: caPem });
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', () => resolve());
      client.once('error', reject);
    });
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      client.on('data', (c: Buffer) => (got += c.toString('latin1')));
      client.on('close', () => resolve(got));
      client.on('error', () => resolve(got));
      client.write('\x00\x01 not http at all\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://origin.test:${origin.port}/after-garbage`]);
    expect(r.status).toBe(200);
  });

  it('property: random bytes inside a bumped tunnel, and hellos cut anywhere, never crash the proxy nor leave a flow open', async () => {
    // From their own loopback address: a whole hello followed by FIN looks like a client that refused our
    // certificate (it is spliced for an hour: pinning), which must not change what the other tests see.
    const hello = await realClientHello('origin.test');
    // Random bytes after the TLS handshake: an HTTP error status or a closed connection, never a hang or a crash.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const { socket } = await openTunnel(h.port, `origin.test:${origin.port}`, FUZZ_CLIENT);
        const client = tls.connect({ socket, servername: 'origin.test', ca: caPem });
        await new Promise<void>((resolve, reject) => {
          client.once('secureConnect', () => resolve());
          client.once('error', reject);
        });
        const answer = await new Promise<string>((resolve) => {
          let got = '';
          const timer = setTimeout(() => resolve(got), 3000);
          client.on('data', (c: Buffer) => (got += c.toString('latin1')));
          const done = (): void => {
            clearTimeout(timer);
            resolve(got);
          };
          client.on('close', done);
          client.on('error', done);
          client.end(Buffer.from(bytes));
        });
        client.destroy();
        expect(answer === '' || /^HTTP\/1\.1 \d{3} /.test(answer)).toBe(true);
      }),
      { numRuns: 25 },
    );
    // A real ClientHello cut at any point, or followed by garbage, then FIN.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: hello.length }), fc.uint8Array({ maxLength: 64 }), async (cut, tail) => {
        const { socket } = await openTunnel(h.port, `origin.test:${origin.port}`, FUZZ_CLIENT);
        socket.on('error', () => undefined);
        socket.end(Buffer.concat([hello.subarray(0, cut), Buffer.from(tail)]));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            socket.destroy();
            resolve();
          }, 3000);
          socket.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          socket.resume();
        });
      }),
      { numRuns: 25 },
    );
    // Every flow ended (no socket left behind), and the proxy still serves.
    const deadline = Date.now() + 5000;
    let active = Number.NaN;
    while (Date.now() < deadline) {
      active = Number(/^egress_active_flows (\S+)$/m.exec(await h.metrics())?.[1] ?? 'NaN');
      if (active === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(active).toBe(0);
    expect((await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://origin.test:${origin.port}/after-fuzz`])).status).toBe(200);
  }, 120_000);

  it('a truncated ClientHello on a bump-bound tunnel leaves no socket behind and the proxy keeps serving', async () => {
    const { socket } = await openTunnel(h.port, `origin.test:${origin.port}`);
    // A TLS record header promising 512 bytes, then only a few, then FIN.
    socket.end(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://origin.test:${origin.port}/after-truncated`]);
    expect(r.status).toBe(200);
  });
});

describe('inner requests count against proxy.max_flows', () => {
  it('over the cap an inner request gets 503 inside TLS, recorded under builtin:capacity', async () => {
    const caDir = mkdtempSync(join(tmpdir(), 'egress-ca-cap-'));
    const ca = createCa('egress-inspector cap test CA');
    writeFileSync(join(caDir, 'ca.pem'), ca.certPem);
    writeFileSync(join(caDir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    const cert = makeCert(['cap.test']);
    writeFileSync(join(caDir, 'origin-ca.pem'), cert.cert);
    const origin = await startHttpsOrigin(cert);
    // One flow at a time: the tunnel is that flow, so its first inner request is one too many.
    const h = await startHarness({
      policy: 'version: 1\nrules:\n  - id: bump-cap\n    when: { destination.domain: cap.test }\n    action: bump\n',
      dns: { 'cap.test': { A: ['127.0.0.1'] } },
      config: {
        proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  max_flows: 1\n  timeouts: { connect: 2s, response: 2s, idle: 10s, headers: 5s }\n  drain: 2s',
        tls: `tls:\n  ca_dir: "${caDir}"\n  upstream_ca: ["${join(caDir, 'origin-ca.pem')}"]`,
      },
    });
    try {
      const r = await curl(['-x', h.proxyUrl, '--cacert', join(caDir, 'ca.pem'), `https://cap.test:${origin.port}/over`]);
      expect(r.status).toBe(503);
      expect(origin.requests).toEqual([]);
      const rec = await h.waitForRecord((x) => field(x, 'url.original') === '/over');
      expect(field(rec, 'rule.id')).toBe('builtin:capacity');
      expect(field(rec, 'error.code')).toBe('TOO_MANY_FLOWS');
    } finally {
      await h.stop();
      await origin.close();
      rmSync(caDir, { recursive: true, force: true });
    }
  });
});

describe('bump needs a CA', () => {
  it('a policy with a bump rule and no CA refuses to start, naming ca init', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-noca-'));
    try {
      writeFileSync(join(dir, 'policy.yaml'), 'version: 1\nrules:\n  - id: bump-all\n    when: { destination.port: 443 }\n    action: bump\n');
      const parsed = parseConfigText(
        `proxy:\n  listen: "127.0.0.1:0"\nadmin:\n  listen: "127.0.0.1:0"\ndns:\n  listen: null\npolicy:\n  files: ["${join(dir, 'policy.yaml')}"]\ntls:\n  ca_dir: "${join(dir, 'certs')}"\nbaseline:\n  store: memory\nlog:\n  flows: "${join(dir, 'flows.jsonl')}"\n  level: error`,
        { baseDir: dir, env: {} },
      );
      if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
      await expect(startProxy(parsed.config)).rejects.toThrow(/rule bump-all says bump, but there is no interception CA .*ca init/);
      expect(readFileSync(join(dir, 'policy.yaml'), 'utf8')).toContain('bump');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reload that adds a bump rule without a CA is refused and the last good policy stays', async () => {
    const h = await startHarness({ policy: 'version: 1\n' });
    try {
      writeFileSync(h.policyFile, 'version: 1\nrules:\n  - id: bump-later\n    when: { destination.port: 443 }\n    action: bump\n');
      const res = await fetch(`${h.adminUrl}/v1/policy/reload`, { method: 'POST', headers: { authorization: 'Bearer test-token' } });
      const body = (await res.json()) as { ok: boolean; errors: string[] };
      expect(body.ok).toBe(false);
      expect(body.errors.join('\n')).toMatch(/bump-later says bump.*ca init/);
    } finally {
      await h.stop();
    }
  });
});
