import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCaInit } from '../../../src/cli/ca-init.js';

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
});
