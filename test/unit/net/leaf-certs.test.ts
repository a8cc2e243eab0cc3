import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { EgressError } from '../../../src/errors.js';
import { createCa } from '../../../src/net/ca.js';
import { loadCa, type LoadedCa } from '../../../src/net/ca-load.js';
import { checkLeafName, coverFor, createLeafMinter, leafValidity, type LeafMinter } from '../../../src/net/leaf-certs.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const root = mkdtempSync(join(tmpdir(), 'egress-leaf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;

function writeCa(cert: string, key: string): string {
  const dir = join(root, `ca${count++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'ca.pem'), cert);
  writeFileSync(join(dir, 'ca-key.pem'), key, { mode: 0o600 });
  return dir;
}

/** The RSA-2048 CA of `ca init`. */
async function rsaCa(): Promise<{ dir: string; ca: LoadedCa }> {
  const m = createCa('Leaf Test RSA CA');
  const dir = writeCa(m.certPem, m.keyPem);
  return { dir, ca: await loadCa(dir) };
}

/** An operator's own ECDSA P-256 CA, made by openssl. */
async function ecCa(): Promise<{ dir: string; ca: LoadedCa }> {
  const dir = join(root, `ec${count++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'req.cnf'), [
    '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', 'CN = Leaf Test EC CA', 'O = Operator',
    '[ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash', '',
  ].join('\n'));
  execFileSync('openssl', [
    'req', '-x509', '-config', join(dir, 'req.cnf'), '-nodes', '-days', '30', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
  ], { stdio: 'ignore' });
  const caDir = writeCa(readFileSync(join(dir, 'c.pem'), 'utf8'), readFileSync(join(dir, 'k.pem'), 'utf8'));
  return { dir: caDir, ca: await loadCa(caDir) };
}

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs openssl asynchronously (the TLS server under test lives in this process), stdin empty. */
function opensslAsync(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill(), 10_000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

interface Server {
  port: number;
  close(): Promise<void>;
}

/** A TLS server whose SNICallback asks the minter, as the bump engine will; it answers "ok <servername>". */
async function sniServer(minter: LeafMinter): Promise<Server> {
  const server = tls.createServer({
    SNICallback: (name, cb) => {
      minter.secureContext(name).then((ctx) => cb(null, ctx), (err: Error) => cb(err));
    },
  }, (s) => {
    s.on('error', () => s.destroy());
    s.end(`ok ${s.servername || '-'}\n`);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

/** A TLS server over plain TCP sockets with a fixed context: how a bump serves a client that sent no SNI (an IP target). */
async function contextServer(context: tls.SecureContext, host: string): Promise<Server> {
  const server = net.createServer((raw) => {
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    s.on('error', () => s.destroy());
    s.end('ok\n'); // written once the handshake is done
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

function connect(opts: tls.ConnectionOptions): Promise<{ authorized: boolean; error: string | null; data: string; cert: tls.DetailedPeerCertificate }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(opts);
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('error', reject);
    s.on('secureConnect', () => {
      const result = { authorized: s.authorized, error: s.authorizationError ? String(s.authorizationError) : null, cert: s.getPeerCertificate(true) };
      s.on('end', () => resolve({ ...result, data }));
    });
  });
}

describe.each([
  ['RSA-2048 CA (ca init)', rsaCa, 'sha256WithRSAEncryption'],
  ['ECDSA P-256 CA (openssl)', ecCa, 'ecdsa-with-SHA256'],
])('leaves signed by an %s', (_label, makeCa, sigAlg) => {
  let dir: string;
  let ca: LoadedCa;
  let minter: LeafMinter;
  beforeAll(async () => {
    ({ dir, ca } = await makeCa());
    minter = createLeafMinter(ca, { wildcards: false });
  });

  it('verify against the CA and match their name only', async () => {
    const leaf = await minter.certificate('www.example.com');
    const x = new X509Certificate(leaf.pem);
    expect(x.verify(ca.cert.publicKey)).toBe(true);
    expect(x.checkIssued(ca.cert)).toBe(true);
    expect(x.issuer).toBe(ca.cert.subject);
    expect(x.subject).toBe('CN=www.example.com');
    expect(x.checkHost('www.example.com')).toBe('www.example.com');
    expect(x.checkHost('other.example.com')).toBeUndefined();
    expect(x.checkHost('example.com')).toBeUndefined();
    expect(x.ca).toBe(false);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(x.raw.equals(leaf.der)).toBe(true);
  });

  it('pass `openssl verify` as a TLS server certificate, with the extensions of the issue', async () => {
    const leaf = await minter.certificate('api.example.org');
    const file = join(dir, 'leaf.pem');
    writeFileSync(file, leaf.pem);
    expect(openssl(['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', '-x509_strict', file])).toContain(`${file}: OK`);
    const text = openssl(['x509', '-noout', '-text', '-in', file]);
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain(`Signature Algorithm: ${sigAlg}`);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s+DNS:api\.example\.org\n/);
    expect(text).toContain('X509v3 Subject Key Identifier');
    const aki = openssl(['x509', '-noout', '-ext', 'authorityKeyIdentifier', '-in', file]).replace(/\s|keyid:/g, '');
    expect(aki).toContain(ca.keyId.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:'));
    // RFC 5280 §4.1.2.2: positive, at most 20 octets.
    const serial = openssl(['x509', '-noout', '-serial', '-in', file]).trim().replace('serial=', '');
    expect(serial.toLowerCase()).toBe(leaf.serial);
    expect(serial.length).toBeLessThanOrEqual(40);
    expect(Number.parseInt(serial.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it('give a Node client an authorized handshake through SNICallback, and `openssl s_client` verify code 0', async () => {
    const server = await sniServer(minter);
    try {
      const ok = await connect({ host: '127.0.0.1', port: server.port, servername: 'login.example.net', ca: ca.certPem });
      expect(ok.error).toBeNull();
      expect(ok.authorized).toBe(true);
      expect(ok.data).toBe('ok login.example.net\n');
      expect(ok.cert.subjectaltname).toBe('DNS:login.example.net');
      // The root CA is not sent (it is what the client trusts); Node still shows it as the issuer from its trust store.
      expect(ok.cert.issuerCertificate.fingerprint256).toBe(ca.cert.fingerprint256);
      // Trusting another CA, the same handshake is refused.
      const other = createCa('Unrelated CA');
      await expect(connect({ host: '127.0.0.1', port: server.port, servername: 'login.example.net', ca: other.certPem })).rejects.toThrow(/certificate/);

      const out = await opensslAsync([
        's_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'login.example.net', '-CAfile', join(dir, 'ca.pem'),
        '-verify_return_error', '-verify_hostname', 'login.example.net',
      ]);
      expect(out).toContain('Verify return code: 0 (ok)');
      const wrong = await opensslAsync([
        's_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'login.example.net', '-CAfile', join(dir, 'ca.pem'),
        '-verify_return_error', '-verify_hostname', 'other.example.net',
      ]);
      expect(wrong).not.toContain('Verify return code: 0 (ok)');
    } finally {
      await server.close();
    }
  });

  it('put an IP literal in an iPAddress SAN that Node accepts for host 127.0.0.1', async () => {
    const leaf = await minter.certificate('127.0.0.1');
    const x = new X509Certificate(leaf.pem);
    expect(x.subjectAltName).toBe('IP Address:127.0.0.1');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkIP('127.0.0.2')).toBeUndefined();
    const server = await contextServer(await minter.secureContext('127.0.0.1'), '127.0.0.1');
    try {
      const ok = await connect({ host: '127.0.0.1', port: server.port, ca: ca.certPem });
      expect(ok.error).toBeNull();
      expect(ok.authorized).toBe(true);
    } finally {
      await server.close();
    }
    const v6 = new X509Certificate((await minter.certificate('[2001:DB8:0::1]')).pem);
    expect(v6.subjectAltName).toBe('IP Address:2001:DB8:0:0:0:0:0:1');
    expect(v6.checkIP('2001:db8::1')).toBe('2001:db8::1');
    expect(v6.subject).toBe('CN=2001:db8::1');
  });
});

describe('leaf validity', () => {
  let ca: LoadedCa;
  beforeAll(async () => {
    ({ ca } = await rsaCa());
  });

  it('runs from an hour back to validityDays ahead, to the second', async () => {
    const t0 = Date.UTC(2027, 0, 10, 12, 0, 0, 500);
    const leaf = await createLeafMinter(ca, { now: () => t0, validityDays: 3, wildcards: false }).certificate('a.example');
    expect(leaf.notBefore.getTime()).toBe(t0 - 500 - HOUR);
    expect(leaf.notAfter.getTime()).toBe(t0 - 500 + 3 * DAY);
    const x = new X509Certificate(leaf.pem);
    expect(Date.parse(x.validFrom)).toBe(leaf.notBefore.getTime());
    expect(Date.parse(x.validTo)).toBe(leaf.notAfter.getTime());
  });

  it('is clipped to the CA notAfter', async () => {
    const t0 = ca.notAfter.getTime() - 2 * DAY;
    const leaf = await createLeafMinter(ca, { now: () => t0, wildcards: false }).certificate('b.example');
    expect(leaf.notAfter.getTime()).toBe(ca.notAfter.getTime());
    expect(Date.parse(new X509Certificate(leaf.pem).validTo)).toBe(ca.notAfter.getTime());
    expect(leafValidity(t0, ca, 7).notAfter).toEqual(ca.notAfter);
  });

  it('uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', async () => {
    const longCa: LoadedCa = { ...ca, notAfter: new Date(Date.UTC(2060, 0, 1)) };
    const t0 = Date.UTC(2049, 11, 30);
    const leaf = await createLeafMinter(longCa, { now: () => t0, wildcards: false }).certificate('y2050.example');
    expect(leaf.der.includes(Buffer.from('491229230000Z'))).toBe(true); // UTCTime notBefore
    expect(leaf.der.includes(Buffer.from('20500106000000Z'))).toBe(true); // GeneralizedTime notAfter
    expect(Date.parse(new X509Certificate(leaf.pem).validTo)).toBe(Date.UTC(2050, 0, 6));
  });

  it('refuses to mint once the CA has expired, and the failure is not cached', async () => {
    let t = ca.notAfter.getTime() + 1000;
    const minter = createLeafMinter(ca, { now: () => t, wildcards: false });
    await expect(minter.secureContext('c.example')).rejects.toMatchObject({ code: 'CA_INVALID', message: expect.stringMatching(/expired on .*ca init --force/) });
    expect(minter.stats()).toEqual({ mints: 0, hits: 0, size: 0 });
    t = Date.now();
    await expect(minter.secureContext('c.example')).resolves.toBeDefined();
    expect(minter.stats().mints).toBe(1);
  });
});

describe('the context cache', () => {
  let ca: LoadedCa;
  beforeAll(async () => {
    ({ ca } = await rsaCa());
  });

  it('mints once for 50 concurrent calls for one new name (single flight)', async () => {
    const minter = createLeafMinter(ca, { wildcards: false });
    const contexts = await Promise.all(Array.from({ length: 50 }, () => minter.secureContext('burst.example.com')));
    expect(new Set(contexts).size).toBe(1);
    expect(minter.stats()).toEqual({ mints: 1, hits: 49, size: 1 });
  });

  it('returns the same context on a hit, for any spelling of the name, and synchronously from cachedContext', async () => {
    const minter = createLeafMinter(ca, { wildcards: false });
    expect(minter.cachedContext('www.example.com')).toBeUndefined();
    const first = await minter.secureContext('www.example.com');
    expect(await minter.secureContext('www.example.com')).toBe(first);
    expect(await minter.secureContext('WWW.Example.COM')).toBe(first);
    expect(await minter.secureContext('www.example.com.')).toBe(first);
    expect(minter.cachedContext('www.example.com')).toBe(first);
    expect((await minter.certificate('www.example.com')).name.name).toBe('www.example.com');
    expect(minter.stats()).toEqual({ mints: 1, hits: 5, size: 1 });
  });

  it('evicts the least recently used context beyond cacheSize', async () => {
    const minter = createLeafMinter(ca, { cacheSize: 2, wildcards: false });
    const a = await minter.secureContext('a.example');
    await minter.secureContext('b.example');
    expect(await minter.secureContext('a.example')).toBe(a); // a is now the most recent
    await minter.secureContext('c.example'); // evicts b
    expect(minter.stats()).toMatchObject({ mints: 3, size: 2 });
    expect(await minter.secureContext('a.example')).toBe(a);
    expect(minter.stats().mints).toBe(3);
    await minter.secureContext('b.example');
    expect(minter.stats()).toMatchObject({ mints: 4, size: 2 });
  });

  it('re-mints a context once its leaf is within expiryMargin of notAfter', async () => {
    let t = Date.now();
    const minter = createLeafMinter(ca, { now: () => t, validityDays: 1, expiryMarginMs: HOUR, wildcards: false });
    const first = await minter.certificate('exp.example');
    const ctx = await minter.secureContext('exp.example');
    t = first.notAfter.getTime() - HOUR - 1000; // still usable
    expect(await minter.secureContext('exp.example')).toBe(ctx);
    expect(minter.cachedContext('exp.example')).toBe(ctx);
    t = first.notAfter.getTime() - HOUR + 1000; // inside the margin: gone
    expect(minter.cachedContext('exp.example')).toBeUndefined();
    const renewed = await minter.certificate('exp.example');
    expect(minter.stats().mints).toBe(2);
    expect(renewed.serial).not.toBe(first.serial);
    expect(renewed.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    expect(await minter.secureContext('exp.example')).not.toBe(ctx);
  });

  it('does not keep a failed mint: every waiter gets the error, the next call mints again', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    let broken = true;
    // A CA whose key cannot sign (a public key) for the first mint only.
    const flaky: LoadedCa = Object.create(ca, { key: { get: () => (broken ? publicKey : ca.key) } }) as LoadedCa;
    broken = false;
    const minter = createLeafMinter(flaky); // the scheme is read from the real key
    broken = true;
    const waiters = Array.from({ length: 5 }, () => minter.secureContext('flaky.example'));
    for (const w of waiters) await expect(w).rejects.toThrow();
    expect(minter.stats()).toEqual({ mints: 0, hits: 4, size: 0 });
    broken = false;
    await expect(minter.secureContext('flaky.example')).resolves.toBeDefined();
    expect(minter.stats()).toMatchObject({ mints: 1, size: 1 });
  });

  it('sends the CA after the leaf and keeps the full name in the SAN when the CN is cut to 64 characters', async () => {
    const minter = createLeafMinter(ca, { wildcards: false });
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.example.com`;
    const x = new X509Certificate((await minter.certificate(long)).pem);
    expect(x.subject).toBe(`CN=${long.slice(0, 64)}`);
    expect(x.subjectAltName).toBe(`DNS:${long}`);
    expect(x.checkHost(long)).toBe(long);
  });

  it('refuses bad options', () => {
    expect(() => createLeafMinter(ca, { validityDays: 0 })).toThrow(/validityDays/);
    expect(() => createLeafMinter(ca, { validityDays: 1, expiryMarginMs: DAY })).toThrow(/expiryMarginMs/);
    expect(() => createLeafMinter(ca, { cacheSize: 0 })).toThrow(/maxEntries/);
  });
});

describe('names', () => {
  it.each([
    ['example.com', 'dns', 'example.com'],
    ['WWW.Example.COM', 'dns', 'www.example.com'],
    ['example.com.', 'dns', 'example.com'],
    ['localhost', 'dns', 'localhost'],
    ['xn--mnchen-3ya.de', 'dns', 'xn--mnchen-3ya.de'],
    ['a-b.c0', 'dns', 'a-b.c0'],
    [`${'a'.repeat(63)}.com`, 'dns', `${'a'.repeat(63)}.com`],
    [`${'abcdefghi.'.repeat(24)}abcdefghijkl`, 'dns', `${'abcdefghi.'.repeat(24)}abcdefghijkl`], // 252 characters
    ['192.0.2.1', 'ip', '192.0.2.1'],
    ['::1', 'ip', '::1'],
    ['[2001:0db8:0:0::1]', 'ip', '2001:db8::1'],
  ])('%s is a %s name: %s', (input, kind, name) => {
    const leaf = checkLeafName(input);
    expect(leaf.kind).toBe(kind);
    expect(leaf.name).toBe(name);
    expect(leaf.ip?.length ?? null).toBe(kind === 'ip' ? (name.includes(':') ? 16 : 4) : null);
  });

  it.each([
    ['', /empty/],
    ['*.example.com', /wildcard/],
    ['foo_bar.example.com', /letters, digits, hyphens and dots/],
    ['exämple.com', /IDNA A-labels/],
    ['\u212aelvin.com', /letters, digits/], // the Kelvin sign lower-cases to ASCII "k"
    ['example.com\n', /letters, digits/],
    ['example.com:443', /letters, digits/],
    ['-a.com', /neither starts nor ends with a hyphen/],
    ['a-.com', /hyphen/],
    ['a..b', /1 to 63/],
    ['.', /1 to 253/],
    [`${'a'.repeat(64)}.com`, /1 to 63/],
    [`${'abcdefghi.'.repeat(25)}abcd`, /longer than 253|1 to 253/],
    ['1.2.3.999', /dotted numbers/],
    ['127.1', /dotted numbers/],
    ['fe80::1%eth0', /zone/],
    ['[example.com]', /brackets/],
  ])('%j is refused with BAD_TARGET', (input, message) => {
    let err: unknown;
    try {
      checkLeafName(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EgressError);
    expect((err as EgressError).code).toBe('BAD_TARGET');
    expect((err as EgressError).message).toMatch(message);
    expect((err as EgressError).message).not.toMatch(/[\n\r]/);
  });

  const anyString = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '.', '*', '_', ':', '[', ']', '%'), maxLength: 300 }),
    fc.domain(),
  );

  it('property: any string gives a normalised name or EgressError BAD_TARGET, never another throw', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        try {
          const leaf = checkLeafName(s);
          expect(leaf.name.length).toBeGreaterThan(0);
          expect(leaf.name.length).toBeLessThanOrEqual(253);
          expect(leaf.name).toBe(leaf.name.toLowerCase());
          // Normalising is idempotent, so the cache has one key per name.
          expect(checkLeafName(leaf.name)).toEqual(leaf);
        } catch (err) {
          if (!(err instanceof EgressError && err.code === 'BAD_TARGET')) throw err;
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('property: generated domains and IP addresses are accepted', () => {
    fc.assert(fc.property(fc.domain(), (d) => void expect(checkLeafName(d).kind).toBe('dns')), { numRuns: 2000 });
    fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) => void expect(checkLeafName(ip).kind).toBe('ip')), { numRuns: 2000 });
  });

  it('property: minted IP leaves match their address by Node\'s own check; any name settles (no hang) with a context or BAD_TARGET', async () => {
    const { ca } = await rsaCa();
    const minter = createLeafMinter(ca, { cacheSize: 50, wildcards: false });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.ipV4(), fc.ipV6()), async (ip) => {
        const x = new X509Certificate((await minter.certificate(ip)).pem);
        expect(x.checkIP(ip)).toBeDefined();
      }),
      { numRuns: 60 },
    );
    await fc.assert(
      fc.asyncProperty(anyString, async (s) => {
        await minter.secureContext(s).then(
          (ctx) => expect(ctx).toBeDefined(),
          (err: unknown) => {
            if (!(err instanceof EgressError && err.code === 'BAD_TARGET')) throw err;
          },
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('the chain a leaf is sent with', () => {
  it('an intermediate CA goes with the leaf, so a client that trusts only the root verifies it; a root CA is not sent', async () => {
    const dir = join(root, `chain${count++}`);
    mkdirSync(dir);
    const ext = ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash'];
    writeFileSync(join(dir, 'root.cnf'), ['[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', 'CN = Corp Root', '[ext]', ...ext, ''].join('\n'));
    writeFileSync(join(dir, 'int.ext'), [...ext, 'authorityKeyIdentifier = keyid', ''].join('\n'));
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    execFileSync('openssl', ['req', '-x509', '-config', join(dir, 'root.cnf'), ...ec, '-days', '30', '-keyout', join(dir, 'root.key'), '-out', join(dir, 'root.pem')], { stdio: 'ignore' });
    execFileSync('openssl', ['req', '-new', ...ec, '-subj', '/CN=Gateway Intermediate', '-keyout', join(dir, 'int.key'), '-out', join(dir, 'int.csr')], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'int.csr'), '-CA', join(dir, 'root.pem'), '-CAkey', join(dir, 'root.key'), '-CAcreateserial', '-days', '20', '-extfile', join(dir, 'int.ext'), '-out', join(dir, 'int.pem')], { stdio: 'ignore' });
    const intermediate = await loadCa(writeCa(readFileSync(join(dir, 'int.pem'), 'utf8'), readFileSync(join(dir, 'int.key'), 'utf8')));
    const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
    const server = await sniServer(createLeafMinter(intermediate));
    try {
      const ok = await connect({ host: '127.0.0.1', port: server.port, servername: 'chain.example.net', ca: rootPem });
      expect(ok.error).toBeNull();
      expect(ok.authorized).toBe(true);
      expect(ok.cert.issuerCertificate.subject.CN).toBe('Gateway Intermediate');
    } finally {
      await server.close();
    }
    // A root: the client gets the leaf alone (openssl shows a chain of depth 0 sent by the server).
    const rootCa = await loadCa(writeCa(rootPem, readFileSync(join(dir, 'root.key'), 'utf8')));
    const rootServer = await sniServer(createLeafMinter(rootCa));
    try {
      const out = await opensslAsync(['s_client', '-connect', `127.0.0.1:${rootServer.port}`, '-servername', 'leaf.example.net', '-CAfile', join(dir, 'root.pem'), '-showcerts', '-verify_return_error']);
      expect(out).toContain('Verify return code: 0 (ok)');
      expect(out.match(/-----BEGIN CERTIFICATE-----/g)?.length).toBe(1);
    } finally {
      await rootServer.close();
    }
  });
});

describe('wildcard leaves (the default)', () => {
  it('one leaf per parent domain below the registrable domain; names at a public suffix get their own', async () => {
    const { ca } = await rsaCa();
    const minter = createLeafMinter(ca);
    const a = await minter.certificate('a.cdn.example.com');
    const b = await minter.certificate('B.cdn.example.com');
    expect(b.der.equals(a.der)).toBe(true);
    expect(minter.stats().mints).toBe(1);
    const x = new X509Certificate(a.der);
    expect(x.subjectAltName).toBe('DNS:*.cdn.example.com');
    expect(x.checkHost('a.cdn.example.com')).toBe('*.cdn.example.com');
    expect(x.checkHost('cdn.example.com')).toBeUndefined();
    // example.co.uk is registrable itself: no *.co.uk; a label below it is covered by *.example.co.uk.
    expect(coverFor(checkLeafName('example.co.uk')).name).toBe('example.co.uk');
    expect(coverFor(checkLeafName('www.example.co.uk')).name).toBe('*.example.co.uk');
    // A private public suffix (github.io): each site is its own owner.
    expect(coverFor(checkLeafName('someone.github.io')).name).toBe('someone.github.io');
    expect(coverFor(checkLeafName('docs.someone.github.io')).name).toBe('*.someone.github.io');
    // IP literals and single labels stay as they are.
    expect(coverFor(checkLeafName('10.1.2.3')).name).toBe('10.1.2.3');
    expect(coverFor(checkLeafName('intranet')).name).toBe('intranet');
    // cachedContext finds the wildcard entry for any name under it.
    expect(minter.cachedContext('zzz.cdn.example.com')).toBeDefined();
  });

  it('a Node client verifies a wildcard leaf for the name it asked for', async () => {
    const { ca } = await rsaCa();
    const server = await sniServer(createLeafMinter(ca));
    try {
      const ok = await connect({ host: '127.0.0.1', port: server.port, servername: 'n0001.bench.example', ca: ca.certPem });
      expect(ok.error).toBeNull();
      expect(ok.authorized).toBe(true);
      expect(ok.cert.subjectaltname).toBe('DNS:*.bench.example');
    } finally {
      await server.close();
    }
  });
});
