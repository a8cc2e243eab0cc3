import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eid3, freeSourcePort, sysmonTime } from '../helpers/sysmon.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, startOrigin, echoHandler, type TestServer } from '../helpers/servers.js';
import { signProcessClaim } from '../../src/enrich/identity.js';

const KEY = 'endpoint-agent-shared-secret-0123';

describe('process attribution from endpoint telemetry (POST /v1/hints)', () => {
  let h: Harness;
  let origin: TestServer;
  let slow: TestServer;

  const post = (body: string, token = 'test-token'): Promise<Response> =>
    fetch(`${h.adminUrl}/v1/hints`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' }, body });

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    slow = await startOrigin((_req, res) => setTimeout(() => res.end('slow done'), 1500));
    h = await startHarness({
      policy: `version: 1
rules:
  - id: lolbin-egress
    when:
      process.name: { in: [rundll32.exe, mshta.exe, regsvr32.exe] }
      url.path: { startswith: /c2 }
    action: block
    severity: high
    tags: [an0922]
`,
      config: {
        policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 1s',
        identity: `identity:\n  process_hmac_key: "${KEY}"`,
      },
    });
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
    await slow.close();
  });

  it('refuses hints without the bearer token', async () => {
    expect((await post('{}', 'wrong')).status).toBe(401);
  });

  it('answers 202 with counts and a reason for each rejected event; good events are kept', async () => {
    const res = await post([JSON.stringify(eid3(1, 'C:\\a.exe')), '{"EventID": 7}', 'not json', JSON.stringify({ ...eid3(2, 'C:\\b.exe'), SourcePort: 'x' })].join('\n'));
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; rejected: number; errors: Array<{ index: number; code: string; reason: string }> };
    expect(body.accepted).toBe(1);
    expect(body.rejected).toBe(3);
    expect(body.errors.map((e) => e.index)).toEqual([1, 2, 3]);
    for (const e of body.errors) expect(e.reason.length).toBeGreaterThan(5);
    const metrics = await h.metrics();
    expect(metrics).toMatch(/egress_hints_total\{result="rejected"\} 3/);
    expect(metrics).toMatch(/egress_hint_store_entries\{kind="network"\} [1-9]/);
    expect(metrics).toMatch(/egress_hint_store_entries\{kind="managed"\} 1/);
  });

  it('a hint posted before the connection attributes it, and a rule on process.name blocks it', async () => {
    const port = await freeSourcePort();
    expect((await post(JSON.stringify(eid3(port, 'C:\\Windows\\System32\\rundll32.exe')))).status).toBe(202);
    const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/before`]);
    expect(r.status).toBe(403);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/before');
    expect(field(rec, 'process.name')).toBe('rundll32.exe');
    expect(field(rec, 'process.executable')).toBe('C:\\Windows\\System32\\rundll32.exe');
    expect(field(rec, 'process.pid')).toBe(4242);
    expect(field(rec, 'host.name')).toBe('workstation5.corp.local');
    expect(field(rec, 'user.name')).toBe('alice');
    expect(field(rec, 'egress.attribution')).toBe('telemetry');
    expect(field(rec, 'rule.id')).toBe('lolbin-egress');
  });

  it('a managed client waits for a hint that arrives during the request (within hint_wait)', async () => {
    const port = await freeSourcePort();
    const request = curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/during`]);
    await new Promise((r) => setTimeout(r, 100));
    await post(JSON.stringify(eid3(port, 'C:\\Windows\\System32\\mshta.exe')));
    expect((await request).status).toBe(403);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/during');
    expect(field(rec, 'process.name')).toBe('mshta.exe');
  });

  it('a hint posted one second into a slow request lands in that request\'s record', async () => {
    const port = await freeSourcePort();
    const request = curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${slow.port}/slow-one`]);
    await new Promise((r) => setTimeout(r, 1000));
    await post(JSON.stringify(eid3(port, 'C:\\Users\\alice\\AppData\\payload.exe')));
    expect((await request).status).toBe(200);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/slow-one');
    expect(field(rec, 'process.name')).toBe('payload.exe');
    expect(field(rec, 'egress.attribution')).toBe('telemetry');
  });

  it('a hint that arrives after the record was written produces a follow-up alert', async () => {
    const port = await freeSourcePort();
    const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/late`]);
    expect(r.status).toBe(200);
    const first = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/late');
    expect(field(first, 'process.name')).toBeUndefined();
    await post(JSON.stringify(eid3(port, 'C:\\Windows\\System32\\regsvr32.exe', Date.now() - 500)));
    const followUp = await h.waitForRecord((x) => field(x, 'egress.followup_of') === field(first, 'event.id'));
    expect(field(followUp, 'process.name')).toBe('regsvr32.exe');
    expect(field(followUp, 'event.kind')).toBe('alert');
    expect(field(followUp, 'event.action')).toBe('allow');
    expect(field(followUp, 'egress.late_verdict')).toBe('block');
    expect(field(followUp, 'egress.late_rule')).toBe('lolbin-egress');
    expect(field(followUp, 'url.path')).toBe('/c2/late');
  });

  it('Event ID 1 joins Event ID 3 by ProcessGuid in either order (parent, command line, hashes)', async () => {
    const port = await freeSourcePort();
    const guid = '{5a9b1c2d-1111-2222-3333-444455556666}';
    const eid1 = {
      EventID: 1,
      UtcTime: sysmonTime(Date.now() - 2000),
      Hostname: 'WORKSTATION5.corp.local',
      ProcessGuid: guid,
      ProcessId: '4242',
      Image: 'C:\\Windows\\System32\\rundll32.exe',
      CommandLine: 'rundll32.exe javascript:"\\..\\mshtml,RunHTMLApplication"',
      ParentImage: 'C:\\Windows\\explorer.exe',
      OriginalFileName: 'RUNDLL32.EXE',
      Hashes: 'SHA256=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF,IMPHASH=ABCDEF0123456789ABCDEF0123456789',
      User: 'CORP\\alice',
    };
    // The network event first, its process creation after (Sysmon batches can reorder them).
    await post(JSON.stringify(eid3(port, 'C:\\Windows\\System32\\rundll32.exe', Date.now(), guid)));
    await post(JSON.stringify(eid1));
    await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/joined`]);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/joined');
    expect(field(rec, 'process.parent.name')).toBe('explorer.exe');
    expect(field(rec, 'process.command_line')).toContain('RunHTMLApplication');
    expect(field(rec, 'process.pe.original_file_name')).toBe('RUNDLL32.EXE');
    expect(field(rec, 'process.hash.sha256')).toBe('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
  });

  it('Winlogbeat-shaped events attribute flows too', async () => {
    const port = await freeSourcePort();
    const event = {
      '@timestamp': new Date().toISOString(),
      host: { name: 'workstation7.corp.local' },
      winlog: {
        event_id: '3',
        event_data: { ProcessGuid: '{77777777-0000-0000-0000-000000000007}', ProcessId: '777', Image: 'C:\\Windows\\System32\\wscript.exe', SourceIp: '127.0.0.1', SourcePort: String(port), DestinationIp: '127.0.0.1', DestinationPort: '3128', Protocol: 'tcp', Initiated: 'true', User: 'CORP\\bob', UtcTime: sysmonTime(Date.now()) },
      },
    };
    expect(((await (await post(JSON.stringify([event]))).json()) as { accepted: number }).accepted).toBe(1);
    await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/wlb`]);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/wlb');
    expect(field(rec, 'process.name')).toBe('wscript.exe');
    expect(field(rec, 'host.name')).toBe('workstation7.corp.local');
  });

  it('a header claim that disagrees with telemetry is recorded with the reason "process claim mismatch"', async () => {
    const port = await freeSourcePort();
    await post(JSON.stringify(eid3(port, 'C:\\Windows\\System32\\rundll32.exe')));
    const claim = signProcessClaim('chrome.exe', 4242, KEY, Date.now());
    await curl(['-x', h.proxyUrl, '--local-port', String(port), '-H', `X-Egress-Process: ${claim}`, `http://127.0.0.1:${origin.port}/spoof`]);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/spoof');
    expect(field(rec, 'process.name')).toBe('rundll32.exe');
    expect(field(rec, 'egress.claim.process_name')).toBe('chrome.exe');
    expect(field(rec, 'egress.claim.verified')).toBe(true);
    expect((field(rec, 'egress.reasons') as string[]).some((r) => r.startsWith('process claim mismatch'))).toBe(true);
  });

  it('refuses bodies over hints.max_body_bytes with 413', async () => {
    const res = await post('x'.repeat(11 * 1024 * 1024));
    expect(res.status).toBe(413);
  });
});
