import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EgressError } from '../../../src/errors.js';
import type { DestinationResolver, ResolvedAddress, ResolverOptions } from '../../../src/net/resolver.js';
import { createResolver } from '../../../src/net/resolver.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import type { DnsRecords, DnsServerOptions, TestDnsServer } from '../../helpers/dns-server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(
  records: DnsRecords,
  serverOpts: DnsServerOptions = {},
  resolverOpts: Partial<ResolverOptions> = {},
): Promise<{ dns: TestDnsServer; resolver: DestinationResolver }> {
  const dns = await startDnsServer(records, serverOpts);
  cleanups.push(() => dns.close());
  const resolver = createResolver({
    servers: [dns.server],
    timeoutMs: 500,
    cacheSize: 100,
    maxTtlMs: 60_000,
    tries: 1,
    ...resolverOpts,
  });
  cleanups.push(() => resolver.close());
  return { dns, resolver };
}

async function expectResolveFailed(promise: Promise<unknown>, message: string | RegExp): Promise<EgressError> {
  const err = await promise.then(
    () => {
      throw new Error('expected RESOLVE_FAILED, got an answer');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EgressError);
  expect((err as EgressError).code).toBe('RESOLVE_FAILED');
  if (typeof message === 'string') expect((err as EgressError).message).toBe(message);
  else expect((err as EgressError).message).toMatch(message);
  return err as EgressError;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('createResolver', () => {
  it('queries A and AAAA and returns IPv4 first, with the record TTL', async () => {
    const { dns, resolver } = await setUp({
      'dual.test': { A: ['192.0.2.1', '192.0.2.2'], AAAA: ['2001:db8::1'], ttl: 30 },
    });
    const answer = await resolver.resolve('dual.test');
    expect(answer.map((a) => [a.address, a.family])).toEqual([
      ['192.0.2.1', 4],
      ['192.0.2.2', 4],
      ['2001:db8::1', 6],
    ]);
    // The TTL counts down from the moment of the answer: under load a few milliseconds may have passed.
    for (const a of answer) {
      expect(a.ttlMs).toBeGreaterThan(29_000);
      expect(a.ttlMs).toBeLessThanOrEqual(30_000);
    }
    expect(dns.queries.map((q) => q.type).sort()).toEqual(['A', 'AAAA']);
  });

  it('normalises the name before asking and caching (case, trailing dot)', async () => {
    const { dns, resolver } = await setUp({ 'case.test': { A: ['192.0.2.3'] } });
    await resolver.resolve('CASE.Test.');
    await resolver.resolve('case.test');
    expect(dns.queries).toHaveLength(2); // one A + one AAAA, then a cache hit
    expect(dns.queries.every((q) => q.name.toLowerCase() === 'case.test')).toBe(true);
  });

  it('answers a second call from the cache without a query, with the remaining TTL', async () => {
    const { dns, resolver } = await setUp({ 'cached.test': { A: ['192.0.2.4'], ttl: 60 } });
    await resolver.resolve('cached.test');
    const sent = dns.queries.length;
    await sleep(30);
    const again = await resolver.resolve('cached.test');
    expect(dns.queries.length).toBe(sent);
    expect(again[0]?.address).toBe('192.0.2.4');
    expect(again[0]?.ttlMs).toBeLessThan(60_000);
    expect(again[0]?.ttlMs).toBeGreaterThan(59_000);
  });

  it('caps the cache time at maxTtlMs, then asks again', async () => {
    const { dns, resolver } = await setUp({ 'capped.test': { A: ['192.0.2.5'], ttl: 3600 } }, {}, { maxTtlMs: 100 });
    const first = await resolver.resolve('capped.test');
    expect(first[0]?.ttlMs).toBeLessThanOrEqual(100); // capped (and counting down from the answer)
    expect(first[0]?.ttlMs).toBeGreaterThan(50);
    const sent = dns.queries.length;
    await resolver.resolve('capped.test');
    expect(dns.queries.length).toBe(sent); // still cached
    await sleep(150);
    await resolver.resolve('capped.test');
    expect(dns.queries.length).toBe(sent * 2); // expired: asked again
  });

  it('does not cache a TTL of 0', async () => {
    const { dns, resolver } = await setUp({ 'zero.test': { A: ['192.0.2.6'], ttl: 0 } });
    await resolver.resolve('zero.test');
    await resolver.resolve('zero.test');
    expect(dns.queries.filter((q) => q.type === 'A')).toHaveLength(2);
  });

  it('reports NXDOMAIN and caches it for the negative TTL', async () => {
    const { dns, resolver } = await setUp({}, {}, { negativeTtlMs: 100 });
    await expectResolveFailed(resolver.resolve('nx.test'), 'could not resolve "nx.test": NXDOMAIN');
    const sent = dns.queries.length;
    expect(sent).toBeGreaterThan(0);
    await expectResolveFailed(resolver.resolve('nx.test'), 'could not resolve "nx.test": NXDOMAIN');
    expect(dns.queries.length).toBe(sent); // negative answer came from the cache
    await sleep(150);
    await expectResolveFailed(resolver.resolve('nx.test'), /NXDOMAIN/);
    expect(dns.queries.length).toBe(sent * 2);
  });

  it('reports a name with no A or AAAA records', async () => {
    const { resolver } = await setUp({ 'empty.test': {} });
    await expectResolveFailed(resolver.resolve('empty.test'), 'could not resolve "empty.test": no A or AAAA records');
  });

  it('returns the IPv4 answer of an IPv4-only name', async () => {
    const { resolver } = await setUp({ 'v4only.test': { A: ['192.0.2.7'] } });
    const v4only = await resolver.resolve('v4only.test');
    expect(v4only).toMatchObject([{ address: '192.0.2.7', family: 4 }]);
    expect(v4only).toHaveLength(1);
    expect(v4only[0]?.ttlMs).toBeGreaterThan(59_000);
  });

  it('reports a timeout when the server does not answer, within a bounded wait', async () => {
    const { dns, resolver } = await setUp({ 'slow.test': { A: ['192.0.2.8'] } }, { drop: true }, { timeoutMs: 200 });
    const started = Date.now();
    await expectResolveFailed(resolver.resolve('slow.test'), /^could not resolve "slow\.test": timeout \(no answer from 127\.0\.0\.1:\d+\)$/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(dns.queries.length).toBeGreaterThan(0);
  });

  it('does not cache a timeout', async () => {
    const { dns, resolver } = await setUp({ 'slow2.test': { A: ['192.0.2.9'] } }, { drop: true }, { timeoutMs: 100 });
    await expectResolveFailed(resolver.resolve('slow2.test'), /timeout/);
    const sent = dns.queries.length;
    await expectResolveFailed(resolver.resolve('slow2.test'), /timeout/);
    expect(dns.queries.length).toBeGreaterThan(sent);
  });

  it('reports SERVFAIL', async () => {
    const { resolver } = await setUp({}, { servfail: true });
    await expectResolveFailed(resolver.resolve('broken.test'), /^could not resolve "broken\.test": SERVFAIL from /);
  });

  it('coalesces concurrent lookups of one name into one query per type', async () => {
    const { dns, resolver } = await setUp({ 'busy.test': { A: ['192.0.2.10'] } }, { delayMs: 50 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => resolver.resolve('busy.test')));
    expect(dns.queries).toHaveLength(2);
    for (const a of answers) expect(a[0]?.address).toBe('192.0.2.10');
    // Each caller gets its own array: one caller's mutation cannot reach another.
    expect(answers[0]).not.toBe(answers[1]);
  });

  it('coalesces concurrent failures too', async () => {
    const { dns, resolver } = await setUp({}, { delayMs: 50 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => resolver.resolve('gone.test')));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(dns.queries).toHaveLength(2);
  });

  it('returns IP literals without a query, in canonical form', async () => {
    const { dns, resolver } = await setUp({});
    expect(await resolver.resolve('192.0.2.11')).toEqual([{ address: '192.0.2.11', family: 4, ttlMs: 60_000 }]);
    expect(await resolver.resolve('0x7f.1')).toEqual([{ address: '127.0.0.1', family: 4, ttlMs: 60_000 }]);
    expect(await resolver.resolve('2001:DB8::1')).toEqual([{ address: '2001:db8::1', family: 6, ttlMs: 60_000 }]);
    expect(await resolver.resolve('[::1]')).toEqual([{ address: '::1', family: 6, ttlMs: 60_000 }]);
    expect(dns.queries).toHaveLength(0);
  });

  it('answers localhost and *.localhost with loopback without a query (RFC 6761 §6.3)', async () => {
    const { dns, resolver } = await setUp({ localhost: { A: ['192.0.2.66'] } });
    for (const name of ['localhost', 'LOCALHOST.', 'app.localhost']) {
      expect((await resolver.resolve(name)).map((a) => a.address)).toEqual(['127.0.0.1', '::1']);
    }
    expect(dns.queries).toHaveLength(0);
  });

  it('refuses an invalid name with BAD_TARGET and sends nothing', async () => {
    const { dns, resolver } = await setUp({});
    await expect(resolver.resolve('bad name')).rejects.toMatchObject({ code: 'BAD_TARGET' });
    expect(dns.queries).toHaveLength(0);
  });

  it('feeds fresh answers to onAnswer, not cache hits, and survives a throwing hook', async () => {
    const seen: Array<[string, readonly ResolvedAddress[]]> = [];
    const { resolver } = await setUp(
      { 'hook.test': { A: ['192.0.2.12'], AAAA: ['2001:db8::12'] } },
      {},
      {
        onAnswer: (host, addresses) => {
          seen.push([host, addresses]);
          throw new Error('observer bug');
        },
      },
    );
    const answer = await resolver.resolve('Hook.test');
    await resolver.resolve('hook.test');
    expect(answer.map((a) => a.address)).toEqual(['192.0.2.12', '2001:db8::12']);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.[0]).toBe('hook.test');
    expect(seen[0]?.[1].map((a) => a.address)).toEqual(['192.0.2.12', '2001:db8::12']);
  });

  it('keeps at most cacheSize names', async () => {
    const { dns, resolver } = await setUp(
      { 'one.test': { A: ['192.0.2.13'] }, 'two.test': { A: ['192.0.2.14'] } },
      {},
      { cacheSize: 1 },
    );
    await resolver.resolve('one.test');
    await resolver.resolve('two.test'); // evicts one.test
    const sent = dns.queries.length;
    await resolver.resolve('one.test');
    expect(dns.queries.length).toBe(sent + 2);
  });

  it('rejects lookups after close()', async () => {
    const { resolver } = await setUp({ 'late.test': { A: ['192.0.2.15'] } });
    resolver.close();
    await expectResolveFailed(resolver.resolve('late.test'), /the resolver is closed/);
  });

  it('rejects an in-flight lookup when closed', async () => {
    const { resolver } = await setUp({ 'inflight.test': { A: ['192.0.2.16'] } }, { delayMs: 500 });
    const pending = resolver.resolve('inflight.test');
    await sleep(20);
    resolver.close();
    await expectResolveFailed(pending, /cancelled/);
  });

  it('refuses a malformed server with CONFIG_INVALID at creation', () => {
    expect(() => createResolver({ servers: ['not-an-ip'], timeoutMs: 100, cacheSize: 1, maxTtlMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('createResolver with no servers configured', () => {
  async function writeResolvConf(text: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'egress-resolv-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'resolv.conf');
    await writeFile(path, text);
    return path;
  }

  it('takes the nameservers of resolv.conf, skipping comments and zoned addresses', async () => {
    const path = await writeResolvConf(
      '# comment\nsearch corp.example\nnameserver 127.0.0.53\n; nameserver 127.0.0.9\nnameserver fe80::1%eth0\nnameserver ::1\noptions ndots:2\n',
    );
    const resolver = createResolver({ servers: [], timeoutMs: 100, cacheSize: 1, maxTtlMs: 1000, resolvConfPath: path });
    cleanups.push(() => resolver.close());
    expect(await resolver.servers()).toEqual(['127.0.0.53', '::1']);
  });

  it('falls back to the local machine when resolv.conf names none (resolv.conf(5))', async () => {
    const path = await writeResolvConf('search example\n');
    const resolver = createResolver({ servers: [], timeoutMs: 100, cacheSize: 1, maxTtlMs: 1000, resolvConfPath: path });
    cleanups.push(() => resolver.close());
    expect(await resolver.servers()).toEqual(['127.0.0.1']);
  });

  it('uses the configured servers as given', async () => {
    const resolver = createResolver({
      servers: ['127.0.0.1:5353', '[::1]:5353'],
      timeoutMs: 100,
      cacheSize: 1,
      maxTtlMs: 1000,
    });
    cleanups.push(() => resolver.close());
    expect(await resolver.servers()).toEqual(['127.0.0.1:5353', '[::1]:5353']);
  });
});

describe('test DNS server over TCP', () => {
  it('answers a length-prefixed query on the same port', async () => {
    const { connect } = await import('node:net');
    const dnsPacket = (await import('dns-packet')).default;
    const dns = await startDnsServer({ 'tcp.test': { A: ['192.0.2.17'] } });
    cleanups.push(() => dns.close());
    const query = dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: 'tcp.test' }] });
    const framed = Buffer.concat([Buffer.from([query.length >> 8, query.length & 255]), query]);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect(dns.port, '127.0.0.1', () => socket.write(framed));
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          socket.destroy();
          resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        }
      });
      socket.on('error', reject);
    });
    const decoded = dnsPacket.decode(reply);
    expect(decoded.id).toBe(7);
    expect(decoded.answers?.[0]).toMatchObject({ type: 'A', data: '192.0.2.17' });
  });
});
