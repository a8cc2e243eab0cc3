import { describe, expect, it } from 'vitest';
import { Flow } from '../../../src/flow/flow.js';
import {
  hashPassword,
  identifyRequest,
  parseProcessClaim,
  parseUsersFile,
  ProxyAuthenticator,
  signProcessClaim,
  type RequestIdentityOptions,
} from '../../../src/enrich/identity.js';

const KEY = 'a-shared-key-of-32-characters!!!';
const NOW = 1_795_699_520_000;
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('users file and Proxy-Authorization: Basic', () => {
  it('hashes with scrypt, never storing the password, and verifies it', async () => {
    const line = await hashPassword('alice', 'correct horse');
    expect(line).toMatch(/^alice:\$scrypt\$N=32768,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(line).not.toContain('correct horse');
    const auth = new ProxyAuthenticator(parseUsersFile(`# users\n${line}\n`, 'users'));
    expect(await auth.authenticate(basic('alice', 'correct horse'))).toEqual({ ok: true, user: 'alice' });
    expect(await auth.authenticate(basic('alice', 'wrong'))).toMatchObject({ ok: false });
    expect(await auth.authenticate(basic('mallory', 'correct horse'))).toMatchObject({ ok: false });
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false, reason: 'no Proxy-Authorization header' });
    expect(await auth.authenticate('Bearer abc')).toMatchObject({ ok: false, reason: 'Proxy-Authorization is not Basic' });
  });

  it('refuses malformed users files with file:line and no secret in the message', () => {
    expect(() => parseUsersFile('alice:plaintext\n', 'users.txt')).toThrow(/users\.txt:1: expected "user:\$scrypt\$/);
    expect(() => parseUsersFile('bob:$scrypt$N=3,r=8,p=1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5\n', 'u')).toThrow(/u:1:/);
  });
});

describe('signed process claims (X-Egress-Process)', () => {
  it('verifies a fresh claim signed with the shared key', () => {
    const header = signProcessClaim('chrome.exe', 4242, KEY, NOW);
    expect(parseProcessClaim(header, KEY, NOW + 1000)).toEqual({ name: 'chrome.exe', pid: 4242, verified: true, reason: null });
  });

  it('records bad, stale, unsigned and keyless claims as unverified, with the reason', () => {
    const header = signProcessClaim('chrome.exe', 4242, KEY, NOW);
    expect(parseProcessClaim(header, 'another-key-of-32-characters!!!!', NOW)).toMatchObject({ verified: false, reason: 'bad signature' });
    expect(parseProcessClaim(header, KEY, NOW + 10 * 60_000)).toMatchObject({ verified: false, reason: 'claim timestamp missing or stale' });
    expect(parseProcessClaim('name=chrome.exe; pid=1', KEY, NOW)).toMatchObject({ name: 'chrome.exe', pid: 1, verified: false, reason: 'claim is not signed' });
    expect(parseProcessClaim(header, null, NOW)).toMatchObject({ verified: false, reason: 'no identity.process_hmac_key configured' });
    expect(parseProcessClaim(header.replace('chrome.exe', 'rundll32.exe'), KEY, NOW)).toMatchObject({ name: 'rundll32.exe', verified: false });
    expect(parseProcessClaim('x'.repeat(5000), KEY, NOW)).toMatchObject({ verified: false, reason: 'claim too long' });
    expect(parseProcessClaim(undefined, KEY, NOW)).toBeNull();
  });
});

describe('identifyRequest', () => {
  const base: RequestIdentityOptions = {
    authenticator: null,
    requireAuth: false,
    isTrustedProxy: (ip) => ip === '10.9.9.9',
    userHeaders: ['x-authenticated-user'],
    forwardedFor: true,
    processHeader: 'x-egress-process',
    processHmacKey: KEY,
    now: () => NOW,
  };
  const flowFrom = (ip: string): Flow => {
    const flow = new Flow('http', false);
    flow.set('source.ip', ip);
    return flow;
  };

  it('believes identity headers only from trusted downstream proxies', async () => {
    const headers = { 'x-authenticated-user': 'CORP\\alice', 'x-forwarded-for': '203.0.113.7, 10.20.30.40' };
    const trusted = flowFrom('10.9.9.9');
    await identifyRequest(trusted, headers, base);
    expect(trusted.get('user.name')).toBe('CORP\\alice');
    expect(trusted.get('client.ip')).toBe('10.20.30.40');
    const spoofed = flowFrom('10.1.1.1');
    await identifyRequest(spoofed, headers, base);
    expect(spoofed.get('user.name')).toBeUndefined();
    expect(spoofed.get('client.ip')).toBeUndefined();
  });

  it('skips trusted proxies when walking X-Forwarded-For from the right', async () => {
    const flow = flowFrom('10.9.9.9');
    await identifyRequest(flow, { 'x-forwarded-for': '192.0.2.1, 10.20.30.40, 10.9.9.9' }, base);
    expect(flow.get('client.ip')).toBe('10.20.30.40');
  });

  it('records a process claim from any client, verified or not', async () => {
    const flow = flowFrom('10.1.1.1');
    await identifyRequest(flow, { 'x-egress-process': signProcessClaim('chrome.exe', 7, KEY, NOW) }, base);
    expect([flow.get('egress.claim.process_name'), flow.get('egress.claim.pid'), flow.get('egress.claim.verified')]).toEqual(['chrome.exe', 7, true]);
    const forged = flowFrom('10.1.1.1');
    await identifyRequest(forged, { 'x-egress-process': 'name=chrome.exe; pid=7' }, base);
    expect(forged.get('egress.claim.verified')).toBe(false);
  });

  it('requires valid proxy credentials when asked to, and refuses wrong ones even when optional', async () => {
    const line = await hashPassword('bob', 'pw');
    const authenticator = new ProxyAuthenticator(parseUsersFile(line, 'u'));
    expect(await identifyRequest(flowFrom('10.1.1.1'), {}, { ...base, authenticator, requireAuth: true })).toMatchObject({ ok: false });
    expect(await identifyRequest(flowFrom('10.1.1.1'), {}, { ...base, authenticator })).toEqual({ ok: true });
    expect(await identifyRequest(flowFrom('10.1.1.1'), { 'proxy-authorization': basic('bob', 'nope') }, { ...base, authenticator })).toMatchObject({ ok: false });
    const flow = flowFrom('10.1.1.1');
    expect(await identifyRequest(flow, { 'proxy-authorization': basic('bob', 'pw'), 'x-authenticated-user': 'eve' }, { ...base, authenticator, isTrustedProxy: () => true })).toEqual({ ok: true });
    // Authentication outranks a header claim.
    expect(flow.get('user.name')).toBe('bob');
  });
});

describe('ProxyAuthenticator under a credential spray', () => {
  it('runs at most two scrypt checks at once, queues 64, and refuses the rest at once', async () => {
    const line = await hashPassword('bob', 'pw');
    const auth = new ProxyAuthenticator(parseUsersFile(line, 'u'));
    const attempts = Array.from({ length: 80 }, (_, i) => auth.authenticate(basic('bob', `guess-${i}`)));
    const results = await Promise.all(attempts);
    const refused = results.filter((r) => !r.ok && r.reason === 'too many authentication attempts at once');
    expect(refused).toHaveLength(80 - 2 - 64);
    expect(results.filter((r) => !r.ok && r.reason === 'wrong user name or password')).toHaveLength(66);
    // The slots are free again afterwards: a right password still gets in.
    expect(await auth.authenticate(basic('bob', 'pw'))).toEqual({ ok: true, user: 'bob' });
  }, 60_000);
});
