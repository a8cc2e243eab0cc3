import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Flow, type FlowKind } from '../../../src/flow/flow.js';
import { FIELDS, FIELD_ALIASES, FRACTIONAL_FIELDS, canonicalFieldName, type FieldName } from '../../../src/flow/fields.js';
import { buildEcsRecord, ECS_VERSION, OBSERVER, RECORD_FIELDS, serializeEcsRecord, type EcsRecord } from '../../../src/observe/ecs.js';
import { buildFollowUpRecord } from '../../../src/observe/follow-up.js';
import type { PolicyView } from '../../../src/flow/pipeline.js';
import type { Attribution } from '../../../src/enrich/hint-store.js';
import type { Decision, FinalDecision } from '../../../src/policy/decision.js';
import { builtinDecision } from '../../../src/policy/decision.js';
import { catalogueProblems, ECS, recordProblems } from './ecs-rules.js';
import { field } from '../../helpers/harness.js';
import { communityId } from '../../../src/observe/community-id.js';
import { buildPolicy } from '../../../src/policy/load.js';
import { createPolicyView } from '../../../src/policy/evaluate.js';

const allow = (ruleId: string | null = null): FinalDecision => ({ status: 'final', verdict: 'allow', ruleId, matchedRuleIds: ruleId === null ? [] : [ruleId], tags: [], severity: null, tunnel: 'splice', reasons: [] });
const block = (ruleId: string): FinalDecision => ({ status: 'final', verdict: 'block', ruleId, matchedRuleIds: [ruleId], tags: ['an0922'], severity: 'high', tunnel: 'splice', reasons: [`rule ${ruleId}: …`] });

function flowOf(kind: FlowKind, facts: Partial<Record<FieldName, unknown>>, decision: Decision | null): Flow {
  const flow = new Flow(kind, false);
  for (const [name, value] of Object.entries(facts)) flow.set(name as FieldName, value as never);
  flow.decision = decision;
  flow.sourceBytes = 120;
  flow.destinationBytes = 4096;
  return flow;
}

const HTTP = {
  'network.protocol': 'http', 'source.ip': '10.1.2.3', 'source.port': 50123, 'destination.domain': 'c2.example', 'destination.ip': '203.0.113.9',
  'destination.port': 8080, 'url.original': 'http://c2.example:8080/a?b=1', 'url.scheme': 'http', 'url.domain': 'c2.example', 'url.port': 8080,
  'url.path': '/a', 'url.query': 'b=1', 'http.request.method': 'POST', 'http.version': '1.1', 'http.request.body.bytes': 11,
  'http.response.status_code': 200, 'http.response.body.bytes': 4096, 'user_agent.original': 'curl/8', 'http.request.ja4h': 'po11nn010000_abc_000000000000_000000000000',
  'egress.dns.question_entropy': 3, 'egress.score': 25, 'egress.reasons': ['x (+25 uncommon_port)'], 'egress.features.uri_entropy': 2.5,
} as const;
const CONNECT = {
  'network.protocol': 'tls', 'network.transport': 'tcp', 'source.ip': '::ffff:10.1.2.3', 'source.port': 50124, 'destination.domain': 'cdn.example',
  'destination.ip': '2001:db8::9', 'destination.port': 443, 'url.original': 'cdn.example:443', 'http.request.method': 'CONNECT', 'tls.client.server_name': 'cdn.example',
  'tls.client.ja3': 'a'.repeat(32), 'tls.client.ja4': 't13d1516h2_8daaf6152771_02713d6af862', 'egress.tls.ja4_r': 'raw', 'egress.tls.cipher_codes': ['1301', 'c02b', '00ff'],
  'egress.tls.alpn': ['h2'], 'tls.server.ja4s': 't130200_1301_234ea6891581', 'tls.server.ja3s': 'b'.repeat(32), 'tls.version': '1.3', 'tls.cipher': 'TLS_AES_128_GCM_SHA256',
  'tls.server.x509.not_before': '2026-01-01T00:00:00.000Z', 'tls.server.x509.alternative_names': ['cdn.example'], 'egress.tunnel': 'splice', 'egress.tls.validity_days': 90,
} as const;
const DNS = {
  'network.protocol': 'dns', 'network.transport': 'udp', 'source.ip': '10.1.2.3', 'source.port': 53000, 'dns.question.name': 'x.example', 'dns.question.type': 'A',
  'dns.response_code': 'NOERROR', 'dns.answers': [{ name: 'x.example', type: 'A', data: '192.0.2.1', ttl: 60 }], 'egress.dns.question_entropy': 1.5,
} as const;
const PROCESS = {
  'process.name': 'rundll32.exe', 'process.pid': 4242, 'process.executable': 'C:\\Windows\\System32\\rundll32.exe', 'process.entity_id': '{guid}',
  'process.command_line': 'rundll32 x.dll,Run', 'process.hash.sha256': 'c'.repeat(64), 'process.pe.imphash': 'd'.repeat(32), 'user.name': 'alice',
  'host.name': 'ws-1', 'egress.attribution': 'telemetry',
} as const;

const record = (flow: Flow): EcsRecord => buildEcsRecord(flow, flow.startedNs + 3_000_000n);

describe('the field catalogue is ECS or ours', () => {
  it('every catalogue field is an ECS field of a fitting type, under egress.*, or a SPEC fingerprint', () => {
    expect(catalogueProblems()).toEqual([]);
  });

  it('every policy alias names a catalogue field', () => {
    for (const [old, name] of Object.entries(FIELD_ALIASES)) expect(FIELDS[name], old).toBeDefined();
    expect(canonicalFieldName('tls.client.supported_ciphers')).toBe('egress.tls.cipher_codes');
  });

  it('a fractional number is never an ECS long (it would be mapped as one)', () => {
    for (const name of FRACTIONAL_FIELDS) expect(ECS[name]?.type, name).not.toBe('long');
  });

  it('the rule itself catches what it should (a moved field back in tls.*, a string for a long, a bad allowed value)', () => {
    expect(recordProblems({ tls: { client: { ech: true } } })).toHaveLength(1);
    expect(recordProblems({ source: { port: '80' } })).toHaveLength(1);
    expect(recordProblems({ event: { category: ['net'] } })).toHaveLength(1);
    expect(recordProblems({ event: { category: 'network' } })).toHaveLength(1);
    expect(recordProblems({ event: { start: 'yesterday' } })).toHaveLength(1);
    expect(recordProblems({ destination: { ip: 'c2.example' } })).toHaveLength(1);
    expect(recordProblems({ egress: { anything: { goes: 1 } }, tls: { client: { ja4: 'x' } } })).toEqual([]);
  });
});

describe('records of every kind conform', () => {
  const cases: Array<[string, () => Flow]> = [
    ['HTTP allow', () => flowOf('http', HTTP, allow('ok'))],
    ['HTTP block', () => flowOf('http', HTTP, block('lolbin'))],
    ['HTTP refused before parsing', () => flowOf('http', { 'source.ip': '10.1.2.3', 'source.port': 1 }, builtinDecision('block', 'builtin:bad-request', 'bad'))],
    ['CONNECT spliced', () => flowOf('connect', CONNECT, allow())],
    ['bumped inner request', () => flowOf('http', { ...HTTP, 'url.original': '/a?b=1', 'url.scheme': 'https', 'url.port': 443, 'egress.tunnel_id': 'tunnel-1' }, allow())],
    ['DNS', () => flowOf('dns', DNS, allow())],
    ['attributed', () => flowOf('http', { ...HTTP, ...PROCESS }, block('lolbin'))],
    ['pending at the end', () => flowOf('connect', CONNECT, { status: 'pending', pendingRuleId: 'r', pendingFields: ['tls.client.ja4'], matchedRuleIds: [], tags: [], severity: null, tunnel: 'splice', reasons: [] })],
  ];
  it.each(cases)('%s', (_name, make) => {
    const rec = record(make());
    expect(recordProblems(rec)).toEqual([]);
    expect(rec).toMatchObject({ ecs: { version: ECS_VERSION }, observer: { type: 'proxy', product: 'egress-inspector', version: OBSERVER.version, hostname: OBSERVER.hostname } });
    expect(field(rec, 'network.bytes')).toBe(4216);
    expect(field(rec, 'event.start')).toBe(rec['@timestamp']);
    expect(Date.parse(field(rec, 'event.end') as string) - Date.parse(rec['@timestamp'] as string)).toBe(3);
  });
});

describe('what the fields say', () => {
  it('a block is event.type denied with outcome success (the proxy enforced it); an allow is allowed', () => {
    const blocked = record(flowOf('http', HTTP, block('lolbin')));
    expect(blocked).toMatchObject({ event: { action: 'block', outcome: 'success', category: ['network', 'web'], type: ['connection', 'denied', 'protocol', 'access'] } });
    const allowed = record(flowOf('connect', CONNECT, allow()));
    expect(allowed).toMatchObject({ event: { action: 'allow', category: ['network'], type: ['connection', 'allowed', 'protocol'] } });
    const undecided = record(flowOf('connect', {}, null));
    expect(field(undecided, 'event.type')).toEqual(['connection', 'denied']);
  });

  it('the proxy sees outbound traffic, internal when the destination is in network.internal', () => {
    expect(field(record(flowOf('http', HTTP, allow())), 'network.direction')).toBe('outbound');
    expect(field(record(flowOf('http', { ...HTTP, 'egress.destination.internal': true }, allow())), 'network.direction')).toBe('internal');
  });

  it('community ID over source.ip/port, destination.ip/port and the transport; none without a destination IP', () => {
    expect(field(record(flowOf('http', HTTP, allow())), 'network.community_id')).toBe(communityId('10.1.2.3', 50123, '203.0.113.9', 8080, 'tcp'));
    expect(field(record(flowOf('connect', CONNECT, allow())), 'network.community_id')).toBe(communityId('::ffff:10.1.2.3', 50124, '2001:db8::9', 443, 'tcp'));
    expect(field(record(flowOf('dns', DNS, allow())), 'network.community_id')).toBeUndefined();
  });

  it('related.* gathers IPs, hosts, the user and every hash, without repeats', () => {
    const rec = record(flowOf('http', { ...HTTP, ...PROCESS, 'tls.client.server_name': 'c2.example' }, allow()));
    expect(rec['related']).toEqual({
      ip: ['10.1.2.3', '203.0.113.9'],
      hosts: ['c2.example', 'ws-1'],
      user: ['alice'],
      hash: [HTTP['http.request.ja4h'], 'c'.repeat(64), 'd'.repeat(32)],
    });
  });

  it('url.full: the absolute target as sent, rebuilt for a bumped request, none for CONNECT', () => {
    expect(field(record(flowOf('http', HTTP, allow())), 'url.full')).toBe('http://c2.example:8080/a?b=1');
    expect(field(record(flowOf('http', { ...HTTP, 'url.original': '/a?b=1', 'url.scheme': 'https', 'url.port': 443 }, allow())), 'url.full')).toBe('https://c2.example/a?b=1');
    expect(field(record(flowOf('http', { ...HTTP, 'url.original': '/', 'url.domain': '2001:db8::1', 'url.path': '/', 'url.query': undefined, 'url.port': 8443, 'url.scheme': 'https' }, allow())), 'url.full')).toBe('https://[2001:db8::1]:8443/');
    expect(field(record(flowOf('connect', CONNECT, allow())), 'url.full')).toBeUndefined();
  });

  it('supported_ciphers by IANA name (0x-hex when unknown), the hex codes in egress.tls.cipher_codes', () => {
    const flow = flowOf('connect', CONNECT, allow());
    const rec = record(flow);
    expect(field(rec, 'tls.client.supported_ciphers')).toEqual(['TLS_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', '0x00ff']);
    expect(field(rec, 'egress.tls.cipher_codes')).toEqual(['1301', 'c02b', '00ff']);
    // Writing the record twice (a follow-up copies the ended flow) gives the same lists.
    expect(field(record(flow), 'tls.client.supported_ciphers')).toEqual(field(rec, 'tls.client.supported_ciphers'));
    const fromCodes = flowOf('connect', { 'egress.tls.cipher_codes': ['1302'] }, allow());
    expect(field(record(fromCodes), 'tls.client.supported_ciphers')).toEqual(['TLS_AES_256_GCM_SHA384']);
  });

  it('writes a shared frozen list (a TLS stack\'s lists, tls-facts.ts) as JSON.stringify would, for every flow that holds it', () => {
    const codes = Object.freeze(['1301', 'c02b', '00ff']);
    // Names that JSON must escape: a quote, a backslash, a control character, a lone surrogate.
    const alpn = Object.freeze(['h2', 'a"b', 'c\\d', 'e\u0001', '\ud800']);
    for (let i = 0; i < 3; i++) {
      const flow = flowOf('connect', { ...CONNECT, 'egress.tls.cipher_codes': codes, 'egress.tls.alpn': alpn }, allow());
      const line = serializeEcsRecord(flow, flow.startedNs + 3_000_000n);
      expect(line).toContain(`"cipher_codes":${JSON.stringify(codes)}`);
      expect(line).toContain(`"alpn":${JSON.stringify(alpn)}`);
      expect(line).toContain(`"supported_ciphers":${JSON.stringify(['TLS_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', '0x00ff'])}`);
      // The names of a shared code list are shared (and frozen) too.
      expect(Object.isFrozen(flow.get('tls.client.supported_ciphers'))).toBe(true);
    }
  });
});

describe('follow-up records', () => {
  const attribution: Attribution = {
    processName: 'regsvr32.exe', executable: 'C:\\Windows\\System32\\regsvr32.exe', pid: 7, entityId: null, parentName: null, parentExecutable: null,
    commandLine: null, originalFileName: null, hashes: { md5: null, sha1: null, sha256: 'e'.repeat(64), imphash: null }, userName: 'bob', userDomain: null,
    hostName: 'ws-2', eventTimeMs: 0, transport: 'tcp', destinationIp: null, destinationPort: null, join: null, matched: 'network',
  };
  const policy = (decision: FinalDecision): PolicyView => ({
    evaluate: () => decision,
    completeDeferred: (d) => d,
    opensInternal: () => false,
    certainBlock: () => null,
  });

  it('has its own event.id and @timestamp, the span of the flow it completes, and the rule that produced it', async () => {
    const ended = flowOf('http', HTTP, allow('allow-web'));
    const original = buildEcsRecord(ended, ended.startedNs + 5_000_000n);
    await new Promise((r) => setTimeout(r, 15));
    const late = buildFollowUpRecord(ended, attribution, policy(block('lolbin-egress')));
    expect(recordProblems(late)).toEqual([]);
    expect(late['@timestamp']).not.toBe(original['@timestamp']);
    expect(Date.parse(late['@timestamp'] as string)).toBeGreaterThan(Date.parse(original['@timestamp'] as string));
    expect(field(late, 'event.id')).not.toBe(field(original, 'event.id'));
    expect(late).toMatchObject({
      event: { kind: 'alert', action: 'allow', type: ['connection', 'allowed', 'protocol', 'access'], start: field(original, 'event.start'), end: field(original, 'event.end'), duration: 5_000_000, severity: 3 },
      rule: { id: 'lolbin-egress' },
      tags: ['an0922'],
      process: { name: 'regsvr32.exe' },
      related: { user: ['bob'], hosts: ['c2.example', 'ws-2'] },
      egress: { followup_of: ended.id, original_rule: 'allow-web', late_verdict: 'block', late_rule: 'lolbin-egress', rules: ['lolbin-egress'] },
    });
  });

  it('settles shadow rules with the late process facts: a shadow rule on process.name shows in egress.shadow', () => {
    const text = 'version: 1\nrules:\n  - id: shadow-regsvr32\n    mode: shadow\n    when: { process.name: regsvr32.exe }\n    action: block\n';
    const built = buildPolicy([{ file: 'shadow.yaml', bytes: new TextEncoder().encode(text) }]);
    if (!built.ok) throw new Error(built.errors.map((e) => e.format()).join('\n'));
    const ended = flowOf('http', HTTP, allow());
    buildEcsRecord(ended);
    const late = buildFollowUpRecord(ended, attribution, createPolicyView(built.policy));
    expect(field(late, 'egress.shadow')).toEqual([{ rule: 'shadow-regsvr32', action: 'block' }]);
    expect(field(late, 'event.action')).toBe('allow'); // a shadow rule never decides, late or not
  });

  it('a late evaluation that matches nothing leaves no rule.id, and the original rule stays named', () => {
    const ended = flowOf('http', HTTP, allow('allow-web'));
    buildEcsRecord(ended);
    const late = buildFollowUpRecord(ended, attribution, policy(allow()));
    expect(late['rule']).toBeUndefined();
    expect(late['tags']).toBeUndefined();
    expect(field(late, 'event.kind')).toBe('event');
    expect(field(late, 'egress.original_rule')).toBe('allow-web');
  });
});

describe('the record-only fields the end writes', () => {
  it('RECORD_FIELDS are catalogue fields that policies cannot use', () => {
    for (const name of RECORD_FIELDS) expect(FIELDS[name], name).toBeDefined();
  });
});

describe('docs and the Elasticsearch template stay in step with the catalogue', () => {
  it('docs/flow-record.md lists exactly the catalogue fields in its field table', () => {
    const doc = readFileSync(new URL('../../../docs/flow-record.md', import.meta.url), 'utf8');
    const listed = [...doc.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] as string);
    expect(new Set(listed)).toEqual(new Set(Object.keys(FIELDS)));
  });
});
