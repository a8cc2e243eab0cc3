/**
 * The detection engine's own parts: weights → points → egress.score and reasons, the feature families as the
 * pipeline runs them (once, when their inputs are final), and the judgements that depend on context (a
 * user-writable folder, a heartbeat of a known application, a beacon's curve).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Flow } from '../../../src/flow/flow.js';
import { createScoring, scoreFlow, type FeatureExtractor, type Scorer } from '../../../src/scoring/score.js';
import { beacon, featureScorers, processUserWritable, uncommonPort } from '../../../src/scoring/scorers.js';
import { DEFAULT_WEIGHTS, SIGNALS, SIGNAL_NAMES, withOverrides, type SignalName } from '../../../src/scoring/signals.js';
import { bodyExtractor, destinationExtractor, httpExtractor, registrableDomain, tlsExtractor, uriExtractor } from '../../../src/scoring/extractors.js';
import { DnsFlags } from '../../../src/scoring/dns-flags.js';
import { loadC2UriShapes, SHIPPED_C2_URI_SHAPES } from '../../../src/scoring/features/c2-uri-shapes.js';
import { loadUserAgents, SHIPPED_USER_AGENTS } from '../../../src/scoring/features/user-agent.js';
import { loadTlsFamilies, SHIPPED_TLS_FAMILIES } from '../../../src/scoring/features/tls-family.js';

function httpFlow(path: string, query?: string): Flow {
  const flow = new Flow('http', false);
  flow.set('source.ip', '192.0.2.10');
  flow.set('http.request.method', 'GET');
  flow.set('url.domain', 'portal.example.com');
  flow.set('url.path', path);
  if (query !== undefined) flow.set('url.query', query);
  flow.set('destination.domain', 'portal.example.com');
  flow.set('destination.port', 80);
  flow.closeStage('http-request');
  return flow;
}

describe('signals and weights', () => {
  it('every signal has a default weight from 0 to 100 and a description', () => {
    for (const name of SIGNAL_NAMES) {
      expect(SIGNALS[name].weight, name).toBeGreaterThanOrEqual(0);
      expect(SIGNALS[name].weight, name).toBeLessThanOrEqual(100);
      expect(SIGNALS[name].description.length, name).toBeGreaterThan(10);
    }
  });

  it('an override replaces one weight and leaves the defaults alone', () => {
    const w = withOverrides(new Map([['uncommon_port', 5]]));
    expect(w.uncommon_port).toBe(5);
    expect(w.ip_literal).toBe(DEFAULT_WEIGHTS.ip_literal);
    expect(DEFAULT_WEIGHTS.uncommon_port).toBe(25);
    expect(withOverrides(new Map())).toBe(DEFAULT_WEIGHTS);
  });

  it('points are weight × strength, the reason names the points and the signal, the total is capped at 100', () => {
    const flow = new Flow('connect', false);
    flow.set('destination.port', 4444);
    scoreFlow(flow, [uncommonPort], withOverrides(new Map([['uncommon_port', 10]])));
    expect(flow.get('egress.score')).toBe(10);
    expect(flow.get('egress.reasons')).toEqual(['uncommon destination port 4444 (+10 uncommon_port)']);
    const many = Array.from({ length: 6 }, () => uncommonPort);
    scoreFlow(flow, many);
    expect(flow.get('egress.score')).toBe(100);
  });

  it('reasons are listed highest points first; equal points keep the scorers\' order; every call starts afresh', () => {
    const fixed = (signal: SignalName, strength: number, reason: string): Scorer => ({ name: reason, score: () => ({ signal, strength, reason }) });
    const weights = withOverrides(new Map<SignalName, number>([['uncommon_port', 10], ['ip_literal', 40], ['rare_destination', 10]]));
    const flow = new Flow('connect', false);
    const scorers = [fixed('uncommon_port', 1, 'a'), fixed('ip_literal', 0.5, 'b'), fixed('rare_destination', 1, 'c'), fixed('ip_literal', 1, 'd')];
    expect(scoreFlow(flow, scorers, weights)).toEqual(['ip_literal', 'ip_literal', 'uncommon_port', 'rare_destination']);
    expect(flow.get('egress.reasons')).toEqual(['d (+40 ip_literal)', 'b (+20 ip_literal)', 'a (+10 uncommon_port)', 'c (+10 rare_destination)']);
    expect(flow.get('egress.score')).toBe(80);
    // A later call with fewer hits shows none of the earlier call's.
    expect(scoreFlow(flow, [scorers[2] as Scorer], weights)).toEqual(['rare_destination']);
    expect(flow.get('egress.reasons')).toEqual(['c (+10 rare_destination)']);
  });

  it('a weight of 0 removes the signal from the score, the reasons and the signal list', () => {
    const flow = new Flow('connect', false);
    flow.set('destination.port', 4444);
    expect(scoreFlow(flow, [uncommonPort], withOverrides(new Map([['uncommon_port', 0]])))).toEqual([]);
    expect(flow.get('egress.score')).toBe(0);
    expect(flow.get('egress.reasons')).toEqual([]);
  });
});

describe('feature families run once, when their inputs are final', () => {
  it('an extractor that is not ready is asked again at the next stage; a done one never again', () => {
    let calls = 0;
    let ready = false;
    const probe: FeatureExtractor = {
      name: 'probe',
      extract() {
        calls++;
        return ready;
      },
    };
    const scoring = createScoring({ extractors: [probe], scorers: [] });
    const flow = new Flow('http', false);
    scoring.score(flow);
    ready = true;
    scoring.score(flow);
    scoring.score(flow);
    scoring.finish(flow);
    expect(calls).toBe(2);
  });

  it('URI: a long random segment and a base64 query value; a known C2 shape; an executable download', async () => {
    const shapes = await loadC2UriShapes(SHIPPED_C2_URI_SHAPES);
    const uri = uriExtractor(shapes);
    const random = httpFlow('/aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFhJ5gT/load', 'id=U2FsdGVkX19rk3lq0bWxYzQ4Tn8aPq2Rw7Lk3mN');
    expect(uri.extract(random)).toBe(true);
    expect(random.get('egress.features.uri_random')).toBe(true);
    expect(random.get('egress.features.uri_segment_count')).toBe(2);
    const plain = httpFlow('/products/shoes/index.html');
    uri.extract(plain);
    expect(plain.get('egress.features.uri_random')).toBe(false);
    expect(plain.get('egress.features.uri_entropy')).toBeGreaterThan(0);
    const exe = httpFlow('/files/update.EXE');
    uri.extract(exe);
    expect(exe.get('egress.features.uri_executable')).toBe('exe');
    const empire = httpFlow('/admin/get.php');
    empire.set('user_agent.original', 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko');
    uri.extract(empire);
    expect(empire.get('egress.features.uri_c2_shape')).toMatch(/empire/);
  });

  it('HTTP: the User-Agent family, a missing one, and the Host header against the target', async () => {
    const http = httpExtractor(await loadUserAgents(SHIPPED_USER_AGENTS));
    const flow = httpFlow('/');
    flow.requestHost = 'PORTAL.example.com.:80';
    http.extract(flow);
    expect(flow.get('egress.features.ua_family')).toBe('empty');
    expect(flow.get('egress.features.ua_missing')).toBe(true);
    expect(flow.get('egress.features.host_mismatch')).toBe(false);
    const fronted = httpFlow('/');
    fronted.requestHost = 'evil.example';
    fronted.set('user_agent.original', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36');
    http.extract(fronted);
    expect(fronted.get('egress.features.host_mismatch')).toBe(true);
    expect(fronted.get('egress.features.ua_family')).toBe('browser');
  });

  it('destination: uncommon port, generated-looking names, names this client\'s DNS flagged', () => {
    const flags = new DnsFlags();
    flags.remember('192.0.2.10', 'xkq3vz9plw7t.com', 'dns_dga');
    const dest = destinationExtractor(flags);
    const flow = new Flow('connect', false);
    flow.set('source.ip', '192.0.2.10');
    flow.set('destination.domain', 'api.xkq3vz9plw7t.com');
    flow.set('destination.port', 8443);
    expect(dest.extract(flow)).toBe(true);
    expect(flow.get('egress.features.uncommon_port')).toBe(false);
    expect(flow.get('egress.features.dest_dga')).toBe(true);
    expect(flow.get('egress.features.dns_flagged')).toBe('dns_dga');
    expect(flow.get('destination.registered_domain')).toBe('xkq3vz9plw7t.com');
    expect(registrableDomain('www.example.co.uk')).toEqual({ domain: 'example.co.uk', label: 'example' });
    expect(registrableDomain('203.0.113.9').domain).toBe('203.0.113.9');
  });

  it('TLS: no judgement before the hello; SNI missing, mismatched or on a bare IP; not TLS on 443', async () => {
    const tls = tlsExtractor(await loadTlsFamilies(SHIPPED_TLS_FAMILIES));
    const waiting = new Flow('connect', false);
    waiting.set('destination.port', 443);
    expect(tls.extract(waiting)).toBe(false);
    const fronted = new Flow('connect', false);
    fronted.set('destination.port', 443);
    fronted.set('destination.domain', 'cdn.example');
    fronted.set('network.protocol', 'tls');
    fronted.set('tls.client.server_name', 'hidden.example');
    fronted.set('egress.tls.sni_matches_destination', false);
    expect(tls.extract(fronted)).toBe(true);
    expect(fronted.get('egress.features.sni_mismatch')).toBe(true);
    expect(fronted.get('egress.features.sni_missing')).toBe(false);
    const onIp = new Flow('connect', false);
    onIp.set('destination.port', 443);
    onIp.set('egress.destination.ip_literal', true);
    onIp.set('network.protocol', 'tls');
    onIp.set('tls.client.server_name', 'www.microsoft.com');
    tls.extract(onIp);
    expect(onIp.get('egress.features.sni_on_ip')).toBe(true);
    const notTls = new Flow('connect', false);
    notTls.set('destination.port', 443);
    notTls.set('network.protocol', 'unknown');
    tls.extract(notTls);
    expect(notTls.get('egress.features.protocol_mismatch')).toBe('not-tls-on-443');
  });

  it('body: random bytes look encrypted, text does not, a short body is not judged', () => {
    const judge = (bytes: Buffer): Flow => {
      const flow = new Flow('http', false);
      flow.bodySample = bytes;
      flow.bodySampleLength = bytes.length;
      bodyExtractor.extract(flow);
      return flow;
    };
    const random = randomBytes(4096);
    expect(judge(random).get('egress.features.body_encrypted')).toBe(true);
    expect(judge(Buffer.from('name=alice&comment='.repeat(200))).get('egress.features.body_encrypted')).toBe(false);
    expect(judge(Buffer.alloc(100, 7)).get('egress.features.body_entropy')).toBeUndefined();
  });
});

describe('judgements that depend on context', () => {
  const withCategory = (category: string): Flow => {
    const flow = new Flow('connect', false);
    flow.set('process.name', 'x.exe');
    flow.set('egress.features.process_category', category);
    flow.set('egress.features.process_user_writable', true);
    return flow;
  };

  it('a user-writable folder counts for unknown programs and abused binaries, not for per-user installs of known applications', () => {
    expect(processUserWritable.score(withCategory('unknown'))?.signal).toBe('process_user_writable');
    expect(processUserWritable.score(withCategory('script-host'))).not.toBeNull();
    expect(processUserWritable.score(withCategory('collaboration'))).toBeNull();
    expect(processUserWritable.score(withCategory('browser'))).toBeNull();
  });

  it('a beacon scores from 0.6 up to full weight at 0.9, half for a known application\'s heartbeat', () => {
    const beaconFlow = (score: number, category: string): Flow => {
      const flow = withCategory(category);
      flow.set('egress.beacon.score', score);
      flow.set('egress.beacon.connections', 12);
      flow.set('egress.beacon.interval_ms', 5100);
      flow.set('egress.beacon.jitter_ms', 300);
      return flow;
    };
    expect(beacon.score(beaconFlow(0.55, 'unknown'))).toBeNull();
    expect(beacon.score(beaconFlow(0.95, 'unknown'))).toMatchObject({ strength: 1, reason: 'beacon: 12 connections every 5.1 s ± 0.3 s (score 0.95)' });
    expect(beacon.score(beaconFlow(0.95, 'collaboration'))?.strength).toBe(0.5);
    expect(beacon.score(beaconFlow(0.75, 'unknown'))?.strength).toBeCloseTo(0.5, 5);
  });

  it('every feature scorer names a declared signal', () => {
    for (const scorer of featureScorers) expect(scorer.name.length).toBeGreaterThan(0);
    const flow = new Flow('connect', false);
    for (const scorer of featureScorers) {
      const hit = scorer.score(flow);
      if (hit !== null) expect(SIGNAL_NAMES).toContain(hit.signal);
    }
  });
});
