import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
