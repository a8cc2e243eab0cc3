/**
 * The DNS forwarder end to end: the real listener (in-process through the harness, and once through the CLI),
 * dnsmasq as the upstream, dig and Node's resolver as clients. Loopback only; every config sets dns.upstream.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { startDnsmasq, type Dnsmasq } from '../helpers/dnsmasq.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { answerTo, startScriptedDnsServer, type ScriptedServer } from '../helpers/dns-scripted-server.js';
import { openTunnel } from '../helpers/servers.js';
import { startDaemon } from '../helpers/cli.js';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import type { EcsRecord } from '../../src/observe/ecs.js';

interface DigResult {
  status: string;
  answers: string[];
  flags: string;
  raw: string;
}

/** dig @127.0.0.1 -p PORT name type [options]; answers as "type data" lines. */
function dig(port: number, name: string, type = 'A', options: string[] = []): Promise<DigResult> {
  return new Promise((resolve, reject) => {
    execFile('dig', [`@127.0.0.1`, '-p', String(port), name, type, '+tries=1', '+time=3', ...options], { timeout: 10_000 }, (err, stdout) => {
      if (err !== null && stdout === '') return reject(err);
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'NONE';
      const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '';
      const section = stdout.split(';; ANSWER SECTION:\n')[1]?.split('\n\n')[0] ?? '';
      const answers = section
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.split(/\s+/).slice(3).join(' '));
      resolve({ status, answers, flags, raw: stdout });
    });
  });
}

/** One UDP query with dns-packet; resolves with the decoded answer or null after `ms`. */
function udpQuery(port: number, bytes: Buffer, ms = 1000): Promise<dnsPacket.DecodedPacket | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, ms);
    s.on('message', (msg) => {
      clearTimeout(timer);
      s.close();
      try {
        resolve(dnsPacket.decode(msg));
      } catch {
        resolve(null);
      }
    });
    s.send(bytes, port, '127.0.0.1');
  });
}

/** dns-packet decodes the RCODE name, but its types do not declare it. */
function rcodeOf(packet: dnsPacket.DecodedPacket | null | undefined): string | undefined {
  return (packet as { rcode?: string } | null | undefined)?.rcode;
}

function queryBytes(name: string, type: dnsPacket.RecordType = 'A', id = 1): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
}

function dnsSection(upstream: string, extra = ''): string {
  return `dns:\n  listen: "127.0.0.1:0"\n  upstream: ["${upstream}"]\n  timeout: 300ms\n  tries: 1\n  tcp_idle: 2s${extra}`;
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

function dnsRecords(h: Harness, name: string): EcsRecord[] {
  return h.records.filter((r) => field(r, 'dns.question.name') === name);
}

const POLICY = `version: 1
rules:
  - id: block-evil
    description: Known-bad names
    when:
      dns.question.name: { endswith: evil.test }
    action: block
    severity: high
    tags: [dns-block]
`;

let dnsmasq: Dnsmasq;

beforeAll(async () => {
  dnsmasq = await startDnsmasq({
    addresses: { 'x.test': '127.0.0.2', 'mem.test': '127.0.0.3', 'tun.test': '127.0.0.9', 'nx.test': '' },
    txt: { 'txt.x.test': 'hello' },
  });
});

afterAll(async () => {
  await dnsmasq.stop();
});

describe('DNS forwarder: answers, policy, records', () => {
  let h: Harness;
  let port: number;

  beforeAll(async () => {
    h = await startHarness({ policy: POLICY, config: { dns: dnsSection(dnsmasq.server) } });
    if (h.proxy.dnsAddress === null) throw new Error('the DNS listener did not start');
    port = h.proxy.dnsAddress.port;
  });

  afterAll(async () => {
    await h.stop();
  });

  it('answers over UDP via the upstream, and writes one ECS record per query', async () => {
    const r = await dig(port, 'www.X.test');
    expect(r.status).toBe('NOERROR');
    expect(r.answers).toEqual(['A 127.0.0.2']);
    const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'www.x.test');
    expect(rec).toMatchObject({
      network: { protocol: 'dns', transport: 'udp' },
      source: { ip: '127.0.0.1' },
      event: { action: 'allow', kind: 'event', outcome: 'success' },
      dns: {
        question: { name: 'www.x.test', type: 'A', registered_domain: 'x.test', subdomain: 'www' },
        response_code: 'NOERROR',
        answers: [{ name: 'www.x.test', type: 'A', data: '127.0.0.2', ttl: 0 }],
      },
      egress: { dns: { label_count: 3, longest_label: 4 } },
    });
    expect(typeof field(rec, 'source.port')).toBe('number');
    expect(typeof field(rec, 'egress.dns.question_entropy')).toBe('number');
    expect(dnsRecords(h, 'www.x.test')).toHaveLength(1);
  });

  it('answers over TCP (dig +tcp)', async () => {
    const r = await dig(port, 'tcp.x.test', 'A', ['+tcp']);
    expect(r.answers).toEqual(['A 127.0.0.2']);
    const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'tcp.x.test');
    expect(field(rec, 'network.transport')).toBe('tcp');
  });

  it('answers Node dns.Resolver with setServers, TXT included', async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    expect(await resolver.resolve4('node.x.test')).toEqual(['127.0.0.2']);
    expect(await resolver.resolveTxt('txt.x.test')).toEqual([['hello']]);
    await expect(resolver.resolve4('gone.nx.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'gone.nx.test');
    expect(field(rec, 'dns.response_code')).toBe('NXDOMAIN');
  });

  it('answers a policy block with NXDOMAIN, and records the rule as an alert', async () => {
    const r = await dig(port, 'c2.evil.test');
    expect(r.status).toBe('NXDOMAIN');
    expect(r.answers).toEqual([]);
    const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'c2.evil.test');
    expect(rec).toMatchObject({ event: { action: 'block', kind: 'alert' }, rule: { id: 'block-evil' }, tags: ['dns-block'], dns: { response_code: 'NXDOMAIN' } });
    expect(await h.metrics()).toMatch(/egress_dns_queries_total\{action="block"\} [1-9]/);
  });

  it('attributes a query to the process named by a Sysmon Event ID 22 from the same host (SPEC)', async () => {
    const post = (events: unknown[]): Promise<Response> =>
      fetch(`${h.adminUrl}/v1/hints`, { method: 'POST', headers: { authorization: 'Bearer test-token' }, body: events.map((e) => JSON.stringify(e)).join('\n') });
    const now = Date.now();
    // The host's network event ties WORKSTATION9 to 127.0.0.1; its DNS query event names the asking process
    // (the UDP packet itself comes from the DNS Client service, so the query name is what joins).
    const res = await post([
      eid3(await freeSourcePort(), 'C:\\Windows\\System32\\svchost.exe', now, '{99999999-0000-0000-0000-000000000001}'),
      { ...eid3(1, 'x', now), EventID: 22, Hostname: 'WORKSTATION5.corp.local', Image: 'C:\\Windows\\System32\\mshta.exe', ProcessGuid: '{99999999-0000-0000-0000-000000000022}', QueryName: 'beacon.x.test', QueryStatus: '0', QueryResults: '::ffff:127.0.0.2;' },
    ]);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(2);
    const r = await dig(port, 'beacon.x.test');
    expect(r.status).toBe('NOERROR');
    const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'beacon.x.test');
    expect(field(rec, 'process.name')).toBe('mshta.exe');
    expect(field(rec, 'egress.attribution')).toBe('telemetry');
  });

  it('answers several queries on one TCP connection (RFC 7766 pipelining)', async () => {
    const names = ['p1.x.test', 'p2.x.test', 'p3.evil.test'];
    const framed = Buffer.concat(
      names.map((n, i) => {
        const q = queryBytes(n, 'A', 100 + i);
        const f = Buffer.alloc(2 + q.length);
        f.writeUInt16BE(q.length, 0);
        q.copy(f, 2);
        return f;
      }),
    );
    const replies = await new Promise<dnsPacket.DecodedPacket[]>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      const out: dnsPacket.DecodedPacket[] = [];
      socket.on('error', reject);
      socket.on('connect', () => socket.write(framed));
      socket.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          out.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (out.length === names.length) {
          socket.end();
          resolve(out);
        }
      });
    });
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(byId.get(100)?.answers?.[0]).toMatchObject({ type: 'A', data: '127.0.0.2' });
    expect(byId.get(101)?.answers?.[0]).toMatchObject({ type: 'A', data: '127.0.0.2' });
    expect(rcodeOf(byId.get(102))).toBe('NXDOMAIN');
  });

  it('answers malformed packets with FORMERR or drops them, counts them, and keeps serving', async () => {
    const loop = Buffer.from([0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]);
    const formerr = await udpQuery(port, loop);
    expect(formerr).toMatchObject({ id: 0xabcd, rcode: 'FORMERR', type: 'response' });
    const lying = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(rcodeOf(await udpQuery(port, lying))).toBe('FORMERR');
    expect(await udpQuery(port, Buffer.from([1, 2, 3]), 300)).toBeNull(); // no header: dropped
    // fast-check: random and mutated datagrams, sent without waiting; none may crash the listener.
    const seed = queryBytes('seed.x.test');
    const packets = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((edits) => {
          const b = Buffer.from(seed);
          for (const [at, v] of edits) b[at] = v;
          return b;
        }),
      ),
      { numRuns: 300, seed: 42 },
    );
    const sender = createSocket('udp4');
    sender.on('message', () => undefined);
    for (const p of packets) sender.send(p, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 500));
    sender.close();
    const after = await dig(port, 'still.x.test');
    expect(after.answers).toEqual(['A 127.0.0.2']);
    const metrics = await h.metrics();
    expect(metricValue(metrics, 'egress_dns_malformed_total{transport="udp",reply="formerr"}')).toBeGreaterThanOrEqual(2);
    expect(metricValue(metrics, 'egress_dns_malformed_total{transport="udp",reply="dropped"}')).toBeGreaterThanOrEqual(1);
  });

  it('raises the tunnelling signal for a burst of unique subdomains, with reasons in the records', async () => {
    const sock = createSocket('udp4');
    const answered = new Set<number>();
    sock.on('message', (msg: Buffer) => answered.add(msg.readUInt16BE(0)));
    for (let i = 0; i < 150; i++) {
      sock.send(queryBytes(`${(i * 2654435761 >>> 0).toString(36)}q${i}.t.tun.test`, 'A', i + 1), port, '127.0.0.1');
      if (i % 25 === 24) await new Promise((r) => setTimeout(r, 20));
    }
    const deadline = Date.now() + 5000;
    while (answered.size < 150 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    sock.close();
    expect(answered.size).toBe(150);
    const flagged = h.records.filter((r) => ((field(r, 'egress.reasons') as string[] | undefined) ?? []).some((x) => x.includes('unique subdomains of tun.test')));
    expect(flagged.length).toBeGreaterThan(30);
    expect(flagged[0]).toMatchObject({ dns: { question: { registered_domain: 'tun.test' } } });
    expect(field(flagged[0] as EcsRecord, 'egress.score')).toBeGreaterThanOrEqual(20);
  });

  it('scores a DGA-looking name higher than a dictionary name, with the reason in its record', async () => {
    await dig(port, 'xkq3vz9plw7t.com');
    await dig(port, 'wikipedia.org');
    const dga = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'xkq3vz9plw7t.com');
    const word = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'wikipedia.org');
    expect(Number(field(dga, 'egress.score'))).toBeGreaterThan(Number(field(word, 'egress.score')));
    expect(field(dga, 'egress.reasons')).toEqual([expect.stringMatching(/^DGA-like name: "xkq3vz9plw7t"/)]);
  });

  it('remembers answers: a later CONNECT to the IP carries destination.domain and resolved_before', async () => {
    const servers: Server[] = [];
    const listenOn = async (host: string): Promise<number> => {
      const s = createServer((c) => c.end());
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, host, () => r()));
      return (s.address() as AddressInfo).port;
    };
    try {
      const resolvedPort = await listenOn('127.0.0.3');
      const neverPort = await listenOn('127.0.0.4');
      expect((await dig(port, 'api.mem.test')).answers).toEqual(['A 127.0.0.3']);

      const t1 = await openTunnel(h.port, `127.0.0.3:${resolvedPort}`);
      expect(t1.head).toMatch(/^HTTP\/1\.1 200/);
      t1.socket.destroy();
      const rec = await h.waitForRecord((x) => field(x, 'url.original') === `127.0.0.3:${resolvedPort}`);
      expect(rec).toMatchObject({ destination: { domain: 'api.mem.test', ip: '127.0.0.3' }, egress: { destination: { resolved_before: true } } });
      expect(field(rec, 'egress.reasons')).toContain('destination is a bare IP address, not a name (+20 ip_literal)');

      const t2 = await openTunnel(h.port, `127.0.0.4:${neverPort}`);
      t2.socket.destroy();
      const rec2 = await h.waitForRecord((x) => field(x, 'url.original') === `127.0.0.4:${neverPort}`);
      expect(field(rec2, 'destination.domain')).toBeUndefined();
      expect(field(rec2, 'egress.destination.resolved_before')).toBe(false);
      expect(field(rec2, 'egress.reasons')).toContain('connects to an IP address that no DNS answer gave this client (+10 unresolved_ip)');
      const metrics = await h.metrics();
      expect(metricValue(metrics, 'egress_dns_memory_entries{table="addresses"}')).toBeGreaterThanOrEqual(1);
      expect(metrics).toMatch(/egress_dns_upstream_seconds_count\{transport="udp",outcome="answer"\} [1-9]/);
    } finally {
      for (const s of servers) s.close();
    }
  });
});

describe('DNS forwarder: sinkhole, failures, truncation, ACL', () => {
  it('answers a blocked name with the sinkhole address when dns.sinkhole is set', async () => {
    const h = await startHarness({ policy: POLICY, config: { dns: dnsSection(dnsmasq.server, '\n  sinkhole: 0.0.0.0') } });
    try {
      const port = h.proxy.dnsAddress?.port ?? 0;
      const a = await dig(port, 'www.evil.test');
      expect(a.status).toBe('NOERROR');
      expect(a.answers).toEqual(['A 0.0.0.0']);
      expect((await dig(port, 'www.evil.test', 'AAAA')).answers).toEqual(['AAAA ::']);
      const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'www.evil.test');
      expect(rec).toMatchObject({ event: { action: 'block' }, dns: { response_code: 'NOERROR', answers: [{ type: 'A', data: '0.0.0.0', ttl: 60 }] } });
    } finally {
      await h.stop();
    }
  });

  it('answers SERVFAIL when the upstream is down, and records the failure', async () => {
    const silent: TestDnsServer = await startDnsServer({}, { drop: true });
    const h = await startHarness({ policy: POLICY, config: { dns: dnsSection(silent.server) } });
    try {
      const r = await dig(h.proxy.dnsAddress?.port ?? 0, 'down.x.test');
      expect(r.status).toBe('SERVFAIL');
      const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'down.x.test');
      expect(rec).toMatchObject({ event: { action: 'allow', outcome: 'failure' }, error: { code: 'DNS_UPSTREAM_FAILED' }, dns: { response_code: 'SERVFAIL' } });
      const metrics = await h.metrics();
      expect(metricValue(metrics, 'egress_dns_queries_total{action="error"}')).toBe(1);
      expect(metrics).toMatch(/egress_dns_upstream_seconds_count\{transport="udp",outcome="timeout"\} 1/);
    } finally {
      await h.stop();
      await silent.close();
    }
  });

  it('retries over TCP when the upstream truncates, and truncates for a client that cannot take the size', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: 'big.test', ttl: 60, data: `192.0.2.${i + 1}` }));
    const server: ScriptedServer = await startScriptedDnsServer((ctx) => {
      if (ctx.transport === 'udp') ctx.reply(answerTo(ctx.query, [], { flags: dnsPacket.TRUNCATED_RESPONSE }));
      else ctx.reply(answerTo(ctx.query, many));
    });
    const h = await startHarness({ policy: POLICY, config: { dns: dnsSection(server.server) } });
    try {
      const port = h.proxy.dnsAddress?.port ?? 0;
      // EDNS 1232 bytes: the full answer (about 700 bytes) fits; we fetched it over TCP upstream.
      const full = await dig(port, 'big.test', 'A', ['+bufsize=1232']);
      expect(full.answers).toHaveLength(40);
      expect(full.flags).not.toMatch(/\btc\b/);
      expect(server.seen.filter((s) => s.transport === 'tcp')).toHaveLength(1);
      // No EDNS: 512 bytes; we answer TC and dig retries over TCP by itself.
      const small = await dig(port, 'big.test', 'A', ['+noedns']);
      expect(small.answers).toHaveLength(40);
      expect(small.raw).toMatch(/Truncated, retrying in TCP mode/);
      const records = dnsRecords(h, 'big.test');
      expect(records.map((r) => field(r, 'network.transport')).sort()).toEqual(['tcp', 'udp', 'udp']);
    } finally {
      await h.stop();
      await server.close();
    }
  });

  it('refuses clients outside proxy.clients with REFUSED and a record', async () => {
    const h = await startHarness({
      policy: POLICY,
      config: {
        dns: dnsSection(dnsmasq.server),
        proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  clients: [10.0.0.0/8]',
      },
    });
    try {
      expect((await dig(h.proxy.dnsAddress?.port ?? 0, 'acl.x.test')).status).toBe('REFUSED');
      const rec = await h.waitForRecord((x) => field(x, 'dns.question.name') === 'acl.x.test');
      expect(rec).toMatchObject({ event: { action: 'block' }, rule: { id: 'builtin:client-denied' }, error: { code: 'CLIENT_DENIED' } });
    } finally {
      await h.stop();
    }
  });
});

describe('SPEC done-when: dig through the CLI answers via the upstream', () => {
  it('egress-inspector start with dns.listen 127.0.0.1:0 prints the DNS address and answers dig', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'egress-dns-cli-'));
    const policy = join(dir, 'policy.yaml');
    const flows = join(dir, 'flows.jsonl');
    const config = join(dir, 'config.yaml');
    await writeFile(policy, POLICY);
    await writeFile(
      config,
      [
        'proxy: { listen: "127.0.0.1:0" }',
        'admin: { listen: "127.0.0.1:0" }',
        `dns: { listen: "127.0.0.1:0", upstream: ["${dnsmasq.server}"] }`,
        `resolver: { servers: ["${dnsmasq.server}"] }`,
        `policy: { files: ["${policy}"] }`,
        `log: { flows: "${flows}" }`,
        '',
      ].join('\n'),
    );
    const daemon = await startDaemon(['--config', config]);
    try {
      const m = /, dns on 127\.0\.0\.1:(\d+)/.exec(daemon.stderr());
      expect(m).not.toBeNull();
      const port = Number(m?.[1]);
      expect((await dig(port, 'cli.x.test')).answers).toEqual(['A 127.0.0.2']);
      expect((await dig(port, 'cli.evil.test')).status).toBe('NXDOMAIN');
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
    const records = (await readFile(flows, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as EcsRecord);
    expect(records.map((r) => [field(r, 'dns.question.name'), field(r, 'event.action')])).toEqual([
      ['cli.x.test', 'allow'],
      ['cli.evil.test', 'block'],
    ]);
    await rm(dir, { recursive: true, force: true });
  });
});
