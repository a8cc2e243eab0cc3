/**
 * The operator console over HTTP (no browser: test/integration/console-browser.test.ts drives chromium): sign-in
 * and its cookie, CSRF and Origin checks, the security headers, the live stream, the flows list and its filter,
 * a row's explanation, the alerts/endpoints/policy/health pages from real flows through the proxy.
 */
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, startOrigin, type TestServer } from '../helpers/servers.js';
import { CONTENT_SECURITY_POLICY } from '../../src/console/routes.js';
import type { ConsoleFlowSummary } from '../../src/console/model.js';

const POLICY = `version: 1
rules:
  - id: lolbin-external
    description: LOLBin talking to the internet
    when:
      process.name: { in: [rundll32.exe, mshta.exe] }
    action: block
    severity: high
    tags: [attack.t1218]
  - id: watch-beacon-path
    mode: shadow
    when:
      url.path: { startswith: /beacon }
    action: block
`;

interface Signed {
  readonly cookie: string;
  readonly csrf: string;
}

describe('operator console (/ui/) over HTTP', () => {
  let h: Harness;
  let origin: TestServer;
  let ui: string;

  const signIn = async (token = 'test-token-console-0001'): Promise<Signed> => {
    const res = await fetch(`${ui}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ui },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(res.status).toBe(303);
    const cookie = (res.headers.get('set-cookie') ?? '').split(';', 1)[0] ?? '';
    const page = await (await fetch(`${ui}/ui/policy`, { headers: { cookie } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    expect(csrf).not.toBe('');
    return { cookie, csrf };
  };

  const hint = async (port: number, image: string): Promise<void> => {
    const res = await fetch(`${h.adminUrl}/v1/hints`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-token-console-0001', 'content-type': 'application/x-ndjson' },
      body: JSON.stringify(eid3(port, image)),
    });
    expect(res.status).toBe(202);
  };

  /** A request through the proxy from `image` (announced by a Sysmon event first) to `path` on the origin. */
  const flowFrom = async (image: string, path: string): Promise<void> => {
    const port = await freeSourcePort();
    await hint(port, image);
    await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}${path}`]);
    await h.waitForRecord((r) => field(r, 'url.path') === path);
  };

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    h = await startHarness({
      policy: POLICY,
      config: {
        admin: 'admin:\n  listen: "127.0.0.1:0"\n  token: test-token-console-0001',
        policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 300ms',
      },
    });
    ui = h.adminUrl;
    await flowFrom('C:\\Windows\\System32\\rundll32.exe', '/payload.bin');
    await flowFrom('C:\\Program Files\\App\\app.exe', '/beacon/1');
    // An unmanaged client: no telemetry from 127.0.0.2.
    await curl(['-x', h.proxyUrl, '--interface', '127.0.0.2', `http://127.0.0.1:${origin.port}/unmanaged`]);
    await h.waitForRecord((r) => field(r, 'url.path') === '/unmanaged');
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
  });

  describe('sign-in', () => {
    it('every page redirects to the sign-in form without a session; data routes answer 401', async () => {
      for (const page of ['/ui/', '/ui/flows', '/ui/alerts', '/ui/endpoints', '/ui/policy', '/ui/health']) {
        const res = await fetch(`${ui}${page}`, { redirect: 'manual' });
        expect(res.status, page).toBe(303);
        expect(res.headers.get('location'), page).toBe('/ui/login');
      }
      expect((await fetch(`${ui}/ui/events`)).status).toBe(401);
      expect((await fetch(`${ui}/ui/api/flows`)).status).toBe(401);
      // The bearer token of /v1/* does not open the console: it needs the session.
      expect((await fetch(`${ui}/ui/api/flows`, { headers: { authorization: 'Bearer test-token-console-0001' } })).status).toBe(401);
    });

    it('the sign-in page and the assets are served without a session, with a strict CSP', async () => {
      const res = await fetch(`${ui}/ui/login`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      expect(html).toContain('name="token"');
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
      const js = await fetch(`${ui}/ui/assets/console.js`);
      expect(js.headers.get('content-type')).toContain('javascript');
      expect((await fetch(`${ui}/ui/assets/console.css`)).status).toBe(200);
    });

    it('a wrong token is refused (401) and the next attempt from that address waits', async () => {
      const attempt = (token: string) => fetch(`${ui}/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
      const wrong = await attempt('not-the-token-at-all');
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('set-cookie')).toBeNull();
      expect(await wrong.text()).toContain('Wrong token');
      expect((await attempt('test-token-console-0001')).status).toBe(429);
      await new Promise((r) => setTimeout(r, 1_050));
      expect((await attempt('test-token-console-0001')).status).toBe(303);
    });

    it('the right token sets an HttpOnly, SameSite=Strict session cookie scoped to /ui, not the token', async () => {
      const res = await fetch(`${ui}/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ui },
        body: 'token=test-token-console-0001',
      });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/ui/');
      const cookie = res.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/^ei_session=[A-Za-z0-9_-]{40,}; Path=\/ui; HttpOnly; SameSite=Strict$/);
      expect(cookie).not.toContain('test-token');
    });

    it('a sign-in form posted from another site is refused (login CSRF)', async () => {
      const res = await fetch(`${ui}/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
        body: 'token=test-token-console-0001',
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
    });

    it('sign-out needs the CSRF token, then ends the session', async () => {
      const s = await signIn();
      const post = (body: string, origin = ui) => fetch(`${ui}/ui/logout`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: s.cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      expect((await post('csrf=wrong')).status).toBe(403);
      expect((await post(`csrf=${s.csrf}`, 'https://evil.example')).status).toBe(403);
      expect((await fetch(`${ui}/ui/flows`, { headers: { cookie: s.cookie }, redirect: 'manual' })).status).toBe(200);
      expect((await post(`csrf=${s.csrf}`)).status).toBe(303);
      expect((await fetch(`${ui}/ui/flows`, { headers: { cookie: s.cookie }, redirect: 'manual' })).status).toBe(303);
    });
  });

  describe('pages from real flows', () => {
    let s: Signed;
    beforeAll(async () => {
      s = await signIn();
    });
    const get = async (path: string): Promise<string> => {
      const res = await fetch(`${ui}${path}`, { headers: { cookie: s.cookie } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      return res.text();
    };
    const api = async (query: string): Promise<ConsoleFlowSummary[]> => {
      const res = await fetch(`${ui}/ui/api/flows?${query}`, { headers: { cookie: s.cookie } });
      expect(res.status).toBe(200);
      return ((await res.json()) as { flows: ConsoleFlowSummary[] }).flows;
    };

    it('the flows list holds the three flows newest first, and filters by action, process, rule and alert', async () => {
      const all = await api('');
      expect(all.map((f) => f.destination.endsWith(`:${origin.port}`))).toEqual([true, true, true]);
      expect(all[0]?.sourceIp).toBe('127.0.0.2');
      const blocked = await api('action=block');
      expect(blocked).toHaveLength(1);
      expect(blocked[0]).toMatchObject({ process: 'rundll32.exe', rule: 'lolbin-external', severity: 'high', tags: ['attack.t1218'] });
      expect(await api('process=RUNDLL')).toHaveLength(1);
      expect(await api('alert=yes')).toHaveLength(1);
      expect(await api('alert=no')).toHaveLength(2);
      // Shadow matches are listed among the flow's rules.
      expect((await api('rule=watch-beacon-path')).map((f) => f.process)).toEqual(['app.exe']);
      expect((await fetch(`${ui}/ui/api/flows?action=maybe`, { headers: { cookie: s.cookie } })).status).toBe(400);
      const page = await get('/ui/flows?process=rundll32');
      expect(page).toContain('rundll32.exe');
      expect(page).not.toContain('app.exe');
    });

    it('a row expands to the whole record and every rule with its status', async () => {
      const [blocked] = await api('action=block');
      const html = await get(`/ui/flows/${blocked?.id ?? ''}/detail`);
      expect(html).toContain('lolbin-external');
      expect(html).toContain('matched');
      // The shadow rule did not match this flow: shown as failed, with the value the flow has.
      expect(html).toContain('watch-beacon-path');
      expect(html).toContain('failed');
      expect(html).toContain('/payload.bin');
      expect(html).toContain(blocked?.id ?? 'missing');
      expect((await fetch(`${ui}/ui/flows/00000000-0000-4000-8000-000000000000/detail`, { headers: { cookie: s.cookie } })).status).toBe(404);
    });

    it('alerts are grouped by rule and by host/process', async () => {
      const html = await get('/ui/alerts');
      expect(html).toContain('lolbin-external');
      expect(html).toContain('rundll32.exe');
      expect(html).toContain('<svg');
    });

    it('the endpoints page flags the unmanaged client', async () => {
      const html = await get('/ui/endpoints');
      expect(html).toContain('127.0.0.2');
      expect(html).toContain('unmanaged — no telemetry');
    });

    it('the policy page lists rules with hit counts, and its reload button reloads (CSRF-checked)', async () => {
      const html = await get('/ui/policy');
      expect(html).toContain('lolbin-external');
      expect(html).toContain('watch-beacon-path');
      expect(html).toContain('policy.yaml');
      const reload = (csrf: string) => fetch(`${ui}/ui/policy/reload`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: s.cookie, origin: ui, 'content-type': 'application/x-www-form-urlencoded' },
        body: `csrf=${csrf}`,
      });
      const before = (await h.metrics()).match(/egress_policy_reloads_total\{result="success"\} (\d+)/)?.[1];
      expect((await reload('nope')).status).toBe(403);
      const ok = await reload(s.csrf);
      expect(ok.status).toBe(303);
      expect(ok.headers.get('location')).toBe('/ui/policy?notice=reloaded');
      const after = await get('/ui/policy?notice=reloaded');
      expect(after).toContain('Policy reloaded');
      // The same files: nothing swapped, and the attempt is in the reload history.
      expect(after).toContain('unchanged');
      expect((await h.metrics()).match(/egress_policy_reloads_total\{result="success"\} (\d+)/)?.[1]).toBe(before);
    });

    it('the health page shows the listeners, flow counts and the history store', async () => {
      const html = await get('/ui/health');
      expect(html).toContain(`127.0.0.1:${h.port}`);
      expect(html).toContain('sqlite');
    });

    it('a hint later than the flow adds a follow-up row, marked late, linked from the original', async () => {
      const port = await freeSourcePort();
      await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/late-c2`]);
      const first = await h.waitForRecord((r) => field(r, 'url.path') === '/late-c2');
      expect(field(first, 'process.name')).toBeUndefined();
      await hint(port, 'C:\\Windows\\System32\\rundll32.exe');
      await h.waitForRecord((r) => field(r, 'egress.followup_of') === field(first, 'event.id'));
      const originalId = String(field(first, 'event.id'));
      const late = (await api('process=rundll32')).find((f) => f.followupOf === originalId);
      expect(late).toMatchObject({ action: 'allow', severity: 'high', process: 'rundll32.exe', rule: 'lolbin-external' });
      const page = await get('/ui/flows?process=rundll32');
      expect(page).toContain('badge late');
      const original = await get(`/ui/flows/${originalId}/detail`);
      expect(original).toContain('Late attribution');
      expect(original).toContain('rundll32.exe');
      expect(original).toContain(late?.id ?? 'missing');
      const followUp = await get(`/ui/flows/${late?.id ?? ''}/detail`);
      expect(followUp).toContain(`the record of flow <code>${originalId}</code>`);
      expect(followUp).toContain('<strong>block</strong>');
    });

    it('the live stream sends a new blocked flow within a second, filtered', async () => {
      const received: ConsoleFlowSummary[] = [];
      const req = http.get(`${ui}/ui/events?action=block`, { headers: { cookie: s.cookie } });
      const response = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toContain('text/event-stream');
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^event: flow\ndata: (.*)$/m.exec(event)?.[1];
          if (data !== undefined) received.push(JSON.parse(data) as ConsoleFlowSummary);
        }
      });
      const started = Date.now();
      // An allowed flow first (filtered out), then a blocked one.
      await curl(['-x', h.proxyUrl, `http://127.0.0.1:${origin.port}/allowed-live`]);
      await flowFrom('C:\\Windows\\System32\\mshta.exe', '/live-block');
      while (received.length === 0 && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 10));
      req.destroy();
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ action: 'block', process: 'mshta.exe' });
      expect(received[0]).not.toHaveProperty('record');
    });
  });
});

describe('operator console without admin.token', () => {
  it('creates a 0600 token file and signs in with it; /v1/* stays off', async () => {
    const h = await startHarness({
      policy: 'version: 1\nrules: []\n',
      config: { admin: 'admin:\n  listen: "127.0.0.1:0"\n  token: null' },
    });
    try {
      const file = join(h.dir, 'data', 'console-token');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const token = (await readFile(file, 'utf8')).trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      // /v1/* stays off without admin.token …
      expect((await fetch(`${h.adminUrl}/v1/coverage`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
      // … while the console takes the file's token.
      const res = await fetch(`${h.adminUrl}/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
      expect(res.status).toBe(303);
    } finally {
      await h.stop();
    }
  });

  it('console.enabled: false serves no console', async () => {
    const h = await startHarness({ policy: 'version: 1\nrules: []\n', config: { console: 'console:\n  enabled: false' } });
    try {
      const res = await fetch(`${h.adminUrl}/ui/login`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain('console.enabled: false');
    } finally {
      await h.stop();
    }
  });
});
