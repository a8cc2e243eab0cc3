/**
 * Issue 11, the security bug: an editor that writes `version: 1\nrules:` and the rest 0.4 s later once put a
 * valid, EMPTY policy in force, and requests the policy blocks went through during the gap. Here the real proxy
 * serves a steady stream of requests (Node http through the proxy to loopback origins) while the policy file is
 * rewritten the same way: not one request may reach the blocked origin, and the new policy must be in force after.
 */
import { request, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const AUTH = { authorization: 'Bearer test-token' };

interface Origin {
  readonly port: number;
  /** Requests that reached this origin. */
  hits: number;
  close(): Promise<void>;
}

async function startCountingOrigin(): Promise<Origin> {
  const server: Server = createServer((_req, res) => {
    origin.hits++;
    res.end('reached');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin: Origin = {
    port: (server.address() as AddressInfo).port,
    hits: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return origin;
}

/** One plain-HTTP request through the proxy (absolute-form target); resolves with the status (0: no answer). */
function viaProxy(proxyPort: number, originPort: number, path = '/'): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, method: 'GET', path: `http://127.0.0.1:${originPort}${path}`, agent: false, timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

const policyBlocking = (...ports: number[]): string =>
  `version: 1\nrules:\n${ports.map((port) => `  - id: block-port-${port}\n    when: { destination.port: ${port} }\n    action: block\n`).join('')}`;

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('policy reloads never weaken the policy in force', () => {
  let h: Harness;
  let blocked: Origin;
  let later: Origin;

  beforeEach(async () => {
    blocked = await startCountingOrigin();
    later = await startCountingOrigin();
    h = await startHarness({ policy: policyBlocking(blocked.port) });
  });
  afterEach(async () => {
    await h.stop();
    await blocked.close();
    await later.close();
  });

  it('an editor writing `version: 1\\nrules:` then the rest 0.4 s later lets no blocked request through', async () => {
    const before = h.proxy.policy.current().sha256;
    expect(await viaProxy(h.port, blocked.port)).toBe(403);
    expect(await viaProxy(h.port, later.port)).toBe(200);
    later.hits = 0;

    // A steady client: one request to the blocked origin after the other, during the whole sequence.
    const statuses: number[] = [];
    let driving = true;
    const driver = (async () => {
      while (driving) statuses.push(await viaProxy(h.port, blocked.port));
    })();

    await wait(100);
    await writeFile(h.policyFile, 'version: 1\nrules:\n');
    await wait(400);
    // The rest of the file: the same block, and a new one for the second origin.
    await writeFile(h.policyFile, policyBlocking(blocked.port, later.port));
    await expect.poll(() => h.proxy.policy.current().sha256, { timeout: 6000, interval: 20 }).not.toBe(before);
    await wait(300);
    driving = false;
    await driver;

    expect(statuses.length).toBeGreaterThan(10);
    expect(blocked.hits).toBe(0);
    expect(statuses.filter((s) => s !== 403)).toEqual([]);
    // The new policy is in force: the second origin is blocked now too.
    expect(h.proxy.policy.current().rules.map((r) => r.id)).toEqual([`block-port-${blocked.port}`, `block-port-${later.port}`]);
    expect(await viaProxy(h.port, later.port)).toBe(403);
    expect(later.hits).toBe(0);
    const text = await h.metrics();
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(1);
    expect(sample(text, 'egress_policy_reloads_total{result="success"}')).toBe(2);
  });

  it('a reload to an empty rule list is refused, counted, and the block stays; force applies it', async () => {
    const before = h.proxy.policy.current().sha256;
    let text = await h.metrics();
    expect(sample(text, 'egress_policy_reloads_total{result="refused"}')).toBe(0);

    await writeFile(h.policyFile, 'version: 1\nrules: []\n');
    await expect.poll(async () => sample(await h.metrics(), 'egress_policy_reloads_total{result="refused"}'), { timeout: 6000, interval: 50 }).toBe(1);
    expect(h.proxy.policy.current().sha256).toBe(before);
    expect(await viaProxy(h.port, blocked.port)).toBe(403);
    expect(blocked.hits).toBe(0);
    text = await h.metrics();
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(0);
    expect(sample(text, 'egress_policy_reloads_total{result="failure"}')).toBe(0);
    expect(text).toContain(`egress_policy_info{sha256="${before}"} 1`);

    // An explicit reload is refused the same way, and says why.
    const refused = await fetch(`${h.adminUrl}/v1/policy/reload`, { method: 'POST', headers: AUTH });
    expect(refused.status).toBe(422);
    const body = (await refused.json()) as { ok: boolean; sha256: string; errors: string[] };
    expect(body).toMatchObject({ ok: false, sha256: before });
    expect(body.errors[0]).toContain(`${h.policyFile}:1:1: reload refused: the new policy has no rules, the one in force has 1 (1 block)`);
    expect(sample(await h.metrics(), 'egress_policy_reloads_total{result="refused"}')).toBe(2);

    // The operator asks explicitly: applied.
    const forced = await fetch(`${h.adminUrl}/v1/policy/reload?force=true`, { method: 'POST', headers: AUTH });
    expect(forced.status).toBe(200);
    expect(h.proxy.policy.current().rules).toEqual([]);
    expect(await viaProxy(h.port, blocked.port)).toBe(200);
    text = await h.metrics();
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(1);
    expect(sample(text, 'egress_policy_reloads_total{result="success"}')).toBe(2);
  });
});
