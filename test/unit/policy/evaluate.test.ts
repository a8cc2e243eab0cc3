import { describe, expect, it } from 'vitest';
import type { FieldName, FlowFields } from '../../../src/flow/fields.js';
import type { Decision } from '../../../src/policy/decision.js';
import { createPolicyView, evaluatePolicy } from '../../../src/policy/evaluate.js';
import { compileYaml, fakeFacts } from './policy-kit.js';

/** Rules written compactly: `id action when [extra yaml]`. */
function policyOf(rules: string): ReturnType<typeof compileYaml> {
  return compileYaml(`version: 1\nlists:\n  hosts: [mshta.exe, rundll32.exe]\nrules:\n${rules}`);
}

interface Case {
  readonly name: string;
  readonly rules: string;
  readonly values: FlowFields;
  readonly pending?: readonly FieldName[];
  readonly expected: Partial<Record<keyof Decision | 'verdict' | 'ruleId' | 'pendingRuleId' | 'pendingFields', unknown>>;
}

const SCRIPT_HOST_THEN_PORT = `
  - id: script-host
    when: { process.name: { in: $hosts } }
    action: block
  - id: port-4444
    when: { destination.port: 4444 }
    action: block
  - id: allow-rest
    when: {}
    action: allow
`;

const CASES: readonly Case[] = [
  {
    name: 'tag then allow: the allow decides and keeps the tag',
    rules: `
  - id: tag-it
    when: { destination.port: 8443 }
    action: tag
    tags: [odd-port]
  - id: allow-it
    when: { destination.domain: example.com }
    action: allow
`,
    values: { 'destination.port': 8443, 'destination.domain': 'example.com' },
    expected: { status: 'final', verdict: 'allow', ruleId: 'allow-it', matchedRuleIds: ['tag-it', 'allow-it'], tags: ['odd-port'] },
  },
  {
    name: 'block before allow: the first deciding rule in file order wins',
    rules: `
  - id: block-it
    when: { destination.port: 4444 }
    action: block
  - id: allow-it
    when: { destination.domain: example.com }
    action: allow
`,
    values: { 'destination.port': 4444, 'destination.domain': 'example.com' },
    expected: { status: 'final', verdict: 'block', ruleId: 'block-it', matchedRuleIds: ['block-it'] },
  },
  {
    name: 'allow before block: the earlier allow wins',
    rules: `
  - id: allow-it
    when: { destination.domain: example.com }
    action: allow
  - id: block-it
    when: { destination.port: 4444 }
    action: block
`,
    values: { 'destination.port': 4444, 'destination.domain': 'example.com' },
    expected: { status: 'final', verdict: 'allow', ruleId: 'allow-it' },
  },
  {
    name: 'an earlier pending rule holds back a later rule that would decide',
    rules: SCRIPT_HOST_THEN_PORT,
    values: { 'destination.port': 4444 },
    pending: ['process.name'],
    expected: { status: 'pending', pendingRuleId: 'script-host', pendingFields: ['process.name'], matchedRuleIds: [] },
  },
  {
    name: 'the pending rule resolves when the hint arrives and matches',
    rules: SCRIPT_HOST_THEN_PORT,
    values: { 'destination.port': 4444, 'process.name': 'mshta.exe' },
    expected: { status: 'final', verdict: 'block', ruleId: 'script-host' },
  },
  {
    name: 'the pending rule resolves when the hint arrives and does not match; the next rule decides',
    rules: SCRIPT_HOST_THEN_PORT,
    values: { 'destination.port': 4444, 'process.name': 'chrome.exe' },
    expected: { status: 'final', verdict: 'block', ruleId: 'port-4444' },
  },
  {
    name: 'a field that can no longer arrive is absent: the rule does not match and the walk goes on',
    rules: SCRIPT_HOST_THEN_PORT,
    values: { 'destination.port': 443 },
    expected: { status: 'final', verdict: 'allow', ruleId: 'allow-rest', matchedRuleIds: ['allow-rest'] },
  },
  {
    name: 'a known false field decides a rule without waiting for its pending field',
    rules: `
  - id: script-host-4444
    when: { process.name: { in: $hosts }, destination.port: 4444 }
    action: block
  - id: allow-rest
    when: {}
    action: allow
`,
    values: { 'destination.port': 443 },
    pending: ['process.name'],
    expected: { status: 'final', verdict: 'allow', ruleId: 'allow-rest' },
  },
  {
    name: 'any with one true branch holds without waiting for a pending branch',
    rules: `
  - id: either
    when:
      any:
        - process.name: { in: $hosts }
        - destination.port: 4444
    action: block
`,
    values: { 'destination.port': 4444 },
    pending: ['process.name'],
    expected: { status: 'final', verdict: 'block', ruleId: 'either' },
  },
  {
    name: 'any with no true branch and a pending one is pending',
    rules: `
  - id: either
    when:
      any:
        - process.name: { in: $hosts }
        - destination.port: 4444
    action: block
`,
    values: { 'destination.port': 443 },
    pending: ['process.name'],
    expected: { status: 'pending', pendingRuleId: 'either', pendingFields: ['process.name'] },
  },
  {
    name: 'not of a pending field is pending',
    rules: `
  - id: not-sni
    when: { not: { tls.client.server_name: { exists: true } } }
    action: block
`,
    values: {},
    pending: ['tls.client.server_name'],
    expected: { status: 'pending', pendingRuleId: 'not-sni', pendingFields: ['tls.client.server_name'] },
  },
  {
    name: 'not of an absent field matches (a TLS flow without SNI, once the ClientHello is in)',
    rules: `
  - id: not-sni
    when: { not: { tls.client.server_name: { exists: true } } }
    action: block
`,
    values: {},
    expected: { status: 'final', verdict: 'block', ruleId: 'not-sni' },
  },
  {
    name: 'exists: false matches a field that is absent for good',
    rules: `
  - id: ip-literal
    when: { destination.domain: { exists: false } }
    action: tag
    tags: [raw-ip]
`,
    values: { 'destination.ip': '203.0.113.5' },
    expected: { status: 'final', verdict: 'allow', ruleId: null, tags: ['raw-ip'], matchedRuleIds: ['ip-literal'] },
  },
  {
    name: 'pendingFields lists only the fields still to come, not the known ones',
    rules: `
  - id: late
    when: { process.name: { in: $hosts }, tls.client.ja3: abc, destination.port: 443 }
    action: block
`,
    values: { 'destination.port': 443 },
    pending: ['process.name', 'tls.client.ja3'],
    expected: { status: 'pending', pendingFields: ['process.name', 'tls.client.ja3'] },
  },
  {
    name: 'a pending decision carries what matched before it',
    rules: `
  - id: tag-first
    when: { destination.port: 443 }
    action: bump
    severity: low
    tags: [tls]
  - id: late
    when: { process.name: { in: $hosts } }
    action: block
`,
    values: { 'destination.port': 443 },
    pending: ['process.name'],
    expected: { status: 'pending', pendingRuleId: 'late', matchedRuleIds: ['tag-first'], tags: ['tls'], severity: 'low', tunnel: 'bump' },
  },
  {
    name: 'the first matching bump/splice sets the tunnel mode (bump first)',
    rules: `
  - id: bump-it
    when: { destination.port: 443 }
    action: bump
  - id: splice-it
    when: { destination.port: 443 }
    action: splice
`,
    values: { 'destination.port': 443 },
    expected: { status: 'final', verdict: 'allow', tunnel: 'bump', matchedRuleIds: ['bump-it', 'splice-it'] },
  },
  {
    name: 'the first matching bump/splice sets the tunnel mode (splice first)',
    rules: `
  - id: splice-it
    when: { destination.port: 443 }
    action: splice
  - id: bump-it
    when: { destination.port: 443 }
    action: bump
`,
    values: { 'destination.port': 443 },
    expected: { status: 'final', tunnel: 'splice', matchedRuleIds: ['splice-it', 'bump-it'] },
  },
  {
    name: 'the tunnel mode defaults to splice',
    rules: `
  - id: bump-other
    when: { destination.port: 8443 }
    action: bump
`,
    values: { 'destination.port': 443 },
    expected: { status: 'final', tunnel: 'splice', matchedRuleIds: [] },
  },
  {
    name: 'severity is the highest of the matched rules and tags are de-duplicated in order',
    rules: `
  - id: low
    when: {}
    action: tag
    severity: low
    tags: [a, b]
  - id: critical
    when: {}
    action: tag
    severity: critical
    tags: [b, c]
  - id: medium
    when: {}
    action: block
    severity: medium
    tags: [a, d]
`,
    values: {},
    expected: { status: 'final', verdict: 'block', ruleId: 'medium', severity: 'critical', tags: ['a', 'b', 'c', 'd'] },
  },
  {
    name: 'no rule matches: allow with no rule id and no severity',
    rules: SCRIPT_HOST_THEN_PORT.split('  - id: allow-rest')[0] ?? '',
    values: { 'destination.port': 80, 'process.name': 'chrome.exe' },
    expected: { status: 'final', verdict: 'allow', ruleId: null, severity: null, matchedRuleIds: [], tags: [], tunnel: 'splice', reasons: [] },
  },
];

describe('evaluatePolicy: order and pending semantics', () => {
  it.each(CASES)('$name', ({ rules, values, pending, expected }) => {
    const decision = evaluatePolicy(policyOf(rules), fakeFacts(values, pending));
    expect(decision).toMatchObject(expected);
  });

  it('explains every matched rule in words', () => {
    const policy = policyOf(`
  - id: script-host
    when: { process.name: { in: $hosts }, destination.port: { not_in: [80, 443] } }
    action: block
`);
    const decision = evaluatePolicy(policy, fakeFacts({ 'process.name': 'mshta.exe', 'destination.port': 4444 }));
    expect(decision.reasons).toEqual([
      'rule script-host: process.name is one of $hosts [mshta.exe, rundll32.exe] and destination.port is not one of [80, 443]',
    ]);
  });

  it('does not change a decision when the same facts are evaluated again', () => {
    const policy = policyOf(SCRIPT_HOST_THEN_PORT);
    const facts = fakeFacts({ 'destination.port': 4444, 'process.name': 'rundll32.exe' });
    expect(evaluatePolicy(policy, facts)).toEqual(evaluatePolicy(policy, facts));
  });
});

describe('createPolicyView: which allow rules may open internal destinations', () => {
  const policy = policyOf(`
  - id: allow-wiki
    when: { destination.domain: wiki.corp.example }
    action: allow
  - id: allow-internal
    when: { egress.destination.internal: true, process.name: backup.exe }
    action: allow
  - id: allow-chrome
    when: { process.name: chrome.exe }
    action: allow
  - id: block-metadata
    when: { destination.ip: 169.254.169.254 }
    action: block
`);
  const view = createPolicyView(policy);
  it.each([
    ['allow-wiki', true],
    ['allow-internal', true],
    ['allow-chrome', false],
    ['block-metadata', false],
    ['no-such-rule', false],
  ] as const)('%s → %s', (id, opens) => {
    expect(view.opensInternal(id)).toBe(opens);
  });

  it('evaluates through the compiled policy', () => {
    expect(view.evaluate(fakeFacts({ 'process.name': 'chrome.exe' }))).toMatchObject({ status: 'final', ruleId: 'allow-chrome' });
  });
});

describe('pending tag rules never hold a verdict up', () => {
  const policy = compileYaml(`version: 1
rules:
  - id: lolbin-tag
    when: { process.name: rundll32.exe }
    action: tag
    severity: medium
    tags: [an0922]
  - id: web
    when: { destination.port: 443 }
    action: allow
`);

  it('decides on a later rule while a tag rule waits for late facts, and names the deferred rule', () => {
    const d = evaluatePolicy(policy, fakeFacts({ 'destination.port': 443 }, ['process.name']));
    expect(d).toMatchObject({ status: 'final', verdict: 'allow', ruleId: 'web', matchedRuleIds: ['web'], tags: [], deferredRuleIds: ['lolbin-tag'] });
  });

  it('a block or allow rule that is pending still holds the verdict (file order wins)', () => {
    const strict = compileYaml('version: 1\nrules:\n  - id: p\n    when: { process.name: rundll32.exe }\n    action: block\n  - id: web\n    when: { destination.port: 443 }\n    action: allow\n');
    expect(evaluatePolicy(strict, fakeFacts({ 'destination.port': 443 }, ['process.name']))).toMatchObject({ status: 'pending', pendingRuleId: 'p' });
  });

  it('completeDeferred adds the tags and severity once the facts are known, and nothing when they never came', () => {
    const view = createPolicyView(policy);
    const d = evaluatePolicy(policy, fakeFacts({ 'destination.port': 443 }, ['process.name']));
    if (d.status !== 'final') throw new Error('expected a final decision');
    const late = view.completeDeferred(d, fakeFacts({ 'destination.port': 443, 'process.name': 'RUNDLL32.EXE' }));
    expect(late).toMatchObject({ verdict: 'allow', ruleId: 'web', tags: ['an0922'], severity: 'medium', matchedRuleIds: ['web', 'lolbin-tag'] });
    expect(late.deferredRuleIds).toBeUndefined();
    const never = view.completeDeferred(d, fakeFacts({ 'destination.port': 443 }));
    expect(never).toMatchObject({ tags: [], severity: null, matchedRuleIds: ['web'] });
    expect(never.deferredRuleIds).toBeUndefined();
  });
});
