import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { startHarness, type Harness } from '../helpers/harness.js';

const SPEC_METRICS = [
  'egress_flows_total',
  'egress_rule_matches_total',
  'egress_active_flows',
  'egress_hints_total',
  'egress_attributed_flows_total',
  'egress_dns_queries_total',
  'egress_policy_reloads_total',
  'egress_policy_info',
];

describe('admin listener', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ policy: 'version: 1\nrules:\n  - id: r1\n    when: { destination.port: 1 }\n    action: block\n' });
  });
  afterAll(async () => h.stop());

  it('serves /healthz and /readyz once the policy is loaded and listeners are up', async () => {
    expect((await fetch(`${h.adminUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('exposes every SPEC metric in Prometheus text format, with the policy hash', async () => {
    const res = await fetch(`${h.adminUrl}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    for (const name of SPEC_METRICS) expect(text, name).toContain(`# TYPE ${name} `);
    const sha = h.proxy.policy.current().sha256;
    expect(text).toContain(`egress_policy_info{sha256="${sha}"} 1`);
    expect(text).toMatch(/egress_policy_reloads_total\{result="success"\} 1/);
  });

  it('refuses /v1/* without the right bearer token, serves it with the token', async () => {
    const none = await fetch(`${h.adminUrl}/v1/policy`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const wrong = await fetch(`${h.adminUrl}/v1/policy`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${h.adminUrl}/v1/policy`, { headers: { authorization: 'Bearer test-token' } });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { sha256: string; rules: Array<{ id: string }> };
    expect(body.sha256).toBe(h.proxy.policy.current().sha256);
    expect(body.rules.map((r) => r.id)).toEqual(['r1']);
    const missing = await fetch(`${h.adminUrl}/v1/nothing`, { headers: { authorization: 'Bearer test-token' } });
    expect(missing.status).toBe(404);
    const method = await fetch(`${h.adminUrl}/v1/policy`, { method: 'POST', headers: { authorization: 'Bearer test-token' } });
    expect(method.status).toBe(405);
  });

  it('POST /v1/policy/reload reloads now, and reports file:line:col errors while keeping the last good policy', async () => {
    const auth = { authorization: 'Bearer test-token' };
    const sha = h.proxy.policy.current().sha256;
    await writeFile(h.policyFile, 'version: 1\nrules:\n  - id: r2\n    when: { destination.port: 2 }\n    action: block\n');
    const ok = await fetch(`${h.adminUrl}/v1/policy/reload`, { method: 'POST', headers: auth });
    expect(ok.status).toBe(200);
    const good = (await ok.json()) as { ok: boolean; sha256: string; errors: string[] };
    expect(good.ok).toBe(true);
    expect(good.sha256).not.toBe(sha);
    expect(h.proxy.policy.current().rules.map((r) => r.id)).toEqual(['r2']);
    await writeFile(h.policyFile, 'version: 1\nrules:\n  - id: r3\n    when: { nope.field: 1 }\n    action: block\n');
    const bad = await fetch(`${h.adminUrl}/v1/policy/reload`, { method: 'POST', headers: auth });
    expect(bad.status).toBe(422);
    const body = (await bad.json()) as { ok: boolean; sha256: string; errors: string[] };
    expect(body.ok).toBe(false);
    expect(body.sha256).toBe(good.sha256);
    expect(body.errors[0]).toMatch(new RegExp(`^${h.policyFile.replace(/[.]/g, '\\.')}:4:\\d+: `));
    expect(h.proxy.policy.current().rules.map((r) => r.id)).toEqual(['r2']);
  });

  it('refuses /v1/* entirely when no token is configured', async () => {
    const h2 = await startHarness({ policy: 'version: 1\n', config: { admin: 'admin:\n  listen: "127.0.0.1:0"' } });
    try {
      const res = await fetch(`${h2.adminUrl}/v1/policy`, { headers: { authorization: 'Bearer anything' } });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toContain('EGRESS_ADMIN_TOKEN');
    } finally {
      await h2.stop();
    }
  });
});
