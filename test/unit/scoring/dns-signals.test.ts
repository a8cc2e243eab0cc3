import { describe, expect, it } from 'vitest';
import { Flow } from '../../../src/flow/flow.js';
import { createDnsSignals, dataLikeLabel, dgaFeatures, dgaName, longLabels, unresolvedDestination } from '../../../src/scoring/dns-signals.js';
import { scoreFlow } from '../../../src/scoring/score.js';
import { questionFacts, setQuestionFacts, shannonEntropy } from '../../../src/enrich/dns-question.js';
import { typeNumber } from '../../../src/parsers/dns-message.js';

function dnsFlow(name: string, type = 'A', client = '192.0.2.10'): Flow {
  const flow = new Flow('dns', false);
  flow.set('source.ip', client);
  setQuestionFacts(flow, questionFacts({ name, type: typeNumber(type) ?? 1, qclass: 1 }));
  return flow;
}

function signals(now: { t: number }, extra: Partial<Parameters<typeof createDnsSignals>[0]> = {}) {
  return createDnsSignals({ windowMs: 3_600_000, uniqueSubdomains: 100, burstWindowMs: 60_000, txtQueries: 5, nxdomainAnswers: 5, now: () => now.t, ...extra });
}

describe('question facts', () => {
  it.each([
    ['www.example.co.uk', { registeredDomain: 'example.co.uk', subdomain: 'www', domainLabel: 'example', labelCount: 4, longestLabel: 7 }],
    ['example.com', { registeredDomain: 'example.com', subdomain: '', labelCount: 2 }],
    ['a.b.user.github.io', { registeredDomain: 'user.github.io', subdomain: 'a.b' }],
    ['localhost', { registeredDomain: null, subdomain: '' }],
    ['com', { registeredDomain: null }],
    ['.', { registeredDomain: null, labelCount: 0, longestLabel: 0, entropy: 0 }],
  ])('%s', (name, expected) => {
    expect(questionFacts({ name, type: 1, qclass: 1 })).toMatchObject(expected);
  });

  it('entropy is measured on the name without its public suffix', () => {
    expect(questionFacts({ name: 'aaaa.com', type: 1, qclass: 1 }).entropy).toBe(0);
    expect(questionFacts({ name: 'ab.example.com', type: 1, qclass: 1 }).entropy).toBeCloseTo(shannonEntropy('abexample'), 3);
  });
});

describe('DGA-like names', () => {
  it.each(['wikipedia', 'stackoverflow', 'microsoftonline', 'facebook', 'googleapis', 'cloudflare', 'amazonaws', 'xn--mnchen-3ya', 'schwarzschild'])(
    'the dictionary-ish label %s raises nothing',
    (label) => {
      const f = dgaFeatures(label);
      expect(f === null || f.hits < 2, JSON.stringify(f)).toBe(true);
    },
  );

  it.each(['xkq3vz9plw7t', 'qxjvbzkwtpmr', 'a8f3k2m9x7q1z', 'vgrtkpxnwzhq', 'zq1x8w2c7v3b'])('the generated label %s hits two or more features', (label) => {
    expect(dgaFeatures(label)?.hits ?? 0).toBeGreaterThanOrEqual(2);
  });

  it('a DGA-looking name scores higher than a dictionary name, with a reason', () => {
    const dga = dnsFlow('xkq3vz9plw7t.com');
    const word = dnsFlow('wikipedia.org');
    scoreFlow(dga, [dgaName, longLabels]);
    scoreFlow(word, [dgaName, longLabels]);
    expect(dga.get('egress.score') ?? 0).toBeGreaterThan(word.get('egress.score') ?? 0);
    expect(dga.get('egress.reasons')?.[0]).toMatch(/^DGA-like name: "xkq3vz9plw7t" has high entropy/);
    expect(word.get('egress.reasons')).toEqual([]);
  });

  it('long labels are scored as a tunnelling sign', () => {
    const flow = dnsFlow(`${'k'.repeat(20)}${'0123456789abcdefghijklmnopqrstuv'}.t.example.com`);
    expect(longLabels.score(flow)?.reason).toMatch(/52-character label/);
  });
});

describe('counting signals', () => {
  it('many unique subdomains of one domain from one client raise the tunnelling signal with a reason', () => {
    const now = { t: 0 };
    const s = signals(now);
    let last: Flow | null = null;
    for (let i = 0; i < 150; i++) {
      last = dnsFlow(`c${i.toString(36)}x${(i * 7919).toString(16)}.t.tunnel.example`);
      s.enricher.enrich(last);
    }
    if (last === null) throw new Error('no flow');
    scoreFlow(last, s.scorers);
    const reason = last.get('egress.reasons')?.find((r) => r.includes('unique subdomains'));
    expect(reason).toMatch(/^about 1[45]\d unique subdomains of tunnel\.example from this client within 1 h \(DNS tunnelling threshold 100\) \(\+20 dns_tunnel\)$/);
    // Another client asking the same names is counted on its own.
    const other = dnsFlow('zzz.t.tunnel.example', 'A', '192.0.2.99');
    s.enricher.enrich(other);
    scoreFlow(other, s.scorers);
    expect(other.get('egress.reasons')?.some((r) => r.includes('unique subdomains'))).toBe(false);
  });

  it('the same subdomain asked again is not counted twice', () => {
    const s = signals({ t: 0 });
    let flow = dnsFlow('x.example.com');
    for (let i = 0; i < 500; i++) {
      flow = dnsFlow('same.example.com');
      s.enricher.enrich(flow);
    }
    scoreFlow(flow, s.scorers);
    expect(flow.get('egress.reasons')).toEqual([]);
  });

  it('the window resets the count (fake clock)', () => {
    const now = { t: 0 };
    const s = signals(now, { uniqueSubdomains: 3 });
    for (const sub of ['a', 'b', 'c']) s.enricher.enrich(dnsFlow(`${sub}.example.com`));
    now.t = 3_600_001;
    const flow = dnsFlow('d.example.com');
    s.enricher.enrich(flow);
    scoreFlow(flow, s.scorers);
    expect(flow.get('egress.reasons')).toEqual([]);
  });

  it('TXT/NULL/ANY volume and NXDOMAIN bursts per client', () => {
    const now = { t: 0 };
    const s = signals(now);
    let flow = dnsFlow('x.example.com');
    for (const type of ['TXT', 'TXT', 'NULL', 'ANY', 'TXT']) {
      flow = dnsFlow('x.example.com', type);
      s.enricher.enrich(flow);
    }
    for (let i = 0; i < 5; i++) s.observeAnswer('192.0.2.10', 'NXDOMAIN');
    s.observeAnswer('192.0.2.10', 'NOERROR');
    const next = dnsFlow('y.example.com');
    s.enricher.enrich(next);
    scoreFlow(flow, s.scorers);
    scoreFlow(next, s.scorers);
    expect(flow.get('egress.reasons')).toContain('5 TXT/NULL/ANY queries from this client within 1 min (threshold 5) (+15 dns_txt_burst)');
    expect(next.get('egress.reasons')?.some((r) => r.startsWith('5 NXDOMAIN answers to this client within 1 min'))).toBe(true);
    now.t = 61_000;
    const later = dnsFlow('z.example.com');
    s.enricher.enrich(later);
    scoreFlow(later, s.scorers);
    expect(later.get('egress.reasons')).toEqual([]);
  });

  it('stays bounded: clients and pairs beyond the caps are evicted', () => {
    const s = signals({ t: 0 }, { maxClients: 50, maxPairs: 20 });
    for (let i = 0; i < 1000; i++) s.enricher.enrich(dnsFlow(`a.d${i}.example`, 'A', `10.0.${i >> 8}.${i & 255}`));
    expect(s.sizes()).toEqual({ clients: 50, pairs: 20 });
  });

  it('resolved_before false adds a reason; true or absent adds none', () => {
    const flow = new Flow('connect', false);
    expect(unresolvedDestination.score(flow)).toBeNull();
    flow.set('egress.destination.resolved_before', false);
    expect(unresolvedDestination.score(flow)?.reason).toBe('connects to an IP address that no DNS answer gave this client');
  });
});

describe('data-like labels and tunnel bursts', () => {
  it.each([
    ['2bbcf510ed99227d27747ead3dd5345f68eca9c4db1f2d71', 'hex'],
    ['d41d8cd98f00b204e9800998ecf8427e', 'hash'],
    ['mfrggzdfmztwq2lknnwg23tpobyxe43u', 'base32'],
    ['a8f3k2j9d0s8f7g6h5j4k3l2zq', 'random'],
  ])('%s is a %s label', (label, kind) => {
    expect(dataLikeLabel(`${label}.t`)?.kind).toBe(kind);
  });

  it.each(['www', 'cdn-edge-01', 'login.eu-west-1', 'autodiscover', 'selector1._domainkey', 'r4---sn-4g5e6nzz'])('%s is not data-like', (sub) => {
    expect(dataLikeLabel(sub)).toBeNull();
  });

  it('a random 24-character label scores, a chosen name does not', () => {
    const random = dnsFlow('a8f3k2j9d0s8f7g6h5j4k3l2.example.com');
    const chosen = dnsFlow('outlook-emea-frontdoor.example.com');
    expect(longLabels.score(random)).toMatchObject({ signal: 'dns_long_label', strength: 0.8 });
    expect(longLabels.score(chosen)).toBeNull();
  });

  it('a hash lookup (hex label of a digest length) weighs less and is not counted as a tunnel query', () => {
    const now = { t: 0 };
    const s = signals(now);
    let last = dnsFlow('x.example.com');
    for (let i = 0; i < 15; i++) {
      last = dnsFlow(`${createHashHex(i, 32)}.malware.hash.example.com`, 'TXT');
      s.enricher.enrich(last);
    }
    scoreFlow(last, s.scorers);
    expect(last.get('egress.signals')).not.toContain('dns_tunnel');
    expect(longLabels.score(last)).toMatchObject({ strength: 0.3 });
  });

  it('ten queries with data-like labels under one domain within the burst window raise the tunnel signal', () => {
    const now = { t: 0 };
    const s = signals(now);
    let last = dnsFlow('x.example.com');
    for (let i = 0; i < 10; i++) {
      last = dnsFlow(`${createHashHex(i, 50)}.tun.example.com`, 'TXT');
      s.enricher.enrich(last);
    }
    scoreFlow(last, s.scorers);
    expect(last.get('egress.reasons')?.find((r) => r.includes('data-like labels'))).toMatch(/^10 queries with data-like labels under example\.com from this client within 1 min/);
    // A client of its own, and the window over: counted afresh.
    now.t = 61_000;
    const later = dnsFlow(`${createHashHex(99, 50)}.tun.example.com`, 'TXT');
    s.enricher.enrich(later);
    scoreFlow(later, s.scorers);
    expect(later.get('egress.signals')).not.toContain('dns_tunnel');
  });
});

/** Deterministic hex of `length` characters (digits and letters both present). */
function createHashHex(seed: number, length: number): string {
  let out = '';
  let x = (seed + 1) * 2654435761;
  while (out.length < length) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out += x.toString(16);
  }
  return `${out.slice(0, length - 2)}a1`;
}
