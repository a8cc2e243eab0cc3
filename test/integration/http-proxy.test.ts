import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { closedPort, curl, echoHandler, rawExchange, startAnyMethodOrigin, startOrigin, type TestServer } from '../helpers/servers.js';

const POLICY = `version: 1
lists:
  c2_paths: [/beacon, /gate.php]
rules:
  - id: block-c2-path
    description: Known beacon paths
    when:
      url.path: { in: $c2_paths }
    action: block
    severity: high
    tags: [attack.t1071.001]
  - id: tag-post
    when:
      http.request.method: POST
    action: tag
    tags: [upload]
`;

describe('HTTP forward proxy (curl through the real proxy)', () => {
  let h: Harness;
  let origin: TestServer;
  let slow: TestServer;

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    slow = await startOrigin((_req, res) => {
      // Accept and never answer: the proxy's response timeout must fire.
      setTimeout(() => res.end('late'), 5000);
    });
    h = await startHarness({
      policy: POLICY,
      dns: { 'origin.test': { A: ['127.0.0.1'] } },
      config: { proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  timeouts: { connect: 1s, response: 400ms, idle: 10s, headers: 2s }\n  drain: 1s' },
    });
  });

  afterAll(async () => {
    await h.stop();
    await origin.close();
    await slow.close();
  });

  it('forwards an allowed request by name and writes an allow record with ECS fields', async () => {
    const r = await curl(['-x', h.proxyUrl, '-A', 'test-agent/1.0', `http://origin.test:${origin.port}/hello?x=1`]);
    expect(r.status).toBe(200);
    const echoed = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    expect(echoed.url).toBe('/hello?x=1');
    expect(echoed.headers.host).toBe(`origin.test:${origin.port}`);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/hello');
    expect(field(rec, 'event.action')).toBe('allow');
    expect(field(rec, 'event.kind')).toBe('event');
    expect(field(rec, 'network.protocol')).toBe('http');
    expect(field(rec, 'destination.domain')).toBe('origin.test');
    expect(field(rec, 'destination.ip')).toBe('127.0.0.1');
    expect(field(rec, 'destination.port')).toBe(origin.port);
    expect(field(rec, 'source.ip')).toBe('127.0.0.1');
    expect(field(rec, 'http.response.status_code')).toBe(200);
    expect(field(rec, 'user_agent.original')).toBe('test-agent/1.0');
    expect(field(rec, 'url.original')).toBe(`http://origin.test:${origin.port}/hello?x=1`);
    expect(field(rec, 'source.bytes') as number).toBeGreaterThan(50);
    expect(field(rec, 'destination.bytes') as number).toBeGreaterThan(50);
    expect(field(rec, 'event.duration') as number).toBeGreaterThan(0);
    expect(rec['rule']).toBeUndefined();
    expect(field(rec, 'egress.reasons')).toContain(`uncommon destination port ${origin.port} (+25 uncommon_port)`);
    expect(await h.metrics()).toMatch(/egress_flows_total\{action="allow",protocol="http"\} [1-9]/);
  });

  it('blocks by rule with 403 naming the rule, and records an alert with tags', async () => {
    const r = await curl(['-x', h.proxyUrl, `http://origin.test:${origin.port}/beacon`]);
    expect(r.status).toBe(403);
    expect(r.body).toContain('block-c2-path');
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/beacon');
    expect(field(rec, 'event.action')).toBe('block');
    expect(field(rec, 'event.kind')).toBe('alert');
    expect(field(rec, 'rule.id')).toBe('block-c2-path');
    expect(field(rec, 'tags')).toEqual(['attack.t1071.001']);
    expect(field(rec, 'egress.rules')).toEqual(['block-c2-path']);
    // A block is decided on the name: the origin never sees the request.
    expect(await h.metrics()).toMatch(/egress_rule_matches_total\{rule="block-c2-path",mode="live"\} 1/);
  });

  it('a blocked name is never resolved (no DNS query leaves the proxy)', async () => {
    const before = h.dns.queries.filter((q) => q.name === 'never-resolved.test').length;
    const r = await curl(['-x', h.proxyUrl, 'http://never-resolved.test/beacon']);
    expect(r.status).toBe(403);
    expect(h.dns.queries.filter((q) => q.name === 'never-resolved.test').length).toBe(before);
  });

  it('tags go on and the request is still forwarded', async () => {
    const r = await curl(['-x', h.proxyUrl, '-d', 'payload=1', `http://origin.test:${origin.port}/upload`]);
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { bodyBytes: number }).bodyBytes).toBe(9);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/upload');
    expect(field(rec, 'event.action')).toBe('allow');
    expect(field(rec, 'tags')).toEqual(['upload']);
    expect(field(rec, 'egress.rules')).toEqual(['tag-post']);
    expect(rec['rule']).toBeUndefined();
  });

  it('strips hop-by-hop, Proxy-* and identity headers before forwarding', async () => {
    const r = await curl([
      '-x', h.proxyUrl,
      '-H', 'Proxy-Authorization: Basic dXNlcjpwYXNz',
      '-H', 'X-Forwarded-For: 10.1.2.3',
      '-H', 'X-Egress-Process: name=chrome.exe; pid=1',
      '-H', 'Connection: x-secret-hop',
      '-H', 'X-Secret-Hop: 1',
      '-H', 'X-Kept: yes',
      `http://origin.test:${origin.port}/headers`,
    ]);
    expect(r.status).toBe(200);
    const { headers } = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(headers['proxy-authorization']).toBeUndefined();
    expect(headers['x-forwarded-for']).toBeUndefined();
    expect(headers['x-egress-process']).toBeUndefined();
    expect(headers['x-secret-hop']).toBeUndefined();
    expect(headers['x-kept']).toBe('yes');
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/headers');
    expect(JSON.stringify(rec)).not.toContain('dXNlcjpwYXNz');
  });

  it('answers 502 with a record when the destination refuses', async () => {
    const port = await closedPort();
    const r = await curl(['-x', h.proxyUrl, `http://origin.test:${port}/down`]);
    expect(r.status).toBe(502);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/down');
    expect(field(rec, 'error.code')).toBe('UPSTREAM_CONNECT_FAILED');
    expect(field(rec, 'event.outcome')).toBe('failure');
    expect(field(rec, 'http.response.status_code')).toBe(502);
  });

  it('answers 504 when the destination does not respond in time', async () => {
    const r = await curl(['-x', h.proxyUrl, `http://origin.test:${slow.port}/slow`]);
    expect(r.status).toBe(504);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/slow');
    expect(field(rec, 'error.code')).toBe('UPSTREAM_TIMEOUT');
  });

  it('answers 502 when the name does not resolve', async () => {
    const r = await curl(['-x', h.proxyUrl, 'http://nxdomain.test/x']);
    expect(r.status).toBe(502);
    const rec = await h.waitForRecord((x) => field(x, 'destination.domain') === 'nxdomain.test');
    expect(field(rec, 'error.code')).toBe('RESOLVE_FAILED');
  });

  it('forwards extension methods (CCM_POST, BITS_POST) with their bodies, framed as for POST (RFC 9110 §9.1)', async () => {
    const any = await startAnyMethodOrigin();
    try {
      for (const method of ['CCM_POST', 'BITS_POST']) {
        const r = await curl(['-x', h.proxyUrl, '-X', method, '--data-binary', `body of ${method}`, `http://origin.test:${any.port}/ccm_system/request`]);
        expect(r.status, method).toBe(200);
        const echoed = JSON.parse(r.body) as { method: string; path: string; body: string };
        expect(echoed.method).toBe(method);
        expect(echoed.path).toBe('/ccm_system/request');
        expect(echoed.body).toBe(`body of ${method}`);
        const rec = await h.waitForRecord((x) => field(x, 'http.request.method') === method);
        expect(field(rec, 'event.action')).toBe('allow');
        expect(field(rec, 'http.response.status_code')).toBe(200);
      }
      // A chunked upload with an extension method (BITS sends fragments; some clients stream them).
      const chunked = await curl(['-x', h.proxyUrl, '-X', 'BITS_POST', '-H', 'Transfer-Encoding: chunked', '--data-binary', 'fragment-1', `http://origin.test:${any.port}/bits`]);
      expect(chunked.status).toBe(200);
      expect((JSON.parse(chunked.body) as { body: string }).body).toBe('fragment-1');
    } finally {
      await any.close();
    }
  });

  it('serves several requests on one keep-alive client connection, one record each', async () => {
    const url = `http://origin.test:${origin.port}/ka`;
    const r = await curl(['-x', h.proxyUrl, url, url, url]);
    expect(r.code).toBe(0);
    await h.waitForRecord(() => h.records.filter((x) => field(x, 'url.path') === '/ka').length === 3);
  });

  it('refuses malformed input with a clear 4xx and a record, and keeps serving', async () => {
    const cases: Array<[string, string, number]> = [
      ['origin-form target', 'GET /relative HTTP/1.1\r\nHost: a\r\n\r\n', 400],
      ['https absolute-form', 'GET https://origin.test/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
      ['userinfo in URL', `GET http://user:pw@origin.test:${origin.port}/ HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
      ['method that is not a token', 'GE(T http://origin.test/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
      ['obs-fold', `GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n`, 400],
      ['HTTP/1.1 without Host', `GET http://origin.test:${origin.port}/ HTTP/1.1\r\nUser-Agent: x\r\n\r\n`, 400],
      ['bare LF', `GET http://origin.test:${origin.port}/ HTTP/1.1\nHost: a\n\n`, 400],
      ['bad chunk size', `POST http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`, 400],
      ['garbage request line', '\x16\x03\x01\x00\x05hello\r\n\r\n', 400],
      ['CL and TE together', `POST http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
      ['duplicate Content-Length', `POST http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400],
      ['oversized headers', `GET http://origin.test/ HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['CONNECT without port', 'CONNECT origin.test HTTP/1.1\r\nHost: origin.test\r\n\r\n', 400],
      ['CONNECT with path', 'CONNECT origin.test:443/x HTTP/1.1\r\nHost: origin.test\r\n\r\n', 400],
      ['WebSocket upgrade over plain HTTP', `GET http://origin.test:${origin.port}/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, 501],
    ];
    for (const [name, payload, status] of cases) {
      const before = h.records.length;
      const reply = await rawExchange(h.port, payload);
      expect(reply.slice(0, 12), name).toBe(`HTTP/1.1 ${status}`);
      expect(reply.toLowerCase(), name).toContain('content-type: text/plain');
      const rec = await h.waitForRecord((x) => h.records.indexOf(x) >= before && field(x, 'http.response.status_code') === status);
      expect(field(rec, 'event.action'), name).toBe('block');
      expect(field(rec, 'error.code'), name).toMatch(/BAD_REQUEST|BAD_TARGET|HEADERS_TOO_LARGE/);
    }
    const ok = await curl(['-x', h.proxyUrl, `http://origin.test:${origin.port}/still-serving`]);
    expect(ok.status).toBe(200);
    // Every refused request ended its flow (none left counted as active).
    await expect.poll(async () => (await h.proxy.metrics.activeFlows.get()).values[0]?.value).toBe(0);
  });

  it('upstream dying mid-body cuts the client off instead of sending a short "complete" response', async () => {
    const dying = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('x'.repeat(1000));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    try {
      const r = await curl(['-x', h.proxyUrl, `http://origin.test:${dying.port}/dies`]);
      expect(r.code).not.toBe(0);
      const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/dies');
      expect(field(rec, 'event.outcome')).toBe('failure');
      expect(field(rec, 'error.code')).toBe('UPSTREAM_ABORTED');
    } finally {
      await dying.close();
    }
  });

  it('hot reload: a good edit swaps the policy, an invalid edit keeps the last good one', async () => {
    const url = `http://origin.test:${origin.port}/reload-me`;
    expect((await curl(['-x', h.proxyUrl, url])).status).toBe(200);
    await writeFile(h.policyFile, `${POLICY}  - id: block-reload\n    when: { url.path: /reload-me }\n    action: block\n`);
    await expect.poll(async () => (await curl(['-x', h.proxyUrl, url])).status, { timeout: 5000, interval: 100 }).toBe(403);
    expect(await h.metrics()).toMatch(/egress_policy_reloads_total\{result="success"\} [2-9]/);
    await writeFile(h.policyFile, 'version: 1\nrules:\n  - id: broken\n    when: { no.such.field: 1 }\n    action: block\n');
    await expect.poll(async () => /egress_policy_reloads_total\{result="failure"\} [1-9]/.test(await h.metrics()), { timeout: 5000, interval: 100 }).toBe(true);
    expect((await curl(['-x', h.proxyUrl, url])).status).toBe(403);
    await writeFile(h.policyFile, POLICY);
    await expect.poll(async () => (await curl(['-x', h.proxyUrl, url])).status, { timeout: 5000, interval: 100 }).toBe(200);
  });
});

describe('limits', () => {
  it('a client that never finishes its request head gets 408 after proxy.timeouts.headers (slowloris)', async () => {
    const h = await startHarness({ policy: 'version: 1\n', config: { proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  timeouts: { headers: 500ms }' } });
    try {
      const started = Date.now();
      const reply = await rawExchange(h.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nX-Slow: ', 5000);
      expect(reply.slice(0, 12)).toBe('HTTP/1.1 408');
      expect(Date.now() - started).toBeLessThan(4000);
      const rec = await h.waitForRecord((x) => field(x, 'http.response.status_code') === 408);
      expect(field(rec, 'error.code')).toBe('CLIENT_TIMEOUT');
    } finally {
      await h.stop();
    }
  });

  it('refuses flows over proxy.max_flows with 503 and a record', async () => {
    const hold = await startOrigin((_req, res) => setTimeout(() => res.end('done'), 600));
    const h = await startHarness({ policy: 'version: 1\n', config: { proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  max_flows: 1' } });
    try {
      const first = curl(['-x', h.proxyUrl, `http://127.0.0.1:${hold.port}/first`]);
      await expect.poll(() => h.proxy.metrics.activeFlows.get().then((m) => m.values[0]?.value ?? 0)).toBe(1);
      const second = await curl(['-x', h.proxyUrl, `http://127.0.0.1:${hold.port}/second`]);
      expect(second.status).toBe(503);
      expect((await first).status).toBe(200);
      const rec = await h.waitForRecord((x) => field(x, 'http.response.status_code') === 503);
      expect(field(rec, 'rule.id')).toBe('builtin:capacity');
      expect(field(rec, 'error.code')).toBe('TOO_MANY_FLOWS');
    } finally {
      await h.stop();
      await hold.close();
    }
  });
});

describe('destination and client checks', () => {
  let origin: TestServer;

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
  });
  afterAll(async () => origin.close());

  it('denies internal destinations by default, in every spelling of the address', async () => {
    const h = await startHarness({
      policy: 'version: 1\nrules:\n  - id: allow-web\n    when: { destination.port: { gt: 0 } }\n    action: allow\n',
      dns: { 'rebind.test': { A: ['127.0.0.1'] } },
      config: { network: 'network: {}' },
    });
    try {
      for (const host of ['127.0.0.1', '2130706433', '0177.0.0.1', '0x7f.1', '[::ffff:127.0.0.1]', 'rebind.test']) {
        const r = await curl(['-x', h.proxyUrl, `http://${host}:${origin.port}/internal`]);
        expect(r.status, host).toBe(403);
        expect(r.body, host).toContain('builtin:internal-destination');
      }
      const rec = await h.waitForRecord((x) => field(x, 'destination.domain') === 'rebind.test');
      expect(field(rec, 'egress.destination.internal')).toBe(true);
      expect(field(rec, 'rule.id')).toBe('builtin:internal-destination');
      expect(origin.connections()).toBe(0);
    } finally {
      await h.stop();
    }
  });

  it('an allow rule that names the destination opens an internal address on purpose', async () => {
    const h = await startHarness({
      policy: 'version: 1\nrules:\n  - id: allow-lab\n    when: { destination.ip: { cidr: 127.0.0.0/8 } }\n    action: allow\n',
      config: { network: 'network: {}' },
    });
    try {
      const r = await curl(['-x', h.proxyUrl, `http://127.0.0.1:${origin.port}/lab`]);
      expect(r.status).toBe(200);
      const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/lab');
      expect(field(rec, 'rule.id')).toBe('allow-lab');
      expect(field(rec, 'egress.destination.internal')).toBe(true);
    } finally {
      await h.stop();
    }
  });

  it('refuses clients outside proxy.clients with 403 and a record', async () => {
    const h = await startHarness({
      policy: 'version: 1\n',
      config: { proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  clients: [10.0.0.0/8]' },
    });
    try {
      const r = await curl(['-x', h.proxyUrl, `http://127.0.0.1:${origin.port}/acl`]);
      expect(r.status).toBe(403);
      const rec = await h.waitForRecord((x) => field(x, 'url.original') === `http://127.0.0.1:${origin.port}/acl`);
      expect(field(rec, 'rule.id')).toBe('builtin:client-denied');
      expect(field(rec, 'error.code')).toBe('CLIENT_DENIED');
      const tunnel = await rawExchange(h.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\n\r\n`);
      expect(tunnel.slice(0, 12)).toBe('HTTP/1.1 403');
    } finally {
      await h.stop();
    }
  });
});
