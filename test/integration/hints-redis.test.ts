/**
 * Two proxy replicas sharing hints through one real redis-server (issue 4 item 5): a Sysmon event posted to
 * replica A attributes — and, with a rule on process.name, blocks — a connection made through replica B.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { startProxy } from '../../src/cli/start.js';
import { isEgressError } from '../../src/errors.js';
import { silentLogger } from '../../src/observe/logger.js';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { field, memoryFlowLog, startHarness, type Harness } from '../helpers/harness.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { curl, echoHandler, startOrigin, type TestServer } from '../helpers/servers.js';

const POLICY = `version: 1
rules:
  - id: lolbin-egress
    when:
      process.name: { in: [rundll32.exe, mshta.exe, regsvr32.exe] }
      url.path: { startswith: /c2 }
    action: block
    severity: high
`;

describe('hints shared by two replicas through Redis', () => {
  let redis: TestRedis;
  let a: Harness;
  let b: Harness;
  let origin: TestServer;
  const started: Harness[] = [];

  const replica = async (): Promise<Harness> => {
    const h = await startHarness({
      policy: POLICY,
      config: {
        policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 400ms',
        hints: `hints:\n  store: "${redis.url}"`,
      },
    });
    started.push(h);
    return h;
  };

  const post = async (h: Harness, events: Array<Record<string, unknown>>): Promise<{ accepted: number; rejected: number }> => {
    const res = await fetch(`${h.adminUrl}/v1/hints`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-token', 'content-type': 'application/x-ndjson' },
      body: events.map((e) => JSON.stringify(e)).join('\n'),
    });
    expect(res.status).toBe(202);
    return (await res.json()) as { accepted: number; rejected: number };
  };

  beforeAll(async () => {
    redis = await startRedis();
    origin = await startOrigin(echoHandler());
    a = await replica();
    b = await replica();
  });
  afterAll(async () => {
    await Promise.all(started.map((h) => h.stop()));
    await origin?.close();
    await redis?.close();
  });

  it('a hint posted to replica A attributes a flow on replica B', async () => {
    // This also makes 127.0.0.1 a managed client on B, so the next test's flow waits (hint_wait) for its hint.
    const port = await freeSourcePort();
    expect((await post(a, [eid3(port, 'C:\\Program Files\\Tool\\updater.exe')])).accepted).toBe(1);
    const r = await curl(['-x', b.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/warm`]);
    expect(r.status, r.stderr).toBe(200);
    const rec = await b.waitForRecord((x) => field(x, 'url.path') === '/warm');
    expect(field(rec, 'process.name')).toBe('updater.exe');
    expect(field(rec, 'egress.attribution')).toBe('telemetry');
  });

  it('a Sysmon EID 3 for rundll32.exe posted to A blocks the matching curl through B by a rule on process.name', async () => {
    const port = await freeSourcePort();
    expect((await post(a, [eid3(port, 'C:\\Windows\\System32\\rundll32.exe')])).accepted).toBe(1);
    const r = await curl(['-x', b.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/beacon`]);
    expect(r.status, r.stderr).toBe(403);
    const rec = await b.waitForRecord((x) => field(x, 'url.path') === '/c2/beacon');
    expect(field(rec, 'process.name')).toBe('rundll32.exe');
    expect(field(rec, 'process.executable')).toBe('C:\\Windows\\System32\\rundll32.exe');
    expect(field(rec, 'host.name')).toBe('workstation5.corp.local');
    expect(field(rec, 'user.name')).toBe('alice');
    expect(field(rec, 'rule.id')).toBe('lolbin-egress');
    // Replica A never saw this flow.
    expect(a.records.some((x) => field(x, 'url.path') === '/c2/beacon')).toBe(false);
  });

  it('a replica that starts after the hint was posted loads it from Redis', async () => {
    const port = await freeSourcePort();
    expect((await post(b, [eid3(port, 'C:\\Windows\\System32\\mshta.exe')])).accepted).toBe(1);
    const c = await replica();
    const r = await curl(['-x', c.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/late-replica`]);
    expect(r.status, r.stderr).toBe(403);
    const rec = await c.waitForRecord((x) => field(x, 'url.path') === '/c2/late-replica');
    expect(field(rec, 'process.name')).toBe('mshta.exe');
  });

  it('refuses to start when the Redis of hints.store is unreachable, naming the URL without credentials', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'egress-test-'));
    try {
      const policyFile = join(dir, 'policy.yaml');
      await writeFile(policyFile, POLICY);
      const text = [
        'proxy:\n  listen: "127.0.0.1:0"',
        'admin:\n  listen: "127.0.0.1:0"\n  token: test-token',
        'dns:\n  listen: null',
        `policy:\n  files: ["${policyFile}"]`,
        'hints:\n  store: "redis://ops:hunter2-secret@127.0.0.1:1/0"',
      ].join('\n');
      const parsed = parseConfigText(text, { baseDir: dir, env: {} });
      if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
      const err: unknown = await startProxy(parsed.config, { logger: silentLogger(), flowLog: memoryFlowLog([]) }).then(
        async (p) => {
          await p.stop();
          return null;
        },
        (e: unknown) => e,
      );
      expect(isEgressError(err)).toBe(true);
      if (!isEgressError(err)) return;
      expect(err.code).toBe('HINT_STORE_FAILED');
      expect(err.message).toContain('redis://***@127.0.0.1:1/0');
      expect(err.message).not.toContain('hunter2');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
