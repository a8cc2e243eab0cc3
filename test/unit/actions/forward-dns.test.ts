import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeadlineQueue, createDnsForwarder, type DnsForwarderOptions, type UpstreamDropReason } from '../../../src/actions/forward-dns.js';
import { decodeDnsQuery } from '../../../src/parsers/dns-message.js';
import { startDnsmasq, type Dnsmasq } from '../../helpers/dnsmasq.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { answerTo, startScriptedDnsServer } from '../../helpers/dns-scripted-server.js';
import type { HostPort } from '../../../src/config/listen.js';

function query(name: string, type: dnsPacket.RecordType = 'A', id = 0x1234, edns = false): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: dnsPacket.DNSSEC_OK, flag_do: true, options: [{ code: 12, length: 8 }] }] : [],
  });
}

function hp(server: string): HostPort {
  const [host = '', port = '0'] = server.split(':');
  return { host, port: Number(port) };
}

function forwarder(servers: string[], extra: Partial<DnsForwarderOptions> = {}) {
  const drops: UpstreamDropReason[] = [];
  const exchanges: string[] = [];
  const f = createDnsForwarder({
    servers: servers.map(hp),
    timeoutMs: 300,
    tries: 1,
    onDrop: (r) => drops.push(r),
    onExchange: (t, o) => exchanges.push(`${t}:${o}`),
    ...extra,
  });
  return { f, drops, exchanges };
}

async function ask(f: ReturnType<typeof forwarder>['f'], raw: Buffer) {
  return f.forward(raw, decodeDnsQuery(raw).question);
}

let dnsmasq: Dnsmasq;
let silent: TestDnsServer;
let servfail: TestDnsServer;

beforeAll(async () => {
  dnsmasq = await startDnsmasq({ addresses: { 'x.test': '127.0.0.2' } });
  silent = await startDnsServer({}, { drop: true });
  servfail = await startDnsServer({}, { servfail: true });
});

afterAll(async () => {
  await dnsmasq.stop();
  await silent.close();
  await servfail.close();
});

describe('createDnsForwarder', () => {
  it('answers through dnsmasq with the client ID restored', async () => {
    const { f } = forwarder([dnsmasq.server]);
    const r = await ask(f, query('a.X.test', 'A', 0x4242));
    f.close();
    if (!r.ok) throw new Error(r.message);
    expect(r.transport).toBe('udp');
    expect(r.response.readUInt16BE(0)).toBe(0x4242);
    expect(r.view.answers).toEqual([{ name: 'a.x.test', type: 'A', ttl: 0, data: '127.0.0.2' }]);
  });

  it('sends a fresh random ID upstream for every query, never the client ID', async () => {
    const server = await startScriptedDnsServer((ctx) => ctx.reply(answerTo(ctx.query, [])));
    const { f } = forwarder([server.server]);
    for (let i = 0; i < 20; i++) await ask(f, query('same.test', 'A', 0x1234));
    f.close();
    const ids = server.seen.map((s) => s.query.id);
    await server.close();
    expect(new Set(ids).size).toBeGreaterThanOrEqual(18);
    expect(ids.filter((id) => id === 0x1234).length).toBeLessThanOrEqual(1);
  });

  it('drops answers with another ID, another question or from another port, and takes the real one', async () => {
    const server = await startScriptedDnsServer((ctx) => {
      const id = ctx.query.id ?? 0;
      const good = answerTo(ctx.query, [{ type: 'A', name: 'real.test', ttl: 30, data: '192.0.2.7' }]);
      ctx.replyFromElsewhere(good); // right ID and question, wrong source port: spoofed
      ctx.reply(answerTo(ctx.query, [{ type: 'A', name: 'real.test', ttl: 30, data: '6.6.6.6' }], { id: (id + 1) & 0xffff }));
      ctx.reply(answerTo(ctx.query, [{ type: 'A', name: 'other.test', ttl: 30, data: '6.6.6.6' }], { name: 'other.test' }));
      setTimeout(() => ctx.reply(good), 30);
    });
    const { f, drops } = forwarder([server.server]);
    const r = await ask(f, query('real.test'));
    f.close();
    await server.close();
    if (!r.ok) throw new Error(r.message);
    expect(r.view.answers.map((a) => a.data)).toEqual(['192.0.2.7']);
    // The datagram from another port never reaches us: the upstream sockets are connected, so the kernel drops it
    // (the forwarder checks the source too, for a platform that does not).
    expect(drops.sort()).toEqual(['unknown_id', 'wrong_question']);
  });

  it('moves on to the next server when one times out', async () => {
    const { f, exchanges } = forwarder([silent.server, dnsmasq.server], { timeoutMs: 150 });
    const started = Date.now();
    const r = await ask(f, query('b.x.test'));
    f.close();
    if (!r.ok) throw new Error(r.message);
    expect(r.server).toBe(dnsmasq.server);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(exchanges).toEqual(['udp:timeout', 'udp:answer']);
  });

  it('fails after every try of every server timed out', async () => {
    const { f } = forwarder([silent.server], { timeoutMs: 100, tries: 2 });
    const started = Date.now();
    const r = await ask(f, query('c.x.test'));
    f.close();
    expect(r).toEqual({ ok: false, message: expect.stringMatching(/^timeout \(no answer from 127\.0\.0\.1:\d+ in 100 ms\)$/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(silent.queries.filter((q) => q.name === 'c.x.test')).toHaveLength(2);
  });

  it('asks the next server after a SERVFAIL, and passes SERVFAIL on when it is the last word', async () => {
    const { f } = forwarder([servfail.server, dnsmasq.server]);
    const r = await ask(f, query('d.x.test'));
    if (!r.ok) throw new Error(r.message);
    expect(r.view.rcode).toBe(0);
    const only = forwarder([servfail.server]);
    const r2 = await ask(only.f, query('d.x.test'));
    f.close();
    only.f.close();
    expect(r2.ok && r2.view.rcode).toBe(2);
  });

  it('retries over TCP when the UDP answer is truncated (TC), and returns the full answer', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: 'big.test', ttl: 60, data: `192.0.2.${i + 1}` }));
    const server = await startScriptedDnsServer((ctx) => {
      if (ctx.transport === 'udp') ctx.reply(answerTo(ctx.query, [], { flags: dnsPacket.TRUNCATED_RESPONSE }));
      else ctx.reply(answerTo(ctx.query, many));
    });
    const { f, exchanges } = forwarder([server.server]);
    const r = await ask(f, query('big.test', 'A', 0x7777));
    f.close();
    const tcpIds = server.seen.filter((s) => s.transport === 'tcp').map((s) => s.query.id);
    await server.close();
    if (!r.ok) throw new Error(r.message);
    expect(r.transport).toBe('tcp');
    expect(r.view.answers).toHaveLength(40);
    expect(r.response.readUInt16BE(0)).toBe(0x7777);
    expect(tcpIds).toHaveLength(1);
    expect(tcpIds[0]).not.toBe(0x7777);
    expect(exchanges).toEqual(['udp:answer', 'tcp:answer']);
  });

  it('passes EDNS through: the OPT record and its options reach the upstream as the client sent them', async () => {
    const server = await startScriptedDnsServer((ctx) => ctx.reply(answerTo(ctx.query, [])));
    const { f } = forwarder([server.server]);
    const raw = query('edns.test', 'A', 1, true);
    await ask(f, raw);
    f.close();
    const got = server.seen[0]?.raw;
    await server.close();
    expect(got?.subarray(2)).toEqual(raw.subarray(2));
  });

  it('fails fast when the upstream port is closed (ICMP port unreachable on a connected socket)', async () => {
    const closed = await startDnsServer({});
    const server = closed.server;
    await closed.close();
    const { f } = forwarder([server], { timeoutMs: 2000 });
    const started = Date.now();
    const r = await ask(f, query('e.x.test'));
    f.close();
    expect(r).toEqual({ ok: false, message: expect.stringContaining('ECONNREFUSED') });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('fails at once when no server is configured, and after close', async () => {
    const { f } = forwarder([]);
    expect(await ask(f, query('x.test'))).toEqual({ ok: false, message: 'no DNS upstream servers configured' });
    const g = forwarder([dnsmasq.server]).f;
    g.close();
    expect(await ask(g, query('x.test'))).toEqual({ ok: false, message: 'the DNS forwarder is closed' });
  });
});

describe('createDnsForwarder: per-query cost', () => {
  it('leaves the client bytes as they were (the ID is rewritten in a copy)', async () => {
    const { f } = forwarder([dnsmasq.server]);
    const raw = query('copy.x.test', 'A', 0x2222);
    const before = Buffer.from(raw);
    const r = await ask(f, raw);
    f.close();
    expect(r.ok).toBe(true);
    expect(raw).toEqual(before);
  });

  it('times a burst of queries out with one shared timer, not one timer per query', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const { f, exchanges } = forwarder([silent.server], { timeoutMs: 100 });
      await ask(f, query('warm.x.test')); // the sockets are open: the burst below goes out synchronously
      spy.mockClear();
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => ask(f, query(`burst${i}.x.test`, 'A', i))));
      f.close();
      expect(results.every((r) => !r.ok && r.message.startsWith('timeout'))).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(95);
      expect(exchanges.filter((e) => e === 'udp:timeout')).toHaveLength(201);
      // One timer per query would be 200; the shared queue re-arms a handful of times (more on a loaded machine).
      expect(spy.mock.calls.length).toBeLessThan(25);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('DeadlineQueue', () => {
  it('expires items in order, skips the ones removed, and grows past its first size', async () => {
    const expired: number[] = [];
    const queue = new DeadlineQueue<{ deadline: number; n: number }>((item) => expired.push(item.n));
    const now = performance.now();
    const slots = Array.from({ length: 3000 }, (_, n) => queue.push({ deadline: now + 20, n }));
    for (let n = 0; n < 3000; n += 2) queue.remove(slots[n] as number);
    await new Promise((r) => setTimeout(r, 60));
    expect(expired).toEqual(Array.from({ length: 1500 }, (_, i) => i * 2 + 1));
    expect(queue.length).toBe(0);
  });

  it('arms again for items pushed while it expires others (a retry after a timeout)', async () => {
    const expired: string[] = [];
    const queue: DeadlineQueue<{ deadline: number; name: string }> = new DeadlineQueue((item) => {
      expired.push(item.name);
      if (item.name === 'first') queue.push({ deadline: performance.now() + 10, name: 'retry' });
    });
    queue.push({ deadline: performance.now() + 10, name: 'first' });
    await new Promise((r) => setTimeout(r, 60));
    expect(expired).toEqual(['first', 'retry']);
  });

  it('clear() drops everything and its timer', async () => {
    const expired: number[] = [];
    const queue = new DeadlineQueue<{ deadline: number }>(() => expired.push(1));
    queue.push({ deadline: performance.now() + 5 });
    queue.clear();
    await new Promise((r) => setTimeout(r, 30));
    expect(expired).toEqual([]);
  });
});
