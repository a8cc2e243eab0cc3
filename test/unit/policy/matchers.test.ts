import { describe, expect, it } from 'vitest';
import type { FieldName, FlowFields } from '../../../src/flow/fields.js';
import type { CompiledPolicy } from '../../../src/policy/compile.js';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';
import { MATCHERS, OPERATORS, parseCidr, parseIp } from '../../../src/policy/matchers.js';
import { fakeFacts, issuesOf, ruleWhen } from './policy-kit.js';

type Outcome = 'match' | 'no match' | 'pending';

function outcomeOf(policy: CompiledPolicy, values: FlowFields, pending: readonly FieldName[] = []): Outcome {
  const decision = evaluatePolicy(policy, fakeFacts(values, pending));
  if (decision.status === 'pending') return 'pending';
  return decision.ruleId === 'r' ? 'match' : 'no match';
}

const LISTS = [
  '  hosts: [rundll32.exe, MSHTA.exe]',
  '  web_ports: [80, 443]',
  '  private: [10.0.0.0/8, "fc00::/7"]',
  '  h2: [h2]',
].join('\n');

interface Case {
  readonly name: string;
  readonly when: string;
  readonly values: FlowFields;
  readonly pending?: readonly FieldName[];
  readonly expected: Outcome;
}

const CASES: readonly Case[] = [
  // literal equality
  { name: 'a text literal matches ignoring case', when: '{ process.name: RUNDLL32.EXE }', values: { 'process.name': 'rundll32.exe' }, expected: 'match' },
  { name: 'a text literal does not match another value', when: '{ process.name: rundll32.exe }', values: { 'process.name': 'chrome.exe' }, expected: 'no match' },
  { name: 'a number literal matches the same number', when: '{ destination.port: 4444 }', values: { 'destination.port': 4444 }, expected: 'match' },
  { name: 'a number literal does not match another number', when: '{ destination.port: 4444 }', values: { 'destination.port': 443 }, expected: 'no match' },
  { name: 'a boolean literal matches', when: '{ egress.destination.internal: false }', values: { 'egress.destination.internal': false }, expected: 'match' },
  { name: 'a boolean literal does not match its opposite', when: '{ egress.destination.internal: false }', values: { 'egress.destination.internal': true }, expected: 'no match' },
  { name: 'an IP literal matches the IPv4-mapped form', when: '{ destination.ip: 10.1.2.3 }', values: { 'destination.ip': '::ffff:10.1.2.3' }, expected: 'match' },
  { name: 'an IPv6 literal matches another spelling of it', when: '{ destination.ip: "2001:DB8::1" }', values: { 'destination.ip': '2001:db8:0:0:0:0:0:1' }, expected: 'match' },
  { name: 'a literal on an array field matches any element', when: '{ egress.tls.alpn: h2 }', values: { 'egress.tls.alpn': ['http/1.1', 'h2'] }, expected: 'match' },
  { name: '$$ escapes a literal dollar', when: '{ url.path: $$HOME }', values: { 'url.path': '$home' }, expected: 'match' },
  // in / not_in
  { name: 'in $list matches ignoring case of the list item', when: '{ process.name: { in: $hosts } }', values: { 'process.name': 'mshta.exe' }, expected: 'match' },
  { name: 'in expands $list items inside an array', when: '{ process.name: { in: [$hosts, wscript.exe] } }', values: { 'process.name': 'WScript.exe' }, expected: 'match' },
  { name: 'in does not match a value outside the list', when: '{ process.name: { in: $hosts } }', values: { 'process.name': 'chrome.exe' }, expected: 'no match' },
  { name: 'in on numbers', when: '{ destination.port: { in: $web_ports } }', values: { 'destination.port': 443 }, expected: 'match' },
  { name: 'in on IPs compares canonical forms', when: '{ destination.ip: { in: ["::1", 192.0.2.7] } }', values: { 'destination.ip': '0:0:0:0:0:0:0:1' }, expected: 'match' },
  { name: 'not_in matches a value outside the list', when: '{ destination.port: { not_in: $web_ports } }', values: { 'destination.port': 4444 }, expected: 'match' },
  { name: 'not_in does not match a value in the list', when: '{ destination.port: { not_in: $web_ports } }', values: { 'destination.port': 80 }, expected: 'no match' },
  { name: 'not_in on an array field fails when any element is in the list', when: '{ egress.tls.alpn: { not_in: $h2 } }', values: { 'egress.tls.alpn': ['http/1.1', 'h2'] }, expected: 'no match' },
  { name: 'not_in on an array field holds when no element is in the list', when: '{ egress.tls.alpn: { not_in: $h2 } }', values: { 'egress.tls.alpn': ['http/1.1'] }, expected: 'match' },
  { name: 'in on an array field matches when any element is in the list', when: '{ egress.tls.alpn: { in: [H2] } }', values: { 'egress.tls.alpn': ['http/1.1', 'h2'] }, expected: 'match' },
  // text operators
  { name: 'contains ignores case', when: '{ url.path: { contains: /GATE.php } }', values: { 'url.path': '/x/gate.PHP?id=1' }, expected: 'match' },
  { name: 'contains does not match absent text', when: '{ url.path: { contains: gate } }', values: { 'url.path': '/index.html' }, expected: 'no match' },
  { name: 'startswith takes a list of prefixes', when: '{ user_agent.original: { startswith: [curl/, python-requests/] } }', values: { 'user_agent.original': 'Python-Requests/2.31' }, expected: 'match' },
  { name: 'startswith does not match a suffix', when: '{ user_agent.original: { startswith: curl/ } }', values: { 'user_agent.original': 'x curl/8' }, expected: 'no match' },
  { name: 'endswith matches a domain suffix', when: '{ destination.domain: { endswith: .ONION } }', values: { 'destination.domain': 'abc.onion' }, expected: 'match' },
  { name: 'endswith accepts a $list', when: '{ process.name: { endswith: $hosts } }', values: { 'process.name': 'x-mshta.exe' }, expected: 'match' },
  { name: 'contains on an array field matches any element', when: '{ egress.reasons: { contains: entropy } }', values: { 'egress.reasons': ['rare port', 'high entropy name'] }, expected: 'match' },
  // regex
  { name: 'regex is case-sensitive', when: '{ url.path: { regex: "^/gate" } }', values: { 'url.path': '/GATE.php' }, expected: 'no match' },
  { name: 'regex matches', when: '{ url.path: { regex: "^/[a-f0-9]{8}$" } }', values: { 'url.path': '/deadbeef' }, expected: 'match' },
  { name: 'regex with (?i) ignores case', when: '{ url.path: { regex: "(?i)^/gate" } }', values: { 'url.path': '/GATE.php' }, expected: 'match' },
  // cidr
  { name: 'cidr matches an IPv4 address inside', when: '{ destination.ip: { cidr: 10.0.0.0/8 } }', values: { 'destination.ip': '10.200.3.4' }, expected: 'match' },
  { name: 'cidr does not match an IPv4 address outside', when: '{ destination.ip: { cidr: 10.0.0.0/8 } }', values: { 'destination.ip': '11.0.0.1' }, expected: 'no match' },
  { name: 'cidr treats an IPv4-mapped IPv6 address as the IPv4 inside', when: '{ destination.ip: { cidr: $private } }', values: { 'destination.ip': '::ffff:10.9.8.7' }, expected: 'match' },
  { name: 'cidr matches IPv6 ranges', when: '{ destination.ip: { cidr: $private } }', values: { 'destination.ip': 'fd12:3456::1' }, expected: 'match' },
  { name: 'cidr does not match IPv6 outside the range', when: '{ destination.ip: { cidr: $private } }', values: { 'destination.ip': '2001:db8::1' }, expected: 'no match' },
  { name: 'cidr written in mapped form is the IPv4 range', when: '{ destination.ip: { cidr: "::ffff:192.168.0.0/112" } }', values: { 'destination.ip': '192.168.4.4' }, expected: 'match' },
  { name: 'cidr with a bare address matches that host only', when: '{ destination.ip: { cidr: 169.254.169.254 } }', values: { 'destination.ip': '169.254.169.254' }, expected: 'match' },
  { name: 'cidr /0 matches every IPv4 address', when: '{ destination.ip: { cidr: 0.0.0.0/0 } }', values: { 'destination.ip': '203.0.113.9' }, expected: 'match' },
  { name: 'cidr does not match a value that is not an IP', when: '{ destination.ip: { cidr: 0.0.0.0/0 } }', values: { 'destination.ip': 'not-an-ip' }, expected: 'no match' },
  // numbers
  { name: 'gt is strict', when: '{ destination.port: { gt: 1024 } }', values: { 'destination.port': 1024 }, expected: 'no match' },
  { name: 'gte includes the bound', when: '{ destination.port: { gte: 1024 } }', values: { 'destination.port': 1024 }, expected: 'match' },
  { name: 'lt is strict', when: '{ egress.score: { lt: 50 } }', values: { 'egress.score': 50 }, expected: 'no match' },
  { name: 'lte includes the bound', when: '{ egress.score: { lte: 50 } }', values: { 'egress.score': 50 }, expected: 'match' },
  { name: 'several operators in one object must all hold', when: '{ destination.port: { gt: 1024, lt: 2000 } }', values: { 'destination.port': 4444 }, expected: 'no match' },
  { name: 'several operators in one object hold together', when: '{ destination.port: { gt: 1024, lt: 2000 } }', values: { 'destination.port': 1500 }, expected: 'match' },
  // exists, absent and pending fields
  { name: 'exists: true matches a present field', when: '{ tls.client.server_name: { exists: true } }', values: { 'tls.client.server_name': 'a.example' }, expected: 'match' },
  { name: 'exists: true does not match an absent field', when: '{ tls.client.server_name: { exists: true } }', values: {}, expected: 'no match' },
  { name: 'exists: false matches an absent field', when: '{ tls.client.server_name: { exists: false } }', values: {}, expected: 'match' },
  { name: 'exists: false does not match a present field', when: '{ tls.client.server_name: { exists: false } }', values: { 'tls.client.server_name': 'a.example' }, expected: 'no match' },
  { name: 'exists: false waits for a pending field', when: '{ tls.client.server_name: { exists: false } }', values: {}, pending: ['tls.client.server_name'], expected: 'pending' },
  { name: 'not_in does not match an absent field', when: '{ destination.port: { not_in: $web_ports } }', values: {}, expected: 'no match' },
  { name: 'a literal does not match an absent field', when: '{ process.name: rundll32.exe }', values: {}, expected: 'no match' },
  { name: 'a matcher on a pending field is pending', when: '{ process.name: { in: $hosts } }', values: {}, pending: ['process.name'], expected: 'pending' },
];

describe('matchers', () => {
  it.each(CASES)('$name', ({ when, values, pending, expected }) => {
    expect(outcomeOf(ruleWhen(when, LISTS), values, pending)).toBe(expected);
  });

  it('has one table entry per SPEC operator, plus equals for literals', () => {
    expect(Object.keys(MATCHERS).sort()).toEqual([...OPERATORS, 'equals'].sort());
  });
});

describe('matcher explanations', () => {
  const explained: readonly [string, string][] = [
    ['{ process.name: { in: $hosts } }', 'process.name is one of $hosts [rundll32.exe, MSHTA.exe]'],
    ['{ destination.port: { not_in: [80, 443] } }', 'destination.port is not one of [80, 443]'],
    ['{ destination.port: 4444 }', 'destination.port is 4444'],
    ['{ url.path: { contains: gate } }', 'url.path contains "gate"'],
    ['{ destination.ip: { cidr: 10.0.0.0/8 } }', 'destination.ip is in 10.0.0.0/8'],
    ['{ destination.port: { gte: 1024 } }', 'destination.port is at least 1024'],
    ['{ url.path: { regex: "^/x" } }', 'url.path matches /^/x/'],
    ['{ tls.client.server_name: { exists: false } }', 'tls.client.server_name is absent'],
    ['{ any: [ { destination.port: 1 }, { destination.port: { gt: 2, lt: 3 } } ] }', 'destination.port is 1 or (destination.port is greater than 2 and destination.port is less than 3)'],
    ['{ not: { destination.port: 1 } }', 'not (destination.port is 1)'],
    ['{}', 'every flow'],
  ];
  it.each(explained)('%s reads as "%s"', (when, text) => {
    expect(ruleWhen(when, LISTS).rules[0]?.reason).toBe(`rule r: ${text}`);
  });

  it('shortens long lists so a reason stays one readable line', () => {
    const policy = ruleWhen('{ destination.port: { in: [1, 2, 3, 4, 5, 6, 7, 8] } }');
    expect(policy.rules[0]?.reason).toBe('rule r: destination.port is one of [1, 2, 3, 4, 5 … 3 more]');
  });
});

describe('matcher type errors', () => {
  const broken: readonly [string, string, string][] = [
    ['exists needs a boolean', '{ process.name: { exists: "yes" } }', 'exists needs true or false, got string "yes"'],
    ['regex takes one pattern', '{ url.path: { regex: [a, b] } }', 'regex needs one pattern string, got a list'],
    ['gt needs a number', '{ destination.port: { gt: [1] } }', 'gt needs a number, got a list'],
    ['in needs a list', '{ destination.port: { in: 80 } }', 'in needs a list, e.g. { in: [a, b] } or { in: $name }'],
    ['contains needs a text field', '{ destination.port: { contains: "4" } }', 'contains works on text fields; destination.port (number) is not one'],
    ['regex needs a text field', '{ egress.destination.internal: { regex: "x" } }', 'regex works on text fields; egress.destination.internal (boolean) is not one'],
    ['an IP literal must be an IP', '{ destination.ip: 10.0.0.0/8 }', 'invalid IP address string "10.0.0.0/8" for destination.ip; use cidr for ranges'],
    ['a mapped CIDR must stay inside the mapped block', '{ destination.ip: { cidr: "::ffff:0.0.0.0/95" } }', 'invalid CIDR string "::ffff:0.0.0.0/95"'],
    ['a boolean field needs a boolean', '{ egress.destination.internal: "no" }', 'equals on egress.destination.internal (boolean) needs true or false, got string "no"'],
    ['a literal needs a value', '{ process.name: }', 'process.name needs a value; to match a missing field use { exists: false }'],
    ['an operator cannot be empty', '{ process.name: {} }', 'process.name: {} has no operator; expected one of in, not_in, contains, startswith, endswith, regex, cidr, gt, gte, lt, lte, exists'],
    ['a field name where an operator goes hints at combinators', '{ process.name: { destination.port: 1 } }', 'unknown operator "destination.port" (to combine fields, use all/any/not); expected one of in, not_in, contains, startswith, endswith, regex, cidr, gt, gte, lt, lte, exists'],
    ['a lone $ is neither a list nor a literal', '{ url.path: { contains: "$" } }', '"$" is not a list reference; a text starting with $ must be written $$'],
    ['not takes one map', '{ not: [ { destination.port: 1 } ] }', 'not needs one map of conditions, got a list'],
  ];
  it.each(broken)('%s', (_intent, when, message) => {
    const issues = issuesOf(`version: 1\nrules:\n  - id: r\n    when: ${when}\n    action: block\n`);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^inline\.yaml:4:\d+: /);
    expect(issues[0]?.replace(/^inline\.yaml:4:\d+: /, '')).toBe(message);
  });
});

describe('IP parsing', () => {
  it('refuses forms that some stacks read differently (leading zeros, short forms)', () => {
    expect(parseIp('010.0.0.1')).toBeNull();
    expect(parseIp('10.1')).toBeNull();
    expect(parseIp('256.0.0.1')).toBeNull();
    expect(parseIp('1.2.3.4 ')).toBeNull();
    expect(parseIp('1.2.3.4')?.canonical).toBe('1.2.3.4');
  });

  it('treats IPv4-mapped IPv6 as the IPv4 inside', () => {
    expect(parseIp('::ffff:7f00:1')?.canonical).toBe('127.0.0.1');
  });

  it('parses CIDRs and refuses bad prefixes', () => {
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(parseCidr('10.0.0.0/08')).toBeNull();
    expect(parseCidr('fe80::/129')).toBeNull();
    expect(parseCidr('fe80::/10')?.prefix).toBe(10);
  });

  it('exposes the compile signature the table promises', () => {
    const matcher = MATCHERS.cidr.compile(
      { kind: 'scalar', value: '192.168.0.0/16', pos: { file: 'f', line: 1, col: 1 } },
      { field: 'destination.ip', type: 'ip' },
      { file: 'f', line: 1, col: 1 },
    );
    expect(matcher.test('192.168.1.1')).toBe(true);
    expect(matcher.test('192.169.1.1')).toBe(false);
    expect(matcher.explain()).toBe('destination.ip is in 192.168.0.0/16');
  });
});
