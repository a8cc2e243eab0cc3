import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, startOrigin, type TestServer } from '../helpers/servers.js';
import type { CoverageReport } from '../../src/coverage/tally.js';

describe('GET /v1/coverage through the running proxy', () => {
  let h: Harness;
  let origin: TestServer;

  const postHint = (body: unknown): Promise<Response> =>
    fetch(`${h.adminUrl}/v1/hints`, { method: 'POST', headers: { authorization: 'Bearer test-token', 'content-type': 'application/x-ndjson' }, body: JSON.stringify(body) });
  const coverage = async (query = ''): Promise<CoverageReport> => {
    const res = await fetch(`${h.adminUrl}/v1/coverage${query}`, { headers: { authorization: 'Bearer test-token' } });
    expect(res.status).toBe(200);
    return (await res.json()) as CoverageReport;
  };

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    h = await startHarness({
      policy: `version: 1
rules:
  - id: lolbin-egress
    when:
      process.name: { in: [rundll32.exe] }
    action: block
`,
      config: { policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 200ms' },
    });
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
  });

  it('needs the bearer token', async () => {
    expect((await fetch(`${h.adminUrl}/v1/coverage`)).status).toBe(401);
  });

  it('one managed, attributed client (127.0.0.1) and one unmanaged client (127.0.0.2)', async () => {
    // Two flows from 127.0.0.1, each announced by a Sysmon network event first.
    for (const path of ['/one', '/two']) {
      const port = await freeSourcePort();
      expect((await postHint(eid3(port, 'C:\\Program Files\\App\\app.exe'))).status).toBe(202);
      const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}${path}`]);
      expect(r.status).toBe(200);
      const rec = await h.waitForRecord((x) => field(x, 'url.path') === path);
      expect(field(rec, 'egress.attribution')).toBe('telemetry');
    }
    // Three flows from 127.0.0.2: no telemetry from that address.
    for (const path of ['/u1', '/u2', '/u3']) {
      const r = await curl(['-x', h.proxyUrl, '--interface', '127.0.0.2', `http://127.0.0.1:${origin.port}${path}`]);
      expect(r.status).toBe(200);
      await h.waitForRecord((x) => field(x, 'url.path') === path);
    }

    const report = await coverage();
    expect(report.managed_source).toBe('hint-store');
    expect(report.flows).toBe(5);
    expect(report.by_method).toEqual({ telemetry: 2, header: 0, none: 3 });
    expect(report.attributed_share).toBe(0.4);
    const managed = report.hosts.find((x) => x['source.ip'] === '127.0.0.1');
    expect(managed).toMatchObject({ managed: true, flows: 2, attributed: 2, attributed_share: 1, host_names: ['workstation5.corp.local'] });
    expect(managed?.last_hint).not.toBeNull();
    expect(typeof managed?.hint_lag_p50_ms).toBe('number');
    const unmanaged = report.hosts.find((x) => x['source.ip'] === '127.0.0.2');
    expect(unmanaged).toMatchObject({ managed: false, flows: 3, attributed: 0, last_hint: null });
    expect(report.unmanaged.map((x) => x['source.ip'])).toEqual(['127.0.0.2']);
    expect(report.clients).toEqual({ tracked: 2, managed: 1, unmanaged: 1 });
    expect(report.bounds.cut).toBe(false);
  });

  it('a flow attributed late, by a follow-up record, is counted once and as attributed', async () => {
    const before = await coverage();
    const port = await freeSourcePort();
    expect((await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/late`])).status).toBe(200);
    const first = await h.waitForRecord((x) => field(x, 'url.path') === '/late');
    expect(field(first, 'egress.attribution')).toBe('none');
    await postHint(eid3(port, 'C:\\Windows\\System32\\rundll32.exe', Date.now() - 500));
    await h.waitForRecord((x) => field(x, 'egress.followup_of') === field(first, 'event.id'));
    const after = await coverage();
    expect(after.flows).toBe(before.flows + 1);
    expect(after.by_method.telemetry).toBe(before.by_method.telemetry + 1);
    expect(after.by_method.none).toBe(before.by_method.none);
    expect(after.late_attributed).toBe(before.late_attributed + 1);
    expect(after.hosts.find((x) => x['source.ip'] === '127.0.0.1')).toMatchObject({ flows: 3, attributed: 3 });
  });

  it('?limit= cuts the list and says so; a bad ?stale= is a 400', async () => {
    const report = await coverage('?limit=1&stale=30');
    expect(report.hosts).toHaveLength(1);
    expect(report.bounds).toMatchObject({ hosts_omitted: 1, cut: true });
    expect(report.stale_minutes).toBe(30);
    const bad = await fetch(`${h.adminUrl}/v1/coverage?stale=0`, { headers: { authorization: 'Bearer test-token' } });
    expect(bad.status).toBe(400);
  });
});
