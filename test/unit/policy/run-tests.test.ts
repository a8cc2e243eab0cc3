import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPolicy } from '../../../src/policy/load.js';
import { formatTestFailures, runPolicyTests } from '../../../src/policy/run-tests.js';
import { compileYaml, issuesOf } from './policy-kit.js';

const SHIPPED = ['policies/never-bump.yaml', 'policies/default.yaml'];

describe('policy tests: the shipped policies', () => {
  it('every test of the default policy files passes, loaded together as the proxy loads them', async () => {
    const loaded = await loadPolicy(SHIPPED);
    if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.format()).join('\n'));
    const results = runPolicyTests(loaded.policy);
    expect(results.length).toBeGreaterThanOrEqual(30);
    expect(results.flatMap(formatTestFailures)).toEqual([]);
  });

  it('every shipped rule has a test in which it matches and a look-alike in which it does not', async () => {
    const loaded = await loadPolicy(SHIPPED);
    if (!loaded.ok) throw new Error('invalid');
    const results = runPolicyTests(loaded.policy);
    for (const rule of loaded.policy.rules) {
      const matched = results.filter((r) => r.decision.matchedRuleIds.includes(rule.id));
      expect(matched.length, `${rule.id}: a test where it matches`).toBeGreaterThan(0);
      expect(results.length - matched.length, `${rule.id}: a test where it does not`).toBeGreaterThan(0);
    }
  });

  it('the default policy alone (policy check policies/default.yaml) passes its tests too', async () => {
    const loaded = await loadPolicy(['policies/default.yaml']);
    if (!loaded.ok) throw new Error('invalid');
    expect(runPolicyTests(loaded.policy).flatMap(formatTestFailures)).toEqual([]);
  });
});

describe('policy tests: outcomes equal the proxy', () => {
  const policy = (tests: string, rules = '') =>
    compileYaml(`version: 1\nrules:\n  - id: r1\n    when: { destination.port: 4444 }\n    action: block\n    severity: high\n    tags: [c2]\n${rules}tests:\n${tests}`, 't.yaml');

  it('reports a wrong action with the rule that decided, at the test position', () => {
    const p = policy('  - name: n\n    flow: { destination.port: 4444 }\n    expect: { action: allow }\n');
    expect(runPolicyTests(p).flatMap(formatTestFailures)).toEqual(['t.yaml:9:5: test "n": expected action allow, got block (rule r1)']);
  });

  it('checks rule, tags (exact, any order) and alert, one line per unmet expectation', () => {
    const p = policy('  - name: n\n    flow: { destination.port: 80 }\n    expect: { rule: r1, tags: [c2], alert: true }\n');
    expect(runPolicyTests(p)[0]?.failures).toEqual([
      'expected rule r1, got no rule decided (action allow)',
      'expected tags [c2], got none (matched none)',
      'expected an alert, got none (matched none)',
    ]);
  });

  it('a field missing from the flow is absent, not pending (exists: false matches it)', () => {
    const p = compileYaml(
      'version: 1\nrules:\n  - id: no-process\n    when: { process.name: { exists: false } }\n    action: block\ntests:\n  - name: n\n    flow: { destination.port: 443 }\n    expect: { action: block, rule: no-process }\n',
    );
    expect(runPolicyTests(p)[0]?.failures).toEqual([]);
  });

  it('applies the internal-destination default unless the allowing rule names the destination', () => {
    const text = `version: 1
rules:
  - id: blanket
    when: { destination.port: 443 }
    action: allow
  - id: wiki
    when: { destination.domain: wiki.corp.example }
    action: allow
tests:
  - name: blanket allow does not open an internal address
    flow: { destination.domain: db.corp.example, destination.port: 443, destination.internal: true }
    expect: { action: block, rule: 'builtin:internal-destination' }
  - name: a rule naming the destination opens it
    flow: { destination.domain: wiki.corp.example, destination.port: 80, egress.destination.internal: true }
    expect: { action: allow, rule: wiki }
`;
    expect(runPolicyTests(compileYaml(text)).flatMap((r) => r.failures)).toEqual([]);
  });

  it('nested flow maps and old field names mean the same fields', () => {
    const p = compileYaml(
      'version: 1\nrules:\n  - id: r\n    when: { tls.client.ja4: t13d1516h2_8daaf6152771_e5627efa2ab1, egress.destination.ip_literal: true }\n    action: block\ntests:\n  - name: n\n    flow:\n      tls: { client: { ja4: t13d1516h2_8daaf6152771_e5627efa2ab1 } }\n      destination: { ip_literal: true }\n    expect: { action: block }\n',
    );
    expect(runPolicyTests(p)[0]?.failures).toEqual([]);
  });

  it('expects shadow matches, which never decide', () => {
    const p = policy(
      '  - name: n\n    flow: { destination.port: 80, process.name: rundll32.exe }\n    expect: { action: allow, alert: false, shadow: [s] }\n',
      '  - id: s\n    mode: shadow\n    when: { process.name: rundll32.exe }\n    action: block\n    severity: high\n',
    );
    expect(runPolicyTests(p)[0]?.failures).toEqual([]);
  });
});

describe('policy tests: errors in tests: are load errors at file:line:col', () => {
  const base = 'version: 1\nrules:\n  - id: r1\n    when: { destination.port: 1 }\n    action: block\n  - id: s1\n    mode: shadow\n    when: {}\n    action: block\ntests:\n';
  it.each([
    ['an unknown field, with a suggestion', '  - name: n\n    flow: { process.nmae: x }\n    expect: { action: block }\n', ['inline.yaml:12:13: test flow: unknown field "process.nmae" (did you mean "process.name"?)']],
    ['a value of the wrong type', '  - name: n\n    flow: { destination.port: "443" }\n    expect: { action: block }\n', ['inline.yaml:12:31: test flow: destination.port needs a number, got string "443"']],
    ['an IP field that is not an address', '  - name: n\n    flow: { destination.ip: nope }\n    expect: { action: block }\n', ['inline.yaml:12:29: test flow: destination.ip needs an IP address, got string "nope"']],
    ['a field the decision writes', '  - name: n\n    flow: { rule.id: r1 }\n    expect: { action: block }\n', [expect.stringMatching(/^inline\.yaml:12:13: test flow: "rule\.id" is written by the decision/)]],
    ['an unknown rule in expect, with a suggestion', '  - name: n\n    flow: {}\n    expect: { rule: r2 }\n', ['inline.yaml:13:21: test "n": expect.rule names no rule "r2" (did you mean "r1"?)']],
    ['a shadow rule as the deciding rule', '  - name: n\n    flow: {}\n    expect: { rule: s1 }\n', [expect.stringMatching(/"s1" is a shadow rule, which never decides/)]],
    ['a live rule under shadow', '  - name: n\n    flow: {}\n    expect: { shadow: [r1] }\n', [expect.stringMatching(/expect\.shadow: "r1" is not a shadow rule/)]],
    ['an empty expect', '  - name: n\n    flow: {}\n    expect: {}\n', ['inline.yaml:13:13: expect needs at least one of action, rule, rules, tags, alert, shadow']],
    ['an unknown expect key', '  - name: n\n    flow: {}\n    expect: { verdict: block }\n', [expect.stringMatching(/^inline\.yaml:13:15: unknown key "verdict" in expect/)]],
    ['a missing name', '  - flow: {}\n    expect: { action: block }\n', ['inline.yaml:11:5: a test needs "name"']],
    ['a duplicate name', '  - name: n\n    flow: {}\n    expect: { action: allow }\n  - name: n\n    flow: {}\n    expect: { action: allow }\n', [expect.stringMatching(/^inline\.yaml:14:5: duplicate test name "n" \(first at inline\.yaml:11:5\)/)]],
    ['tests that are not a list', '  name: n\n', ['inline.yaml:11:3: tests must be a list of tests (name, flow, expect), got a map']],
  ])('%s', (_name, tests, expected) => {
    expect(issuesOf(base + tests)).toEqual(expected);
  });
});

describe('policies/schema.json', () => {
  it('describes mode and tests (regenerated by scripts/gen-policy-schema.ts)', () => {
    const schema = JSON.parse(readFileSync('policies/schema.json', 'utf8')) as {
      properties: Record<string, { items?: { $ref?: string } }>;
      $defs: { rule: { properties: Record<string, { enum?: string[] }> }; test: { required: string[]; properties: { expect: { properties: Record<string, unknown> }; flow: { properties: Record<string, unknown> } } } };
    };
    expect(schema.$defs.rule.properties['mode']?.enum).toEqual(['live', 'shadow']);
    expect(schema.properties['tests']?.items?.$ref).toBe('#/$defs/test');
    expect(schema.$defs.test.required).toEqual(['name', 'flow', 'expect']);
    expect(Object.keys(schema.$defs.test.properties.expect.properties)).toEqual(['action', 'rule', 'rules', 'tags', 'alert', 'shadow']);
    expect(schema.$defs.test.properties.flow.properties['process.name']).toMatchObject({ type: 'string' });
  });
});
