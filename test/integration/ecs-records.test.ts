/**
 * The records the running proxy writes are ECS as Elastic takes them (issue 11): every field an ECS field of the
 * right JSON type and allowed value, or `egress.*`, or a SPEC fingerprint — for HTTP allow and block, a spliced
 * TLS tunnel, a DNS query, an attributed flow and a follow-up record. Loopback only.
 */
import { Resolver } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, openTunnel, startOrigin, type TestServer } from '../helpers/servers.js';
import { makeCert, startTlsServer, tlsOverTunnel, type TestCert, type TestTlsServer } from '../helpers/tls.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { communityId } from '../../src/observe/community-id.js';
import { ECS_VERSION } from '../../src/observe/ecs.js';
import type { EcsRecord } from '../../src/observe/ecs.js';
import { recordProblems } from '../unit/observe/ecs-rules.js';

const POLICY = `version: 1
rules:
  - id: block-c2
    when: { url.path: { startswith: /c2 } }
    action: block
    severity: high
    tags: [an0922]
  - id: lolbin-late
    when:
      process.name: { in: [regsvr32.exe] }
      url.path: { startswith: /late }
    action: block
    severity: high
`;

describe('flow records of every kind conform to ECS', () => {
  let h: Harness;
  let origin: TestServer;
  let tlsServer: TestTlsServer;
  let cert: TestCert;
  let upstream: TestDnsServer;

  const post = (body: string): Promise<Response> =>
    fetch(`${h.adminUrl}/v1/hints`, { method: 'POST', headers: { authorization: 'Bearer test-token', 'content-type': 'application/x-ndjson' }, body });

  const conforms = (rec: EcsRecord): void => {
    expect(recordProblems(rec), JSON.stringify(rec)).toEqual([]);
    expect(rec).toMatchObject({ ecs: { version: ECS_VERSION }, observer: { type: 'proxy', product: 'egress-inspector' } });
    expect(field(rec, 'network.bytes')).toBe((field(rec, 'source.bytes') as number) + (field(rec, 'destination.bytes') as number));
    expect(field(rec, 'event.start')).toBe(rec['@timestamp']);
  };

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    cert = makeCert(['tls.test']);
    tlsServer = await startTlsServer(cert);
    upstream = await startDnsServer({ 'q.test': { A: ['127.0.0.5'] } });
    h = await startHarness({
      policy: POLICY,
      dns: { 'tls.test': { A: ['127.0.0.1'] }, 'web.test': { A: ['127.0.0.1'] } },
      config: {
        dns: `dns:\n  listen: "127.0.0.1:0"\n  upstream: ["${upstream.server}"]\n  timeout: 500ms\n  tries: 1`,
        policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 100ms',
      },
    });
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
    await tlsServer.close();
    await upstream.close();
  });

  it('HTTP allow: web access, allowed, body sizes, url.full, community ID', async () => {
    const r = await curl(['-x', h.proxyUrl, '--data-binary', 'hello world', `http://web.test:${origin.port}/ok?x=1`]);
    expect(r.status).toBe(200);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/ok');
    conforms(rec);
    expect(rec).toMatchObject({
      event: { action: 'allow', outcome: 'success', category: ['network', 'web'], type: ['connection', 'allowed', 'protocol', 'access'] },
      network: { direction: 'outbound' },
      url: { full: `http://web.test:${origin.port}/ok?x=1` },
      http: { request: { body: { bytes: 11 } } },
      related: { ip: ['127.0.0.1'], hosts: ['web.test'] },
    });
    expect(field(rec, 'http.response.body.bytes')).toBe(field(rec, 'destination.bytes'));
    expect(field(rec, 'http.response.body.bytes')).toBeGreaterThan(0);
    expect(field(rec, 'network.community_id')).toBe(communityId('127.0.0.1', field(rec, 'source.port') as number, '127.0.0.1', origin.port, 'tcp'));
  });

  it('HTTP block: denied, outcome success, the rule and no response body from a destination', async () => {
    const r = await curl(['-x', h.proxyUrl, `http://web.test:${origin.port}/c2/beacon`]);
    expect(r.status).toBe(403);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/beacon');
    conforms(rec);
    expect(rec).toMatchObject({ event: { kind: 'alert', action: 'block', outcome: 'success', type: ['connection', 'denied', 'protocol', 'access'] }, rule: { id: 'block-c2' } });
    expect(field(rec, 'http.request.body.bytes')).toBe(0);
    expect(field(rec, 'http.response.body.bytes')).toBeUndefined();
  });

  it('CONNECT with TLS (spliced): network only, cipher names and codes, JA4 and related.hash', async () => {
    const { socket } = await openTunnel(h.port, `tls.test:${tlsServer.port}`);
    await tlsOverTunnel(socket, 'tls.test', cert.cert);
    const rec = await h.waitForRecord((x) => field(x, 'tls.client.server_name') === 'tls.test');
    conforms(rec);
    expect(rec).toMatchObject({ event: { category: ['network'], type: ['connection', 'allowed', 'protocol'] } });
    expect(field(rec, 'url.full')).toBeUndefined();
    const names = field(rec, 'tls.client.supported_ciphers') as string[];
    const codes = field(rec, 'egress.tls.cipher_codes') as string[];
    expect(names).toContain('TLS_AES_128_GCM_SHA256');
    expect(codes).toContain('1301');
    expect(names).toHaveLength(codes.length);
    expect(field(rec, 'related.hash')).toEqual(expect.arrayContaining([field(rec, 'tls.client.ja3'), field(rec, 'tls.client.ja4')]));
  });

  it('DNS: network, protocol, udp community ID when the record has a destination', async () => {
    if (h.proxy.dnsAddress === null) throw new Error('the DNS listener did not start');
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${h.proxy.dnsAddress.port}`]);
    expect(await resolver.resolve4('q.test')).toEqual(['127.0.0.5']);
    const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'q.test');
    conforms(rec);
    expect(rec).toMatchObject({ event: { category: ['network'], type: ['connection', 'allowed', 'protocol'] }, related: { hosts: ['q.test'] } });
    expect(typeof field(rec, 'egress.dns.question_entropy')).toBe('number');
  });

  it('attributed (process hint) and its follow-up: own @timestamp, the rule that produced it, linked by event.id', async () => {
    // A hint before the request: the client becomes managed and this flow is attributed in time.
    const early = await freeSourcePort();
    expect((await post(JSON.stringify(eid3(early, 'C:\\Users\\bob\\AppData\\payload.exe')))).status).toBe(202);
    await curl(['-x', h.proxyUrl, '--local-port', String(early), `http://web.test:${origin.port}/attributed`]);
    const attributed = await h.waitForRecord((x) => field(x, 'url.path') === '/attributed');
    conforms(attributed);
    expect(attributed).toMatchObject({ process: { name: 'payload.exe' }, egress: { attribution: 'telemetry' } });

    const port = await freeSourcePort();
    const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://web.test:${origin.port}/late/x`]);
    expect(r.status).toBe(200);
    const first = await h.waitForRecord((x) => field(x, 'url.path') === '/late/x');
    conforms(first);
    await post(JSON.stringify(eid3(port, 'C:\\Windows\\System32\\regsvr32.exe', Date.now() - 500)));
    const followUp = await h.waitForRecord((x) => field(x, 'egress.followup_of') === field(first, 'event.id'));
    conforms({ ...followUp, event: { ...(followUp['event'] as object), start: followUp['@timestamp'] } });
    expect(followUp['@timestamp']).not.toBe(first['@timestamp']);
    expect(followUp).toMatchObject({
      event: { kind: 'alert', action: 'allow', start: field(first, 'event.start'), end: field(first, 'event.end'), duration: field(first, 'event.duration') },
      rule: { id: 'lolbin-late' },
      process: { name: 'regsvr32.exe' },
      egress: { late_verdict: 'block', late_rule: 'lolbin-late', attribution: 'telemetry' },
    });
    expect(field(followUp, 'event.id')).not.toBe(field(first, 'event.id'));
    expect(field(followUp, 'egress.original_rule')).toBeUndefined();
  });
});
