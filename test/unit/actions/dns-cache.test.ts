import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CACHED_MESSAGE, createDnsCache, dnsCacheKey, type DnsCache, type DnsCacheOptions, type DnsCacheResult } from '../../../src/actions/dns-cache.js';
import type { DnsForwarder, ForwardResult } from '../../../src/actions/forward-dns.js';
import { DnsListener } from '../../../src/listeners/dns.js';
import { Pipeline } from '../../../src/flow/pipeline.js';
import type { Flow } from '../../../src/flow/flow.js';
import { noHints } from '../../../src/enrich/hints.js';
import { createDestinationGuard, DEFAULT_INTERNAL_CIDRS } from '../../../src/net/address-class.js';
import { createMetrics } from '../../../src/observe/metrics.js';
import { silentLogger } from '../../../src/observe/logger.js';
import { createPolicyView } from '../../../src/policy/evaluate.js';
import { createScoring } from '../../../src/scoring/score.js';
import { decodeDnsQuery, inspectDnsMessage, type DnsQuery } from '../../../src/parsers/dns-message.js';
import { compileYaml } from '../policy/policy-kit.js';

const RD = dnsPacket.RECURSION_DESIRED;
const RA = dnsPacket.RECURSION_AVAILABLE;

interface QueryOptions {
  id?: number;
  edns?: boolean;
  dnssecOk?: boolean;
  cd?: boolean;
  rd?: boolean;
  ecs?: boolean;
  udpSize?: number;
}

function query(name: string, type: dnsPacket.RecordType = 'A', o: QueryOptions = {}): Buffer {
  const options: dnsPacket.PacketOpt[] = o.ecs === true ? [{ code: 8, ip: '192.0.2.0', sourcePrefixLength: 24 }] : [];
  return dnsPacket.encode({
    type: 'query',
    id: o.id ?? 0x1111,
    flags: (o.rd === false ? 0 : RD) | (o.cd === true ? dnsPacket.CHECKING_DISABLED : 0),
    questions: [{ type, name, class: 'IN' }],
    additionals:
      o.edns === true || o.dnssecOk === true || o.ecs === true
        ? [{ type: 'OPT', name: '.', udpPayloadSize: o.udpSize ?? 1232, extendedRcode: 0, ednsVersion: 0, flags: o.dnssecOk === true ? dnsPacket.DNSSEC_OK : 0, flag_do: o.dnssecOk === true, options }]
        : [],
  });
}

interface AnswerOptions {
  rcode?: number;
  flags?: number;
  answers?: dnsPacket.Answer[];
  authorities?: dnsPacket.Answer[];
  additionals?: dnsPacket.Answer[];
  /** The question as the upstream echoes it (default: the query's). */
  name?: string;
}

/** The upstream's answer to `raw`: its question echoed as sent, the given records. */
function answer(raw: Buffer, o: AnswerOptions = {}): Buffer {
  const q = dnsPacket.decode(raw);
  const question = q.questions?.[0];
  if (question === undefined) throw new Error('no question');
  return dnsPacket.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: RD | RA | (o.flags ?? 0) | (o.rcode ?? 0),
    questions: [{ ...question, name: o.name ?? question.name }],
    answers: o.answers ?? [],
    authorities: o.authorities ?? [],
    additionals: o.additionals ?? [],
  });
}

function soa(zone: string, ttl: number, minimum: number): dnsPacket.Answer {
  return { type: 'SOA', name: zone, ttl, data: { mname: `ns.${zone}`, rname: `host.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum } };
}

const A = (name: string, ttl: number, data = '192.0.2.1'): dnsPacket.Answer => ({ type: 'A', name, ttl, data });

/** A fake clock: starts at 1000 ms, moved by hand. */
function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function make(extra: Partial<DnsCacheOptions> = {}) {
  const c = clock();
  const results: DnsCacheResult[] = [];
  const cache = createDnsCache({ size: 100, maxTtlMs: 300_000, negativeTtlMs: 60_000, now: c.now, onLookup: (r) => results.push(r), ...extra });
  if (cache === null) throw new Error('expected a cache');
  return { cache, clock: c, results };
}

/** Stores the upstream answer `resp` to `raw` (as the listener does after forwarding). */
function store(cache: DnsCache, raw: Buffer, resp: Buffer): boolean {
  return cache.store(decodeDnsQuery(raw), resp, inspectDnsMessage(resp, { withAnswers: true }));
}

function lookup(cache: DnsCache, raw: Buffer) {
  return cache.lookup(raw, decodeDnsQuery(raw));
}

function ttlsOf(msg: Buffer): number[] {
  const p = dnsPacket.decode(msg);
  return [...(p.answers ?? []), ...(p.authorities ?? []), ...(p.additionals ?? [])].filter((r) => r.type !== 'OPT').map((r) => (r as { ttl?: number }).ttl ?? -1);
}

describe('createDnsCache: what is kept, and for how long', () => {
  it('is off (null) with size 0', () => {
    expect(createDnsCache({ size: 0, maxTtlMs: 1000, negativeTtlMs: 1000 })).toBeNull();
  });

  it('serves a kept answer with the client ID and the client spelling of the question (0x20)', () => {
    const { cache, results } = make();
    const first = query('www.example.test', 'A', { id: 1 });
    expect(store(cache, first, answer(first, { answers: [A('www.example.test', 300)] }))).toBe(true);
    const again = query('wWw.ExAmPlE.test', 'A', { id: 0xbeef });
    const hit = lookup(cache, again);
    expect(hit).not.toBeNull();
    const msg = dnsPacket.decode(hit?.response ?? Buffer.alloc(0));
    expect(msg.id).toBe(0xbeef);
    expect(msg.questions).toEqual([{ name: 'wWw.ExAmPlE.test', type: 'A', class: 'IN' }]);
    expect(msg.answers).toMatchObject([{ type: 'A', data: '192.0.2.1', ttl: 300 }]);
    expect(hit?.view.answers).toEqual([{ name: 'www.example.test', type: 'A', ttl: 300, data: '192.0.2.1' }]);
    expect(results).toEqual(['hit']);
    expect(cache.stats()).toEqual({ hits: 1, misses: 0 });
  });

  it('counts a miss, and never returns one client the bytes it returned another (copies)', () => {
    const { cache, results } = make();
    const q = query('copy.test', 'A', { id: 5 });
    expect(lookup(cache, q)).toBeNull();
    store(cache, q, answer(q, { answers: [A('copy.test', 60)] }));
    const one = lookup(cache, query('copy.test', 'A', { id: 6 }));
    const two = lookup(cache, query('copy.test', 'A', { id: 7 }));
    expect(one?.response.readUInt16BE(0)).toBe(6);
    expect(two?.response.readUInt16BE(0)).toBe(7);
    expect(results).toEqual(['miss', 'hit', 'hit']);
  });

  it('keeps an answer for its smallest TTL, then drops it', () => {
    const { cache, clock: c } = make();
    const q = query('ttl.test');
    store(cache, q, answer(q, { answers: [A('ttl.test', 300), A('ttl.test', 30, '192.0.2.2')], additionals: [A('ns.ttl.test', 100)] }));
    c.advance(29_999);
    expect(lookup(cache, q)).not.toBeNull();
    c.advance(1);
    expect(lookup(cache, q)).toBeNull();
    expect(cache.size).toBe(0);
  });

  it('keeps an answer no longer than max_ttl, whatever its TTL', () => {
    const { cache, clock: c } = make({ maxTtlMs: 5_000 });
    const q = query('long.test');
    store(cache, q, answer(q, { answers: [A('long.test', 86_400)] }));
    c.advance(4_999);
    expect(lookup(cache, q)).not.toBeNull();
    c.advance(1);
    expect(lookup(cache, q)).toBeNull();
  });

  it('lowers every TTL (answers, authority, additional; not the OPT) by the whole seconds spent in the cache', () => {
    const { cache, clock: c } = make();
    const q = query('age.test', 'A', { edns: true });
    store(
      cache,
      q,
      answer(q, {
        answers: [A('age.test', 300), A('age.test', 120, '192.0.2.9')],
        authorities: [{ type: 'NS', name: 'age.test', ttl: 900, data: 'ns.age.test' }],
        additionals: [A('ns.age.test', 600), { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: dnsPacket.DNSSEC_OK, flag_do: true, options: [] }],
      }),
    );
    c.advance(999);
    expect(ttlsOf(lookup(cache, q)?.response ?? Buffer.alloc(0))).toEqual([300, 120, 900, 600]);
    c.advance(9_600); // 10.599 s in the cache: 10 whole seconds
    const hit = lookup(cache, q);
    const response = hit?.response ?? Buffer.alloc(0);
    expect(ttlsOf(response)).toEqual([290, 110, 890, 590]);
    expect(hit?.view.answers.map((a) => a.ttl)).toEqual([290, 110]);
    // The OPT's TTL field is its flags: DO stays set.
    const opt = dnsPacket.decode(response).additionals?.find((r) => r.type === 'OPT') as { flag_do?: boolean } | undefined;
    expect(opt?.flag_do).toBe(true);
    // Hits within the same second share the aged view; the next second makes a new one.
    expect(lookup(cache, q)?.view).toBe(hit?.view);
    c.advance(1_000);
    expect(lookup(cache, q)?.view.answers.map((a) => a.ttl)).toEqual([289, 109]);
  });

  it('keeps NXDOMAIN for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), at most negative_ttl', () => {
    const { cache, clock: c } = make({ negativeTtlMs: 60_000 });
    const q = query('gone.nx.test');
    const nx = answer(q, { rcode: 3, authorities: [soa('nx.test', 900, 20)] });
    expect(store(cache, q, nx)).toBe(true);
    c.advance(19_999);
    const hit = lookup(cache, q);
    expect(dnsPacket.decode(hit?.response ?? Buffer.alloc(0))).toMatchObject({ rcode: 'NXDOMAIN', authorities: [{ type: 'SOA', ttl: 881 }] });
    c.advance(1);
    expect(lookup(cache, q)).toBeNull();

    const capped = make({ negativeTtlMs: 5_000 });
    expect(store(capped.cache, q, answer(q, { rcode: 3, authorities: [soa('nx.test', 3600, 3600)] }))).toBe(true);
    capped.clock.advance(5_000);
    expect(lookup(capped.cache, q)).toBeNull();
  });

  it('keeps NODATA (NOERROR, no answers, an SOA) as a negative answer too', () => {
    const { cache, clock: c } = make({ negativeTtlMs: 60_000 });
    const q = query('v4only.test', 'AAAA');
    expect(store(cache, q, answer(q, { authorities: [soa('v4only.test', 30, 300)] }))).toBe(true);
    c.advance(29_000);
    expect(lookup(cache, q)).not.toBeNull();
    c.advance(1_000);
    expect(lookup(cache, q)).toBeNull();
  });

  it.each<[string, (q: Buffer) => Buffer]>([
    ['SERVFAIL', (q) => answer(q, { rcode: 2 })],
    ['REFUSED', (q) => answer(q, { rcode: 5 })],
    ['FORMERR', (q) => answer(q, { rcode: 1, answers: [A('never.test', 300)] })],
    ['a truncated answer (TC)', (q) => answer(q, { flags: dnsPacket.TRUNCATED_RESPONSE, answers: [A('never.test', 300)] })],
    ['a TTL of 0', (q) => answer(q, { answers: [A('never.test', 300), A('never.test', 0, '192.0.2.3')] })],
    ['NXDOMAIN without an SOA (RFC 2308 §5)', (q) => answer(q, { rcode: 3 })],
    ['NODATA without an SOA', (q) => answer(q, {})],
    ['an answer to another question', (q) => answer(q, { name: 'other.test', answers: [A('other.test', 300)] })],
    ['a SIG(0)-signed answer (RFC 2931)', (q) => withRecord(answer(q, { answers: [A('never.test', 300)] }), 24, 300)],
    ['a TSIG-signed answer (RFC 8945)', (q) => withRecord(answer(q, { answers: [A('never.test', 300)] }), 250, 300)],
    ['bytes that are no message', () => Buffer.from([1, 2, 3, 4, 5])],
  ])('never keeps %s', (_intent, make1) => {
    const { cache } = make();
    const q = query('never.test');
    const bytes = make1(q);
    let view;
    try {
      view = inspectDnsMessage(bytes, { withAnswers: true });
    } catch {
      view = inspectDnsMessage(answer(q), { withAnswers: true });
    }
    expect(cache.store(decodeDnsQuery(q), bytes, view)).toBe(false);
    expect(lookup(cache, q)).toBeNull();
  });

  it('never keeps a negative answer with negative_ttl 0, and never one larger than 16 KiB', () => {
    const { cache } = make({ negativeTtlMs: 0 });
    const q = query('gone.nx.test');
    expect(store(cache, q, answer(q, { rcode: 3, authorities: [soa('nx.test', 900, 300)] }))).toBe(false);
    const big = query('big.test', 'TXT');
    const texts = Array.from({ length: 80 }, (_, i) => ({ type: 'TXT' as const, name: 'big.test', ttl: 300, data: 'x'.repeat(250) + String(i) }));
    const resp = answer(big, { answers: texts });
    expect(resp.length).toBeGreaterThan(MAX_CACHED_MESSAGE);
    expect(store(cache, big, resp)).toBe(false);
  });

  it('lets a query with an EDNS Client Subnet option bypass the cache (RFC 7871), uncounted', () => {
    const { cache, results } = make();
    const plain = query('ecs.test', 'A', { edns: true });
    store(cache, plain, answer(plain, { answers: [A('ecs.test', 300)] }));
    const withEcs = query('ecs.test', 'A', { ecs: true });
    expect(dnsCacheKey(decodeDnsQuery(withEcs))).toBeNull();
    expect(lookup(cache, withEcs)).toBeNull();
    expect(store(cache, withEcs, answer(withEcs, { answers: [A('ecs.test', 300, '198.51.100.1')] }))).toBe(false);
    expect(results).toEqual([]);
    expect(lookup(cache, plain)).not.toBeNull();
  });

  it('keys on the name without case, the type, the class, RD, CD, EDNS and DO', () => {
    const { cache } = make();
    const base = query('key.test', 'A', { edns: true });
    store(cache, base, answer(base, { answers: [A('key.test', 300)] }));
    expect(lookup(cache, query('KEY.test', 'A', { edns: true, id: 9 }))).not.toBeNull();
    for (const other of [
      query('key.test', 'AAAA', { edns: true }),
      query('key.test', 'A', {}),
      query('key.test', 'A', { dnssecOk: true }),
      query('key.test', 'A', { edns: true, cd: true }),
      query('key.test', 'A', { edns: true, rd: false }),
      query('other.key.test', 'A', { edns: true }),
    ]) {
      expect(lookup(cache, other)).toBeNull();
    }
  });

  it('drops the EDNS options of a kept answer (a cookie is one client’s), keeping the OPT and its DO bit', () => {
    const { cache } = make();
    const q = query('cookie.test', 'A', { dnssecOk: true });
    const resp = answer(q, {
      answers: [A('cookie.test', 300)],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: dnsPacket.DNSSEC_OK, flag_do: true, options: [{ code: 12, length: 16 }] }],
    });
    expect(store(cache, q, resp)).toBe(true);
    const hit = lookup(cache, q);
    const opt = dnsPacket.decode(hit?.response ?? Buffer.alloc(0)).additionals?.[0] as { type: string; flag_do: boolean; options: unknown[] } | undefined;
    expect(opt).toMatchObject({ type: 'OPT', flag_do: true, options: [] });
    expect(hit?.response.length).toBe(resp.length - 20);
  });

  it('does not keep options it cannot cut off: an OPT with options that is not the last record', () => {
    const { cache } = make();
    const q = query('optfirst.test', 'A', { edns: true });
    const resp = answer(q, {
      answers: [A('optfirst.test', 300)],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 12, length: 4 }] }, A('ns.optfirst.test', 300)],
    });
    expect(store(cache, q, resp)).toBe(false);
  });
});

describe('createDnsCache: bounded', () => {
  it('holds at most `size` answers, evicting the least recently used', () => {
    const { cache } = make({ size: 3 });
    const q = (n: number) => query(`n${n}.test`);
    for (let i = 0; i < 3; i++) store(cache, q(i), answer(q(i), { answers: [A(`n${i}.test`, 300)] }));
    expect(lookup(cache, q(0))).not.toBeNull(); // n0 is now the most recently used
    for (let i = 3; i < 5; i++) store(cache, q(i), answer(q(i), { answers: [A(`n${i}.test`, 300)] }));
    expect(cache.size).toBe(3);
    expect([0, 1, 2, 3, 4].map((i) => lookup(cache, q(i)) !== null)).toEqual([true, false, false, true, true]);
  });

  it('stays within its size under a stream of distinct names', () => {
    const { cache } = make({ size: 50 });
    for (let i = 0; i < 2_000; i++) {
      const raw = query(`s${i}.stream.test`);
      store(cache, raw, answer(raw, { answers: [A(`s${i}.stream.test`, 300)] }));
      expect(cache.size).toBeLessThanOrEqual(50);
    }
  });
});

/** `msg` with one more additional record of `type` (root owner, class ANY, 4 bytes of RDATA). */
function withRecord(msg: Buffer, type: number, ttl: number): Buffer {
  const rr = Buffer.alloc(15);
  rr[0] = 0;
  rr.writeUInt16BE(type, 1);
  rr.writeUInt16BE(255, 3);
  rr.writeUInt32BE(ttl, 5);
  rr.writeUInt16BE(4, 9);
  const out = Buffer.concat([msg, rr]);
  out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
  return out;
}

describe('createDnsCache: any bytes from upstream', () => {
  const q = query('fuzz.example.test', 'A', { id: 0x4242, edns: true });
  const parsed: DnsQuery = decodeDnsQuery(q);
  const seeds = [
    answer(q, { answers: [A('fuzz.example.test', 300), { type: 'CNAME', name: 'fuzz.example.test', ttl: 60, data: 'x.example.test' }] }),
    answer(q, { rcode: 3, authorities: [soa('example.test', 300, 60)] }),
    answer(q, {
      answers: [A('fuzz.example.test', 300)],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 12, length: 6 }] }],
    }),
  ];
  const fallbackView = inspectDnsMessage(seeds[0] as Buffer, { withAnswers: true });

  /** store never throws; whatever it keeps comes back as a readable message with the client's ID. */
  function check(bytes: Uint8Array): void {
    const { cache } = make();
    let view = fallbackView;
    try {
      view = inspectDnsMessage(bytes, { withAnswers: true });
    } catch {
      // the cache must cope with bytes whatever a caller says about them
    }
    const kept = cache.store(parsed, bytes, view);
    const hit = cache.lookup(q, parsed);
    expect(hit !== null).toBe(kept);
    if (hit !== null) {
      expect(() => inspectDnsMessage(hit.response)).not.toThrow();
      expect(hit.response.readUInt16BE(0)).toBe(0x4242);
    }
  }

  it('property: random bytes are refused or kept, never thrown on', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => check(bytes)), { numRuns: 2000 });
  });

  it('property: mutated real answers are refused or kept, never thrown on, and a kept one reads back', () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (seed, edits) => {
        const bytes = Buffer.from(seed);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        check(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- the cache inside the listener: after the policy, through the same record path ---------------------------

const ALLOW_ALL = 'version: 1\nrules:\n  - id: allow-all\n    when: { dns.question.name: { exists: true } }\n    action: allow\n';
const BLOCK_BAD = 'version: 1\nrules:\n  - id: block-bad\n    when: { dns.question.name: { endswith: bad.test } }\n    action: block\n  - id: allow-rest\n    when: { dns.question.name: { exists: true } }\n    action: allow\n';

describe('DnsListener with the cache', () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  async function listen(policy: { yaml: string }) {
    const forwarded: string[] = [];
    const records: Flow[] = [];
    const forwarder: DnsForwarder = {
      forward(raw) {
        const q = dnsPacket.decode(Buffer.from(raw));
        const name = q.questions?.[0]?.name ?? '';
        forwarded.push(name);
        const resp = answer(Buffer.from(raw), { answers: [A(name, 300, '192.0.2.77')] });
        const result: ForwardResult = { ok: true, response: resp, view: inspectDnsMessage(resp, { withAnswers: true }), transport: 'udp', server: 'fake' };
        return Promise.resolve(result);
      },
      close() {},
    };
    const c = clock();
    const cache = createDnsCache({ size: 10, maxTtlMs: 300_000, negativeTtlMs: 60_000, now: c.now });
    let compiled = { yaml: '', view: createPolicyView(compileYaml(ALLOW_ALL)) };
    const pipeline = new Pipeline({
      policy: () => {
        if (compiled.yaml !== policy.yaml) compiled = { yaml: policy.yaml, view: createPolicyView(compileYaml(policy.yaml)) };
        return compiled.view;
      },
      resolver: { resolve: () => Promise.resolve([]) },
      addresses: createDestinationGuard({ internal: DEFAULT_INTERNAL_CIDRS }),
      hints: noHints,
      hintWaitMs: 0,
      enrichers: [],
      scoring: createScoring({ extractors: [], scorers: [] }),
      observe: (flow) => records.push(flow),
    });
    const listener = new DnsListener(
      { host: '127.0.0.1', port: 0, isAllowedClient: () => true, sinkhole: null, sinkholeTtl: 60, tcpIdleMs: 1000, maxTcpConnections: 4, maxFlows: 100 },
      { pipeline, forwarder, metrics: createMetrics({ defaultMetrics: false }), logger: silentLogger(), memory: null, signals: null, cache },
    );
    const address = await listener.listen();
    stops.push(() => listener.close(0));
    return { port: address.port, forwarded, records, cache, clock: c };
  }

  function ask(port: number, raw: Buffer): Promise<dnsPacket.DecodedPacket> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      const timer = setTimeout(() => {
        s.close();
        reject(new Error('no answer'));
      }, 2000);
      s.on('message', (msg) => {
        clearTimeout(timer);
        s.close();
        resolve(dnsPacket.decode(msg));
      });
      s.send(raw, port, '127.0.0.1');
    });
  }

  it('answers the second query from the cache, with its ID and case, and records it like a forwarded one', async () => {
    const { port, forwarded, records, cache, clock: c } = await listen({ yaml: ALLOW_ALL });
    const first = await ask(port, query('www.cached.test', 'A', { id: 10 }));
    c.advance(2_000);
    const second = await ask(port, query('WWW.Cached.test', 'A', { id: 11 }));
    expect(forwarded).toEqual(['www.cached.test']);
    expect(first).toMatchObject({ id: 10, rcode: 'NOERROR', answers: [{ data: '192.0.2.77', ttl: 300 }] });
    expect(second).toMatchObject({ id: 11, rcode: 'NOERROR', questions: [{ name: 'WWW.Cached.test' }], answers: [{ data: '192.0.2.77', ttl: 298 }] });
    expect(cache?.stats()).toEqual({ hits: 1, misses: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect(records.map((f) => [f.get('dns.question.name'), f.get('dns.response_code'), f.get('dns.answers')])).toEqual([
      ['www.cached.test', 'NOERROR', [{ name: 'www.cached.test', type: 'A', ttl: 300, data: '192.0.2.77' }]],
      ['www.cached.test', 'NOERROR', [{ name: 'www.cached.test', type: 'A', ttl: 298, data: '192.0.2.77' }]],
    ]);
  });

  it('blocks a name the policy blocks even when its answer is cached', async () => {
    const policy = { yaml: ALLOW_ALL };
    const { port, forwarded, cache, records } = await listen(policy);
    expect((await ask(port, query('c2.bad.test'))).answers).toMatchObject([{ data: '192.0.2.77' }]);
    expect(cache?.size).toBe(1);
    policy.yaml = BLOCK_BAD; // the policy is reloaded; the answer is still in the cache
    const blocked = await ask(port, query('c2.bad.test', 'A', { id: 99 }));
    expect(blocked).toMatchObject({ id: 99, rcode: 'NXDOMAIN', answers: [] });
    expect(forwarded).toEqual(['c2.bad.test']);
    expect(cache?.stats()).toEqual({ hits: 0, misses: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect(records[1]?.decision).toMatchObject({ verdict: 'block', ruleId: 'block-bad' });
  });

  it('truncates a cached answer for a UDP client that cannot take its size, as a forwarded one', async () => {
    const { port, forwarded, cache } = await listen({ yaml: ALLOW_ALL });
    const name = `${'l'.repeat(60)}.${'m'.repeat(60)}.${'n'.repeat(60)}.${'o'.repeat(60)}.test`;
    await ask(port, query(name, 'A', { edns: true, udpSize: 4096 }));
    // The kept answer (~530 bytes) is over what this client takes (EDNS 512): a hit comes back TC, like a forward.
    const small = await ask(port, query(name, 'A', { id: 3, edns: true, udpSize: 512 }));
    expect(small).toMatchObject({ id: 3, flag_tc: true, answers: [] });
    expect(forwarded).toHaveLength(1);
    expect(cache?.stats().hits).toBe(1);
  });
});
