import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPolicyReplay } from '../../src/cli/replay.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, startOrigin, type TestServer } from '../helpers/servers.js';

// A shadow block on the very path the request takes, and a live tag beside it: the request must go through,
// the record must name the shadow rule with its would-be action, and the metric must count it as shadow.
const POLICY = `version: 1
rules:
  - id: would-block-beacon
    description: Trying out a block on /beacon before turning it on
    mode: shadow
    when:
      url.path: /beacon
    action: block
    severity: critical
    tags: [would-block]
  - id: tag-get
    when:
      http.request.method: GET
    action: tag
    tags: [get]
`;

describe('shadow rules through the real proxy', () => {
  let h: Harness;
  let origin: TestServer;

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    h = await startHarness({ policy: POLICY, dns: { 'origin.test': { A: ['127.0.0.1'] } } });
  });

  afterAll(async () => {
    await h.stop();
    await origin.close();
  });

  it('starts with the shadow rule at 0 in egress_rule_matches_total{mode="shadow"}', async () => {
    expect(await h.metrics()).toMatch(/egress_rule_matches_total\{rule="would-block-beacon",mode="shadow"\} 0/);
  });

  it('GET /v1/policy lists the shadow rule in file order with its mode', async () => {
    const res = await fetch(`${h.adminUrl}/v1/policy`, { headers: { authorization: 'Bearer test-token' } });
    const body = (await res.json()) as { rules: { id: string; mode: string; action: string }[] };
    expect(body.rules.map((r) => [r.id, r.mode, r.action])).toEqual([
      ['would-block-beacon', 'shadow', 'block'],
      ['tag-get', 'live', 'tag'],
    ]);
  });

  it('lets the request through, records egress.shadow and counts the match as shadow', async () => {
    const r = await curl(['-x', h.proxyUrl, `http://origin.test:${origin.port}/beacon`]);
    expect(r.status).toBe(200);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/beacon');
    expect(field(rec, 'event.action')).toBe('allow');
    expect(field(rec, 'event.kind')).toBe('event'); // the shadow rule's severity makes no alert
    expect(rec['rule']).toBeUndefined();
    expect(field(rec, 'tags')).toEqual(['get']); // nor do its tags reach the record
    expect(field(rec, 'egress.rules')).toEqual(['tag-get']);
    expect(field(rec, 'egress.shadow')).toEqual([{ rule: 'would-block-beacon', action: 'block' }]);
    expect(field(rec, 'egress.explanation')).toContain('shadow: rule would-block-beacon: url.path is /beacon');
    const metrics = await h.metrics();
    expect(metrics).toMatch(/egress_rule_matches_total\{rule="would-block-beacon",mode="shadow"\} 1/);
    expect(metrics).toMatch(/egress_rule_matches_total\{rule="tag-get",mode="live"\} 1/);
  });

  it('a request the shadow rule does not match has no egress.shadow', async () => {
    const r = await curl(['-x', h.proxyUrl, `http://origin.test:${origin.port}/index.html`]);
    expect(r.status).toBe(200);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/index.html');
    expect(field(rec, 'egress.shadow')).toBeUndefined();
    expect(await h.metrics()).toMatch(/egress_rule_matches_total\{rule="would-block-beacon",mode="shadow"\} 1/);
  });

  it("a shadow rule's would-be effect is what policy replay predicts for turning it live (issue 12)", async () => {
    for (const path of ['/beacon', '/beacon', '/other', '/beacon?x=1']) {
      expect((await curl(['-x', h.proxyUrl, `http://origin.test:${origin.port}${path}`])).status).toBe(200);
    }
    await h.waitForRecord((x) => field(x, 'url.path') === '/other');
    await h.waitForRecord((x) => field(x, 'url.query') === 'x=1');
    const shadowed = h.records.filter((r) => JSON.stringify(field(r, 'egress.shadow') ?? []).includes('"would-block-beacon"'));
    expect(shadowed.length).toBe(4); // the /beacon of the test above and three here
    const metric = /egress_rule_matches_total\{rule="would-block-beacon",mode="shadow"\} (\d+)/.exec(await h.metrics());
    expect(Number(metric?.[1])).toBe(shadowed.length);

    const dir = await mkdtemp(join(tmpdir(), 'egress-shadow-replay-'));
    try {
      const flows = join(dir, 'flows.jsonl');
      const live = join(dir, 'live.yaml');
      await writeFile(flows, `${h.records.map((r) => JSON.stringify(r)).join('\n')}\n`);
      await writeFile(live, POLICY.replace('mode: shadow', 'mode: live'));
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (c: Buffer) => (out += c.toString()));
      const code = await runPolicyReplay({ flows: [flows], policy: [live], json: true, examples: 10 }, { stdin: Readable.from([]), stdout, stderr: new PassThrough() });
      expect(code).toBe(3);
      const report = JSON.parse(out) as { changes: { rule: string; change: string; count: number; examples: unknown[] }[] };
      const blocked = report.changes.find((c) => c.rule === 'would-block-beacon' && c.change === 'newly_blocked');
      expect(blocked?.count).toBe(shadowed.length);
      // Nothing else would change: the shadow rule was the only difference.
      expect(report.changes.filter((c) => c.change === 'newly_allowed')).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
