import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FlowFields } from '../../../../src/flow/fields.js';
import { evaluatePolicy } from '../../../../src/policy/evaluate.js';
import { buildPolicy } from '../../../../src/policy/load.js';
import { convertSigmaRule, type ConvertResult } from '../../../../src/policy/sigma/convert.js';
import { emitPolicy } from '../../../../src/policy/sigma/emit.js';
import { readSigmaRule, type SigmaRule } from '../../../../src/policy/sigma/parse.js';
import { fakeFacts } from '../policy-kit.js';

const ID = '11111111-2222-3333-4444-555555555555';

function sigma(detection: Record<string, unknown>, logsource: Record<string, unknown> = { category: 'network_connection', product: 'windows' }, extra: Record<string, unknown> = {}): SigmaRule {
  const read = readSigmaRule({ id: ID, title: 'Test rule', level: 'high', author: 'A. Author', logsource, detection, ...extra }, 'test.yml');
  if (!read.ok) throw new Error(read.error);
  return read.rule;
}

function convert(detection: Record<string, unknown>, logsource?: Record<string, unknown>, action: 'tag' | 'block' = 'tag'): ConvertResult {
  return convertSigmaRule(sigma(detection, logsource), { action });
}

function reason(detection: Record<string, unknown>, logsource?: Record<string, unknown>, action: 'tag' | 'block' = 'tag'): string {
  const result = convert(detection, logsource, action);
  if (result.ok) throw new Error(`converted: ${JSON.stringify(result.rule.when)}`);
  return result.reason;
}

/** Converts, loads with the real loader, and returns "does it fire on this flow". */
function firesOn(detection: Record<string, unknown>, logsource?: Record<string, unknown>): (flow: FlowFields) => boolean {
  const result = convert(detection, logsource);
  if (!result.ok) throw new Error(result.reason);
  const loaded = buildPolicy([{ file: 't.yaml', bytes: new TextEncoder().encode(emitPolicy([result.rule])) }]);
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.format()).join('\n'));
  return (flow) => evaluatePolicy(loaded.policy, fakeFacts(flow)).matchedRuleIds.includes(`sigma.${ID}`);
}

const PROXY = { category: 'proxy' };
const DNS_QUERY = { category: 'dns_query', product: 'windows' };

describe('convertSigmaRule: rule metadata', () => {
  it('keeps id as sigma.<id>, title, level → severity, author tag, action', () => {
    const result = convertSigmaRule(sigma({ sel: { Image: 'x.exe' }, condition: 'sel' }, undefined, { tags: ['attack.t1071'], level: 'informational' }), { action: 'block' });
    expect(result.ok && result.rule).toMatchObject({
      id: `sigma.${ID}`,
      description: 'Test rule (Sigma rule by A. Author, DRL 1.1)',
      action: 'block',
      severity: 'low',
      tags: ['sigma', `sigma.${ID}`, 'attack.t1071', 'sigma.author:A. Author'],
    });
  });

  it.each([
    ['an unsupported category', { category: 'process_creation', product: 'windows' }, /category "process_creation" is not one the proxy observes/],
    ['a non-Windows product', { category: 'network_connection', product: 'linux' }, /product "linux"/],
    ['a service', { category: 'dns', service: 'zeek' }, /service "zeek"/],
    ['no category', { product: 'windows' }, /no category/],
  ])('refuses %s', (_name, logsource, message) => {
    expect(reason({ sel: { Image: 'x' }, condition: 'sel' }, logsource)).toMatch(message);
  });

  it('refuses timeframe, aggregation and conditions naming nothing', () => {
    expect(reason({ sel: { Image: 'x' }, timeframe: '1m', condition: 'sel' })).toMatch(/timeframe/);
    expect(reason({ sel: { Image: 'x' }, condition: 'sel | count() by Image > 5' })).toMatch(/aggregation/);
    expect(reason({ sel: { Image: 'x' }, condition: 'sel and filter' })).toMatch(/names "filter", which the detection does not define/);
    expect(reason({ sel: { Image: 'x' }, condition: '1 of filter_*' })).toMatch(/names no search identifier/);
  });

  it('refuses keyword searches', () => {
    expect(reason({ keywords: ['evil', 'bad'], condition: 'keywords' })).toMatch(/keyword search/);
    expect(reason({ sel: { '|contains': 'x' }, condition: 'sel' })).toMatch(/keyword search/);
  });
});

describe('convertSigmaRule: field mapping', () => {
  it('maps each supported field to its flow field', () => {
    const r = convert({ sel: { Image: 'a', ParentImage: 'b', CommandLine: 'c', DestinationHostname: 'd', DestinationPort: 4444, Protocol: 'tcp', OriginalFileName: 'e' }, condition: 'sel' });
    expect(r.ok && r.rule.when).toEqual({
      'process.executable': 'a',
      'process.parent.executable': 'b',
      'process.command_line': 'c',
      'destination.domain': 'd',
      'destination.port': 4444,
      'network.transport': 'tcp',
      'process.pe.original_file_name': 'e',
    });
  });

  it.each([
    ['an unknown field', { sel: { TargetFilename: 'x' }, condition: 'sel' }, undefined, /field TargetFilename has no flow-record equivalent/],
    ['a refused field', { sel: { SourcePort: 3389 }, condition: 'sel' }, undefined, /field SourcePort is not supported: the proxy sees the port/],
    ['cookies', { sel: { 'cs-cookie': 'x' }, condition: 'sel' }, PROXY, /does not record the Cookie header/],
    ['a response field', { sel: { 'sc-status': 200 }, condition: 'sel' }, PROXY, /http\.response\.status_code, which is written at the end of the flow/],
    ['DNS answers', { sel: { QueryResults: 'x' }, condition: 'sel' }, DNS_QUERY, /dns\.answers, which is written at the end/],
    ['a field of another category', { sel: { QueryName: 'x' }, condition: 'sel' }, undefined, /field QueryName has no flow-record equivalent/],
  ])('refuses %s, naming it', (_name, detection, logsource, message) => {
    expect(reason(detection, logsource)).toMatch(message);
  });

  it('an unmapped field in a filter refuses the whole rule (never weakened to the selection alone)', () => {
    expect(reason({ sel: { Image: 'x' }, filter: { Hashes: 'y' }, condition: 'sel and not filter' })).toMatch(/field Hashes/);
  });

  it("Initiated: 'true' is dropped, 'false' makes the rule unable to fire", () => {
    const r = convert({ sel: { Image: 'x', Initiated: 'true' }, condition: 'sel' });
    expect(r.ok && r.rule.when).toEqual({ 'process.executable': 'x' });
    expect(reason({ sel: { Image: 'x', Initiated: 'false' }, condition: 'sel' })).toMatch(/can never match/);
    expect(reason({ sel: { Initiated: 'true' }, condition: 'sel' })).toMatch(/would match every flow/);
    // In a filter, Initiated: 'false' makes the filter never hold: the rule is the selection.
    const f = convert({ sel: { Image: 'x' }, filter: { Initiated: 'false', DestinationPort: 80 }, condition: 'sel and not filter' });
    expect(f.ok && f.rule.when).toEqual({ 'process.executable': 'x' });
  });

  it('DestinationIsIpv6 is derived from destination.ip', () => {
    const fires = firesOn({ sel: { Image: 'x', DestinationIsIpv6: 'true' }, condition: 'sel' });
    expect(fires({ 'process.executable': 'x', 'destination.ip': '2001:db8::1' })).toBe(true);
    expect(fires({ 'process.executable': 'x', 'destination.ip': '192.0.2.1' })).toBe(false);
    expect(fires({ 'process.executable': 'x', 'destination.ip': '::ffff:192.0.2.1' })).toBe(false);
  });

  it('User DOMAIN\\name is matched over user.domain and user.name', () => {
    const exact = firesOn({ sel: { User: 'NT AUTHORITY\\SYSTEM' }, condition: 'sel' });
    expect(exact({ 'user.domain': 'nt authority', 'user.name': 'system' })).toBe(true);
    expect(exact({ 'user.domain': 'CORP', 'user.name': 'SYSTEM' })).toBe(false);
    const contains = firesOn({ sel: { 'User|contains': ['AUTHORI', 'AUTORI'] }, condition: 'sel' });
    expect(contains({ 'user.domain': 'NT AUTHORITY', 'user.name': 'SYSTEM' })).toBe(true);
    expect(contains({ 'user.domain': 'AUTORITE NT', 'user.name': 'SYSTEM' })).toBe(true);
    expect(contains({ 'user.domain': 'CORP', 'user.name': 'alice' })).toBe(false);
    const across = firesOn({ sel: { 'User|contains': 'CORP\\ali' }, condition: 'sel' });
    expect(across({ 'user.domain': 'EU-CORP', 'user.name': 'alice' })).toBe(true);
    expect(across({ 'user.domain': 'CORPX', 'user.name': 'alice' })).toBe(false);
    const ends = firesOn({ sel: { 'User|endswith': 'ice' }, condition: 'sel' });
    expect(ends({ 'user.domain': 'CORP', 'user.name': 'alice' })).toBe(true);
    expect(reason({ sel: { User: 'CORP\\al*' }, condition: 'sel' })).toMatch(/wildcards/);
  });

  it('c-uri-extension becomes url.path endswith .ext', () => {
    const fires = firesOn({ sel: { 'c-uri-extension': ['exe', 'hta'] }, condition: 'sel' }, PROXY);
    expect(fires({ 'url.path': '/dl/payload.EXE' })).toBe(true);
    expect(fires({ 'url.path': '/dl/payload.exe.txt' })).toBe(false);
    expect(reason({ sel: { 'c-uri-extension': 'e*e' }, condition: 'sel' }, PROXY)).toMatch(/not a plain file extension/);
  });

  it('c-uri anchored at "/" matches absolute-form and origin-form targets', () => {
    const fires = firesOn({ sel: { 'c-uri': '/admin/get.php' }, condition: 'sel' }, PROXY);
    expect(fires({ 'url.original': 'http://c2.example/admin/get.php' })).toBe(true);
    expect(fires({ 'url.original': '/ADMIN/get.php' })).toBe(true);
    expect(fires({ 'url.original': 'http://c2.example/x/admin/get.php' })).toBe(false);
  });

  it('text fields match ignoring case, like Sigma', () => {
    const fires = firesOn({ sel: { 'Image|endswith': '\\RunDLL32.exe' }, condition: 'sel' });
    expect(fires({ 'process.executable': 'C:\\Windows\\System32\\rundll32.EXE' })).toBe(true);
  });
});

describe('convertSigmaRule: values and modifiers', () => {
  it('a list of values is OR; |all makes it AND', () => {
    const any = convert({ sel: { 'CommandLine|contains': ['a', 'b'] }, condition: 'sel' });
    expect(any.ok && any.rule.when).toEqual({ 'process.command_line': { contains: ['a', 'b'] } });
    const all = convert({ sel: { 'CommandLine|contains|all': ['a', 'b'] }, condition: 'sel' });
    expect(all.ok && all.rule.when).toEqual({ all: [{ 'process.command_line': { contains: 'a' } }, { 'process.command_line': { contains: 'b' } }] });
  });

  it('a list of maps is OR of ANDs; plain value lists become in', () => {
    const r = convert({ sel: [{ Image: 'a', DestinationPort: [80, 443] }, { CommandLine: 'c' }], condition: 'sel' });
    expect(r.ok && r.rule.when).toEqual({ any: [{ 'process.executable': 'a', 'destination.port': { in: [80, 443] } }, { 'process.command_line': 'c' }] });
  });

  it('null is "field absent"', () => {
    const fires = firesOn({ sel: { Image: 'x' }, filter: { CommandLine: null }, condition: 'sel and not filter' });
    expect(fires({ 'process.executable': 'x' })).toBe(false);
    expect(fires({ 'process.executable': 'x', 'process.command_line': 'x.exe -a' })).toBe(true);
  });

  it('cidr, gt/lt and exists', () => {
    const fires = firesOn({ sel: { 'DestinationIp|cidr': '10.0.0.0/8', 'DestinationPort|gte': 1024, 'CommandLine|exists': true }, condition: 'sel' });
    expect(fires({ 'destination.ip': '10.1.2.3', 'destination.port': 4444, 'process.command_line': 'x' })).toBe(true);
    expect(fires({ 'destination.ip': '10.1.2.3', 'destination.port': 443, 'process.command_line': 'x' })).toBe(false);
    expect(fires({ 'destination.ip': '11.1.2.3', 'destination.port': 4444, 'process.command_line': 'x' })).toBe(false);
  });

  it('whole-octet IP prefixes become CIDR ranges; other IP text matches are refused', () => {
    const r = convert({ sel: { 'DestinationIp|startswith': ['10.', '192.168.'], Image: 'x' }, condition: 'sel' });
    expect(r.ok && r.rule.when).toMatchObject({ 'destination.ip': { cidr: ['10.0.0.0/8', '192.168.0.0/16'] } });
    expect(reason({ sel: { 'DestinationIp|startswith': '172.2' }, condition: 'sel' })).toMatch(/only whole-octet prefixes/);
    expect(reason({ sel: { DestinationIp: 'not-an-ip' }, condition: 'sel' })).toMatch(/not an IP address/);
  });

  it('re keeps the pattern (case-sensitive unless (?i) or |i) and refuses what JavaScript reads differently', () => {
    const r = convert({ sel: { 'QueryName|re': '^[a-f0-9]{8}\\.example$' }, condition: 'sel' }, DNS_QUERY);
    expect(r.ok && r.rule.when).toEqual({ 'dns.question.name': { regex: '^[a-f0-9]{8}\\.example$' } });
    const i = convert({ sel: { 'QueryName|re|i': 'abc' }, condition: 'sel' }, DNS_QUERY);
    expect(i.ok && i.rule.when).toEqual({ 'dns.question.name': { regex: '(?i)abc' } });
    expect(reason({ sel: { 'QueryName|re': 'a\\Z' }, condition: 'sel' }, DNS_QUERY)).toMatch(/PCRE escape/);
    expect(reason({ sel: { 'QueryName|re': '(?s)a.b' }, condition: 'sel' }, DNS_QUERY)).toMatch(/not valid JavaScript/);
    expect(reason({ sel: { 'QueryName|re|s': 'a.b' }, condition: 'sel' }, DNS_QUERY)).toMatch(/m and s/);
  });

  it('windash expands option dashes', () => {
    const fires = firesOn({ sel: { 'CommandLine|windash|contains': ' -enc ' }, condition: 'sel' });
    expect(fires({ 'process.command_line': 'powershell /enc AAA' })).toBe(true);
    expect(fires({ 'process.command_line': 'powershell \u2013enc AAA' })).toBe(true);
    expect(fires({ 'process.command_line': 'powershell enc AAA' })).toBe(false);
  });

  it('base64offset|contains finds the value encoded at any offset', () => {
    const fires = firesOn({ sel: { 'CommandLine|base64offset|contains': 'http://' }, condition: 'sel' });
    for (const prefix of ['', 'x', 'xy']) {
      expect(fires({ 'process.command_line': `powershell -e ${Buffer.from(`${prefix}IEX http://evil`).toString('base64')}` }), prefix).toBe(true);
    }
    expect(fires({ 'process.command_line': 'powershell -e SUVY' })).toBe(false);
    expect(reason({ sel: { 'CommandLine|base64': 'a*b' }, condition: 'sel' })).toMatch(/wildcards/);
  });

  it.each([
    ['expand', { 'QueryName|expand': '%internal%' }, /modifier "expand" is not supported/],
    ['fieldref', { 'CommandLine|fieldref': 'Image' }, /modifier "fieldref" is not supported/],
    ['an unknown modifier', { 'CommandLine|sometimes': 'x' }, /unknown modifier "sometimes"/],
    ['two match modifiers', { 'CommandLine|contains|endswith': 'x' }, /cannot be combined/],
    ['contains on a number field', { 'DestinationPort|contains': '44' }, /is a number/],
    ['a non-number for a port', { DestinationPort: 'http' }, /needs a number/],
    ['an empty list', { CommandLine: [] }, /empty list/],
  ])('refuses %s', (_name, sel: Record<string, unknown>, message) => {
    expect(reason({ sel, condition: 'sel' }, 'QueryName|expand' in sel ? DNS_QUERY : undefined)).toMatch(message);
  });

  it('values starting with $ are written as $$ so they are not list references', () => {
    const fires = firesOn({ sel: { CommandLine: '$env:temp' }, condition: 'sel' });
    expect(fires({ 'process.command_line': '$env:TEMP' })).toBe(true);
  });
});

describe('convertSigmaRule never throws', () => {
  const scalar = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('*', '?', '\\', '10.', '::1/128', '-x', 'true'));
  const key = fc
    .tuple(
      fc.constantFrom('Image', 'CommandLine', 'DestinationIp', 'DestinationPort', 'User', 'Initiated', 'DestinationIsIpv6', 'c-uri', 'c-uri-extension', 'QueryName', 'Unknown', ''),
      fc.array(fc.constantFrom('contains', 'startswith', 'endswith', 'all', 're', 'i', 's', 'cidr', 'windash', 'base64', 'base64offset', 'wide', 'gt', 'exists', 'cased', 'expand', 'bogus'), { maxLength: 3 }),
    )
    .map(([field, mods]) => [field, ...mods].join('|'));
  const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }));
  const map = fc.dictionary(key, value, { maxKeys: 4 });
  const identifier = fc.oneof(map, fc.array(map, { maxLength: 3 }), scalar, fc.array(scalar, { maxLength: 3 }));
  const condition = fc.oneof(
    fc.constantFrom('sel', 'sel and not filter', '1 of sel*', 'all of them', 'not sel', '(sel or filter) and not sel2', 'sel |'),
    fc.string({ maxLength: 30 }),
  );
  const category = fc.constantFrom('proxy', 'network_connection', 'dns_query', 'dns', 'process_creation');

  it('refuses with a reason, or converts to a rule the real loader accepts', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('sel', 'sel2', 'filter', 'sel_x'), identifier, { minKeys: 1, maxKeys: 3 }), condition, category, (detection, cond, cat) => {
        const read = readSigmaRule({ id: ID, title: 't', logsource: { category: cat }, detection: { ...detection, condition: cond } }, 'fuzz');
        if (!read.ok) return;
        const result = convertSigmaRule(read.rule);
        if (!result.ok) {
          expect(result.reason.length).toBeGreaterThan(0);
          expect(result.reason).not.toMatch(/internal error/);
          return;
        }
        const loaded = buildPolicy([{ file: 'f.yaml', bytes: new TextEncoder().encode(emitPolicy([result.rule])) }]);
        expect(loaded.ok ? [] : loaded.errors.map((e) => e.format())).toEqual([]);
      }),
      { numRuns: 1500 },
    );
  });

  it('readSigmaRule never throws on arbitrary data', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(typeof readSigmaRule(value, 'x').ok).toBe('boolean');
      }),
    );
  });
});
