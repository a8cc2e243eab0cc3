import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressError } from '../../../src/errors.js';
import { createCa } from '../../../src/net/ca.js';
import { keyIdentifier, loadCa } from '../../../src/net/ca-load.js';

const root = mkdtempSync(join(tmpdir(), 'egress-ca-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;

/** A CA directory holding the given files (ca-key.pem with mode 0600 unless told). */
function caDir(files: { cert?: string; key?: string; keyMode?: number }): string {
  const dir = join(root, `ca${dirCount++}`);
  mkdirSync(dir, { recursive: true });
  if (files.cert !== undefined) writeFileSync(join(dir, 'ca.pem'), files.cert);
  if (files.key !== undefined) {
    writeFileSync(join(dir, 'ca-key.pem'), files.key);
    chmodSync(join(dir, 'ca-key.pem'), files.keyMode ?? 0o600);
  }
  return dir;
}

/** A CA made by the openssl CLI with the given v3 extensions (key type EC P-256 unless told). */
function opensslCa(extensions: string[], opts: { key?: string[]; days?: number } = {}): { cert: string; key: string } {
  const dir = join(root, `openssl${dirCount++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'req.cnf'), ['[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', 'CN = Test CA', 'O = egress-inspector tests', '[ext]', ...extensions, ''].join('\n'));
  execFileSync('openssl', [
    'req', '-x509', '-config', join(dir, 'req.cnf'), '-nodes', '-days', String(opts.days ?? 30),
    ...(opts.key ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']),
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

const CA_EXT = ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash'];

async function loadError(dir: string): Promise<EgressError> {
  const err: unknown = await loadCa(dir).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EgressError);
  return err as EgressError;
}

describe('loadCa', () => {
  const rsa = createCa('Test RSA CA');

  it('loads the CA made by `ca init` (RSA-2048) with its subject DER and key identifier', async () => {
    const dir = caDir({ cert: rsa.certPem, key: rsa.keyPem });
    const ca = await loadCa(dir);
    expect(ca.key.asymmetricKeyType).toBe('rsa');
    expect(ca.cert.subject).toContain('CN=Test RSA CA');
    expect(ca.certDer.equals(new X509Certificate(rsa.certPem).raw)).toBe(true);
    expect(new X509Certificate(ca.certPem).fingerprint256).toBe(ca.cert.fingerprint256);
    // The subject DER is the certificate's own bytes: a SEQUENCE found inside the certificate, naming the CN.
    expect(ca.subjectDer[0]).toBe(0x30);
    expect(ca.certDer.includes(ca.subjectDer)).toBe(true);
    expect(ca.subjectDer.includes(Buffer.from('Test RSA CA'))).toBe(true);
    // Self-signed: issuer and subject are the same bytes, so the DER appears twice.
    expect(ca.certDer.indexOf(ca.subjectDer)).not.toBe(ca.certDer.lastIndexOf(ca.subjectDer));
    // keyId: the certificate's subjectKeyIdentifier as openssl prints it, which is also SHA-1 of the key bits.
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectKeyIdentifier'], { input: rsa.certPem, encoding: 'utf8' });
    expect(text.replace(/\s/g, '')).toContain(ca.keyId.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:'));
    expect(ca.keyId.equals(keyIdentifier(ca.cert.publicKey.export({ type: 'spki', format: 'der' })))).toBe(true);
    // Validity to the second, as in the certificate.
    expect(ca.notAfter.getTime()).toBe(Date.parse(ca.cert.validTo));
    expect(ca.notBefore.getTime()).toBe(Date.parse(ca.cert.validFrom));
  });

  it('loads an ECDSA P-256 CA made by openssl, and one without subjectKeyIdentifier (SHA-1 of the key bits instead)', async () => {
    const ec = opensslCa(CA_EXT);
    const ca = await loadCa(caDir(ec));
    expect(ca.key.asymmetricKeyType).toBe('ec');
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectKeyIdentifier'], { input: ec.cert, encoding: 'utf8' });
    expect(text.replace(/\s/g, '')).toContain(ca.keyId.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:'));

    const noSki = opensslCa(['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign', 'subjectKeyIdentifier = none', 'authorityKeyIdentifier = none']);
    expect(execFileSync('openssl', ['x509', '-noout', '-text'], { input: noSki.cert, encoding: 'utf8' })).not.toContain('Subject Key Identifier');
    const bare = await loadCa(caDir(noSki));
    expect(bare.keyId).toHaveLength(20);
    // What openssl would have put in the extension for this key (method 1 of RFC 5280 §4.2.1.2).
    const spki = bare.cert.publicKey.export({ type: 'spki', format: 'der' });
    const bits = spki.subarray(spki.length - 65); // P-256 uncompressed point: 04 || X || Y
    expect(bits[0]).toBe(0x04);
    expect(bare.keyId.toString('hex')).toBe(execFileSync('openssl', ['dgst', '-sha1', '-r'], { input: bits, encoding: 'utf8' }).slice(0, 40));
  });

  it('accepts a PEM file with text before the certificate, and PKCS#1 / SEC1 keys', async () => {
    const rsa1 = opensslCa(CA_EXT, { key: ['-newkey', 'rsa:2048'] });
    const pkcs1 = execFileSync('openssl', ['pkey', '-traditional'], { input: rsa1.key, encoding: 'utf8' });
    expect(pkcs1).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const ca = await loadCa(caDir({ cert: `Subject: Test CA\n${rsa1.cert}`, key: pkcs1 }));
    expect(ca.key.asymmetricKeyType).toBe('rsa');
  });

  it.each([
    ['both files missing', false, /ca\.pem does not exist: create it with `egress-inspector ca init --dir /],
    ['the key missing', true, /ca-key\.pem does not exist: create it with `egress-inspector ca init --dir .*--force/],
  ])('%s → CA_INVALID with the `ca init` command', async (_intent, withCert, message) => {
    const dir = caDir(withCert ? { cert: rsa.certPem } : {});
    const err = await loadError(dir);
    expect(err.code).toBe('CA_INVALID');
    expect(err.message).toMatch(message);
    expect(err.message).toContain(dir);
  });

  it('refuses a key readable by group or others, saying chmod 600', async () => {
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      const dir = caDir({ cert: rsa.certPem, key: rsa.keyPem, keyMode: mode });
      const err = await loadError(dir);
      expect(err.code).toBe('CA_INVALID');
      expect(err.message).toContain(`mode ${mode.toString(8).padStart(4, '0')}`);
      expect(err.message).toContain(`chmod 600 ${join(dir, 'ca-key.pem')}`);
    }
    await expect(loadCa(caDir({ cert: rsa.certPem, key: rsa.keyPem, keyMode: 0o400 }))).resolves.toBeDefined();
  });

  it.each([
    ['a certificate that is not PEM', () => ({ cert: 'hello\n', key: rsa.keyPem }), /ca\.pem is not a PEM certificate/],
    ['swapped files', () => ({ cert: rsa.keyPem, key: rsa.certPem }), /ca\.pem is not a PEM certificate.*swapped/],
    ['a damaged certificate', () => ({ cert: `${rsa.certPem.split('\n').slice(0, 4).join('\n')}\n-----END CERTIFICATE-----\n`, key: rsa.keyPem }), /ca\.pem holds a PEM block that is not a valid X\.509 certificate/],
    ['a key that is not PEM', () => ({ cert: rsa.certPem, key: 'secret\n' }), /ca-key\.pem is not a PEM private key/],
    ['a damaged key', () => ({ cert: rsa.certPem, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), /ca-key\.pem is not a valid private key/],
    ['an encrypted key', () => ({ cert: rsa.certPem, key: execFileSync('openssl', ['pkey', '-aes256', '-passout', 'pass:x'], { input: rsa.keyPem, encoding: 'utf8' }) }), /ca-key\.pem is encrypted/],
    ['the key of another CA', () => ({ cert: rsa.certPem, key: createCa('other').keyPem }), /ca-key\.pem is not the private key of .*ca\.pem/],
    ['a certificate that is not a CA', () => opensslCa(['basicConstraints = critical,CA:FALSE']), /ca\.pem is not a CA certificate \(basicConstraints CA:TRUE is missing\)/],
    ['a CA whose keyUsage lacks keyCertSign', () => opensslCa(['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,digitalSignature,cRLSign']), /keyUsage without keyCertSign/],
    ['an expired CA', () => createCa('old', new Date(Date.now() - 6 * 365 * 86_400_000)), /ca\.pem expired on \d{4}-.*ca init --dir .* --force/],
    ['a CA not valid yet', () => createCa('future', new Date(Date.now() + 3 * 86_400_000)), /ca\.pem is not valid before \d{4}-.*clock/],
    ['an Ed25519 key', () => opensslCa(CA_EXT, { key: ['-newkey', 'ed25519'] }), /ca-key\.pem holds a key of type ed25519; the CA key must be RSA or ECDSA/],
  ])('refuses %s with CA_INVALID naming the file', async (_intent, make, message) => {
    const m = make();
    const files = 'certPem' in m ? { cert: m.certPem, key: m.keyPem } : m;
    const err = await loadError(caDir(files));
    expect(err.code).toBe('CA_INVALID');
    expect(err.message).toMatch(/^TLS interception CA: /);
    expect(err.message).toMatch(message);
  });

  it('reports an unreadable key as CA_INVALID (permission denied)', async () => {
    if (process.getuid?.() === 0) return; // root reads any file
    const dir = caDir({ cert: rsa.certPem, key: rsa.keyPem, keyMode: 0o000 });
    const err = await loadError(dir);
    expect(err.code).toBe('CA_INVALID');
    expect(err.message).toContain('permission denied');
    unlinkSync(join(dir, 'ca-key.pem'));
  });
});
