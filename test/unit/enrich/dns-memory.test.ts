import { describe, expect, it } from 'vitest';
import { createDnsMemory } from '../../../src/enrich/dns-memory.js';
import { Flow } from '../../../src/flow/flow.js';
import { ipLiteralDestination } from '../../../src/scoring/scorers.js';

function memory(now: { t: number }, size = 100) {
  return createDnsMemory({ maxAddresses: size, maxClientAddresses: size, ttlMs: 60_000, now: () => now.t });
}

function connectTo(ip: string, client = '192.0.2.10', authority = `${ip}:443`): Flow {
  const flow = new Flow('connect', false);
  flow.set('source.ip', client);
  flow.set('destination.ip', ip);
  flow.set('destination.port', 443);
  flow.set('http.request.method', 'CONNECT');
  flow.set('url.original', authority);
  // As the listener does from the parsed target: the client named an address.
  flow.set('egress.destination.ip_literal', true);
  return flow;
}

describe('createDnsMemory', () => {
  it('remembers A/AAAA answers as address → names, most recent first, and which client was given them', () => {
    const m = memory({ t: 0 });
    m.rememberAnswers('192.0.2.10', 'www.example.com', [
      { name: 'www.example.com', type: 'CNAME', ttl: 60, data: 'edge.cdn.example' },
      { name: 'edge.cdn.example', type: 'A', ttl: 20, data: '203.0.113.5' },
      { name: 'edge.cdn.example', type: 'AAAA', ttl: 20, data: '2001:db8::5' },
    ]);
    m.rememberAnswers('192.0.2.11', 'static.example.com', [{ name: 'static.example.com', type: 'A', ttl: 20, data: '203.0.113.5' }]);
    expect(m.namesFor('203.0.113.5')).toEqual(['static.example.com', 'www.example.com']);
    expect(m.namesFor('2001:db8::5')).toEqual(['www.example.com']);
    expect(m.namesFor('edge.cdn.example')).toBeUndefined();
    expect(m.wasGiven('192.0.2.10', '203.0.113.5')).toBe(true);
    expect(m.wasGiven('192.0.2.12', '203.0.113.5')).toBe(false);
  });

  it('forgets after the TTL (fake clock), counted from the last answer', () => {
    const now = { t: 0 };
    const m = memory(now);
    m.rememberAnswers('c', 'a.example', [{ name: 'a.example', type: 'A', ttl: 1, data: '198.51.100.1' }]);
    now.t = 50_000;
    m.rememberAnswers('c', 'a.example', [{ name: 'a.example', type: 'A', ttl: 1, data: '198.51.100.1' }]);
    now.t = 100_000;
    expect(m.namesFor('198.51.100.1')).toEqual(['a.example']);
    expect(m.wasGiven('c', '198.51.100.1')).toBe(true);
    now.t = 110_001;
    expect(m.namesFor('198.51.100.1')).toBeUndefined();
    expect(m.wasGiven('c', '198.51.100.1')).toBe(false);
  });

  it('is bounded: entries beyond the size are evicted, names per address capped', () => {
    const m = memory({ t: 0 }, 10);
    for (let i = 0; i < 100; i++) m.rememberAnswers('c', `n${i}.example`, [{ name: `n${i}.example`, type: 'A', ttl: 60, data: `10.0.0.${i}` }]);
    expect(m.sizes()).toEqual({ addresses: 10, clientAddresses: 10 });
    for (let i = 0; i < 20; i++) m.rememberResolved(`cdn${i}.example`, [{ address: '10.9.9.9' }]);
    expect(m.namesFor('10.9.9.9')).toHaveLength(8);
    expect(m.namesFor('10.9.9.9')?.[0]).toBe('cdn19.example');
  });

  it('the enricher names a bare-IP destination and says whether this client was given it', () => {
    const m = memory({ t: 0 });
    m.rememberAnswers('192.0.2.10', 'api.example.com', [{ name: 'api.example.com', type: 'A', ttl: 60, data: '203.0.113.9' }]);
    const known = connectTo('203.0.113.9');
    void m.enricher.enrich(known);
    expect(known.get('destination.domain')).toBe('api.example.com');
    expect(known.get('egress.destination.resolved_before')).toBe(true);
    expect(known.get('url.original')).toBe('203.0.113.9:443');

    const otherClient = connectTo('203.0.113.9', '192.0.2.77');
    void m.enricher.enrich(otherClient);
    expect(otherClient.get('destination.domain')).toBe('api.example.com');
    expect(otherClient.get('egress.destination.resolved_before')).toBe(false);

    const never = connectTo('198.51.100.200');
    void m.enricher.enrich(never);
    expect(never.get('destination.domain')).toBeUndefined();
    expect(never.get('egress.destination.resolved_before')).toBe(false);
  });

  it('leaves resolved_before unset when clients do not use the forwarder (dns.listen null)', () => {
    const m = createDnsMemory({ maxAddresses: 10, maxClientAddresses: 10, ttlMs: 60_000, clientAnswers: false });
    m.rememberResolved('api.example.com', [{ address: '203.0.113.9' }]);
    const flow = connectTo('203.0.113.9');
    void m.enricher.enrich(flow);
    expect(flow.get('destination.domain')).toBe('api.example.com');
    expect(flow.get('egress.destination.resolved_before')).toBeUndefined();
  });

  it('leaves named destinations alone', () => {
    const m = memory({ t: 0 });
    const flow = new Flow('connect', false);
    flow.set('destination.domain', 'example.com');
    void m.enricher.enrich(flow);
    expect(flow.get('egress.destination.resolved_before')).toBeUndefined();
  });

  it('a remembered name does not hide that the client asked for a bare IP (ip-literal scorer)', () => {
    const m = memory({ t: 0 });
    m.rememberAnswers('192.0.2.10', 'api.example.com', [{ name: 'api.example.com', type: 'A', ttl: 60, data: '203.0.113.9' }]);
    const flow = connectTo('203.0.113.9');
    void m.enricher.enrich(flow);
    expect(ipLiteralDestination.score(flow)?.signal).toBe('ip_literal');
    const named = new Flow('connect', false);
    named.set('destination.domain', 'api.example.com');
    named.set('destination.ip', '203.0.113.9');
    named.set('http.request.method', 'CONNECT');
    named.set('url.original', 'api.example.com:443');
    named.set('egress.destination.ip_literal', false);
    expect(ipLiteralDestination.score(named)).toBeNull();
    const v6 = connectTo('2001:db8::1', '192.0.2.10', '[2001:db8::1]:443');
    expect(ipLiteralDestination.score(v6)?.signal).toBe('ip_literal');
  });
});
