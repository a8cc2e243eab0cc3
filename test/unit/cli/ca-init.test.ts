import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { distributionHelp, runCaInit } from '../../../src/cli/ca-init.js';

function io(): { stdout: PassThrough; stderr: PassThrough; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return { stdout, stderr, out: () => out, err: () => err };
}

describe('egress-inspector ca init', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates a CA certificate that openssl accepts as a CA, and its key with mode 0600', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'egress-ca-')), 'certs');
    dirs.push(dir);
    const streams = io();
    expect(await runCaInit({ dir }, streams)).toBe(0);
    expect(statSync(join(dir, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'ca-key.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const text = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Certificate Sign/);
    expect(text).toMatch(/Public-Key: \(2048 bit\)/);
    expect(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'ca.pem')], { encoding: 'utf8' })).toContain(': OK');
    // The printed fingerprint is the one openssl computes.
    const fp = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.pem'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).split('=')[1]?.trim();
    expect(streams.out()).toContain(`SHA-256 fingerprint: ${fp}`);
    // The key belongs to the certificate.
    const certKey = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.pem'), '-noout', '-pubkey'], { encoding: 'utf8' });
    const keyPub = execFileSync('openssl', ['pkey', '-in', join(dir, 'ca-key.pem'), '-pubout'], { encoding: 'utf8' });
    expect(certKey).toBe(keyPub);
  });

  it('never replaces an existing CA without --force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-ca-'));
    dirs.push(dir);
    expect(await runCaInit({ dir }, io())).toBe(0);
    const before = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const again = io();
    expect(await runCaInit({ dir }, again)).toBe(1);
    expect(again.err()).toContain('already holds a CA');
    expect(readFileSync(join(dir, 'ca.pem'), 'utf8')).toBe(before);
    expect(await runCaInit({ dir, force: true }, io())).toBe(0);
    expect(readFileSync(join(dir, 'ca.pem'), 'utf8')).not.toBe(before);
    expect(statSync(join(dir, 'ca-key.pem')).mode & 0o777).toBe(0o600);
  });

  it('says how to make each kind of endpoint trust the new CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-ca-'));
    dirs.push(dir);
    const streams = io();
    expect(await runCaInit({ dir }, streams)).toBe(0);
    const out = streams.out();
    const certPath = join(dir, 'ca.pem');
    expect(out).toContain(distributionHelp(certPath, join(dir, 'ca-key.pem')));
    for (const expected of [
      // Windows: Group Policy path and the one-host command
      'Computer Configuration > Policies > Windows Settings > Security Settings >',
      'Public Key Policies > Trusted Root Certification Authorities',
      `certutil -addstore -f Root ${certPath}`,
      // Debian/Ubuntu (the .crt suffix is required), RHEL/Fedora, macOS
      `cp ${certPath} /usr/local/share/ca-certificates/egress-inspector.crt && update-ca-certificates`,
      '/etc/pki/ca-trust/source/anchors/',
      'update-ca-trust',
      `security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${certPath}`,
      // Firefox enterprise policies, and runtimes with their own stores
      'Certificates.ImportEnterpriseRoots',
      'Certificates.Install',
      'keytool -importcert -cacerts',
      'NODE_EXTRA_CA_CERTS=',
      'REQUESTS_CA_BUNDLE=',
    ]) {
      expect(out).toContain(expected);
    }
    // The key is never part of what is distributed.
    const help = distributionHelp(certPath, join(dir, 'ca-key.pem')).split('\n');
    expect(help.filter((line) => !line.startsWith('Keep ')).join('\n')).not.toContain('ca-key.pem');
    expect(out).toContain(`Keep ${join(dir, 'ca-key.pem')} secret`);
  });
});
