import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, rawExchange, startOrigin, type TestServer } from '../helpers/servers.js';
import { hashPassword, signProcessClaim } from '../../src/enrich/identity.js';

const KEY = 'endpoint-agent-shared-secret-0123';

describe('identity: proxy authentication, trusted headers, process claims', () => {
  let h: Harness;
  let origin: TestServer;
  let dir: string;

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    dir = await mkdtemp(join(tmpdir(), 'egress-id-'));
    const users = join(dir, 'users');
    await writeFile(users, `${await hashPassword('bob', 's3cret')}\n`);
    h = await startHarness({
      policy: `version: 1
rules:
  - id: block-rundll32
    when: { process.name: rundll32.exe }
    action: block
    severity: high
`,
      config: {
        identity: `identity:\n  users_file: "${users}"\n  require_auth: true\n  realm: corp-egress\n  process_hmac_key: "${KEY}"`,
      },
    });
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 407 with a Basic challenge when credentials are missing or wrong', async () => {
    const none = await rawExchange(h.port, `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: a\r\n\r\n`);
    expect(none).toMatch(/^HTTP\/1\.1 407/);
    expect(none.toLowerCase()).toContain('proxy-authenticate: basic realm="corp-egress"');
    const wrong = await curl(['-x', h.proxyUrl, '--proxy-user', 'bob:nope', `http://127.0.0.1:${origin.port}/wrong`]);
    expect(wrong.status).toBe(407);
    const rec = await h.waitForRecord((x) => field(x, 'url.original') === `http://127.0.0.1:${origin.port}/wrong`);
    expect(field(rec, 'rule.id')).toBe('builtin:auth-required');
    expect(field(rec, 'error.code')).toBe('AUTH_REQUIRED');
    expect(JSON.stringify(rec)).not.toContain('bm9wZQ');
    const tunnel = await rawExchange(h.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\n\r\n`);
    expect(tunnel).toMatch(/^HTTP\/1\.1 407/);
  });

  it('authenticated requests carry user.name, and the credentials are not forwarded', async () => {
    const r = await curl(['-x', h.proxyUrl, '--proxy-user', 'bob:s3cret', `http://127.0.0.1:${origin.port}/authed`]);
    expect(r.status).toBe(200);
    const { headers } = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(headers['proxy-authorization']).toBeUndefined();
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/authed');
    expect(field(rec, 'user.name')).toBe('bob');
  });

  it('a verified process claim attributes the flow (egress.attribution: header) and rules see it', async () => {
    const claim = signProcessClaim('rundll32.exe', 6060, KEY, Date.now());
    const r = await curl(['-x', h.proxyUrl, '--proxy-user', 'bob:s3cret', '-H', `X-Egress-Process: ${claim}`, `http://127.0.0.1:${origin.port}/claimed`]);
    expect(r.status).toBe(403);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/claimed');
    expect(field(rec, 'process.name')).toBe('rundll32.exe');
    expect(field(rec, 'process.pid')).toBe(6060);
    expect(field(rec, 'egress.attribution')).toBe('header');
    expect(field(rec, 'rule.id')).toBe('block-rundll32');
  });

  it('an unsigned claim is recorded as unverified and attributes nothing', async () => {
    const r = await curl(['-x', h.proxyUrl, '--proxy-user', 'bob:s3cret', '-H', 'X-Egress-Process: name=rundll32.exe; pid=1', `http://127.0.0.1:${origin.port}/forged`]);
    expect(r.status).toBe(200);
    const { headers } = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(headers['x-egress-process']).toBeUndefined();
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/forged');
    expect(field(rec, 'process.name')).toBeUndefined();
    expect(field(rec, 'egress.claim.process_name')).toBe('rundll32.exe');
    expect(field(rec, 'egress.claim.verified')).toBe(false);
    expect(field(rec, 'egress.claim.reason')).toBe('claim is not signed');
    expect(field(rec, 'egress.attribution')).toBe('none');
  });
});
