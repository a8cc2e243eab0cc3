import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildPolicy, loadPolicy } from '../../../src/policy/load.js';
import { fakeFacts, issuesOf } from './policy-kit.js';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/policy/', import.meta.url));
/** Paths as an operator would pass them (relative to the working directory); they appear in the messages. */
const fixture = (...parts: string[]): string => relative(process.cwd(), join(FIXTURES, ...parts));

const yamlIn = (dir: string): string[] => readdirSync(join(FIXTURES, dir)).filter((name) => name.endsWith('.yaml')).sort();

/** Each broken fixture ends with `# expect: line:col: message` lines: exactly the errors it must produce. */
function expectedIssues(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('# expect: '))
    .map((line) => `${path}:${line.slice('# expect: '.length)}`);
}

describe('broken policy fixtures report every error at file:line:col', () => {
  it.each(yamlIn('broken'))('%s', async (name) => {
    const path = fixture('broken', name);
    const expected = expectedIssues(path);
    expect(expected.length).toBeGreaterThan(0);
    const result = await loadPolicy([path]);
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.errors.map((issue) => issue.format())).toEqual(expected);
  });
});

describe('good policy fixtures compile', () => {
  it.each(yamlIn('good').filter((name) => name !== 'uses-other-file-list.yaml' && name !== 'lists-only.yaml'))('%s', async (name) => {
    const result = await loadPolicy([fixture('good', name)]);
    expect(result.ok ? [] : result.errors.map((issue) => issue.format())).toEqual([]);
    expect(result.ok && result.policy.rules.length).toBeGreaterThan(0);
  });

  it('every-operator.yaml compiles every rule with the fields it reads', async () => {
    const result = await loadPolicy([fixture('good', 'every-operator.yaml')]);
    if (!result.ok) throw new Error(result.errors.map((issue) => issue.format()).join('\n'));
    expect(result.policy.rules.map((rule) => rule.id)).toContain('combinators');
    expect([...(result.policy.ruleById('combinators')?.fields ?? [])].sort()).toEqual(['destination.port', 'egress.tls.alpn', 'process.name']);
    expect([...(result.policy.ruleById('numbers')?.fields ?? [])].sort()).toEqual(['destination.port', 'egress.score']);
  });
});

describe('several policy files', () => {
  it('lets a rule use a list defined in a later file, and concatenates rules in file order', async () => {
    const result = await loadPolicy([fixture('good', 'uses-other-file-list.yaml'), fixture('good', 'lists-only.yaml'), fixture('good', 'minimal.yaml')]);
    if (!result.ok) throw new Error(result.errors.map((issue) => issue.format()).join('\n'));
    expect(result.policy.rules.map((rule) => rule.id)).toEqual(['block-doh', 'block-4444']);
    expect(result.policy.files).toHaveLength(3);
    expect(result.policy.lists.get('doh_resolvers')?.has('dns.google')).toBe(true);
    const decision = evaluatePolicy(result.policy, fakeFacts({ 'destination.domain': 'DNS.Google' }));
    expect(decision).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'block-doh' });
  });

  it('reports a duplicate list name and rule id at the second occurrence', async () => {
    const a = fixture('broken', 'cross-file', 'a.yaml');
    const b = fixture('broken', 'cross-file', 'b.yaml');
    const result = await loadPolicy([a, b]);
    expect(result.ok ? [] : result.errors.map((issue) => issue.format())).toEqual([
      `${b}:3:3: duplicate list "shared" (first defined at ${a}:3:3)`,
      `${b}:5:9: duplicate rule id "one" (first defined at ${a}:5:9)`,
    ]);
  });

  it('hashes the concatenated bytes, so order and content change the sha256', async () => {
    const one = await loadPolicy([fixture('good', 'minimal.yaml'), fixture('good', 'lists-only.yaml')]);
    const two = await loadPolicy([fixture('good', 'lists-only.yaml'), fixture('good', 'minimal.yaml')]);
    if (!one.ok || !two.ok) throw new Error('fixtures should compile');
    expect(one.policy.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(one.policy.sha256).not.toBe(two.policy.sha256);
  });

  it('reports an unreadable file at line 1 col 1 with POLICY_READ, and still checks the readable ones', async () => {
    const missing = fixture('good', 'does-not-exist.yaml');
    const result = await loadPolicy([missing, fixture('broken', 'wrong-version.yaml')]);
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors[0]?.format()).toBe(`${missing}:1:1: cannot read the policy file (ENOENT)`);
    expect(errors[0]?.code).toBe('POLICY_READ');
    expect(errors[1]?.format()).toBe(`${fixture('broken', 'wrong-version.yaml')}:1:10: version must be 1 (got number 2)`);
  });
});

describe('inline compile errors', () => {
  const cases: readonly [string, string, string[]][] = [
    ['a rule list that is not a list', 'version: 1\nrules: {}\n', ['inline.yaml:2:8: rules must be a list of rules, got a map']],
    ['a top-level list instead of a map', '- a\n', ['inline.yaml:1:1: expected a map with "version: 1", "lists" and "rules", got a list']],
    ['a list holding a map', 'version: 1\nlists:\n  l: [{a: 1}]\n', ['inline.yaml:3:7: list "l" may hold only strings, numbers and booleans, got a map']],
    ['a list referring to a list', 'version: 1\nlists:\n  l: [$m]\n', ['inline.yaml:3:7: list "l" cannot refer to another list ($m)']],
    ['an unknown top-level key with a suggestion', 'version: 1\nrule: []\n', ['inline.yaml:2:1: unknown key "rule" at the top level (did you mean "rules"?); expected one of version, lists, rules, scoring, tests']],
    ['a multi-document file', 'version: 1\n---\nversion: 1\n', ['inline.yaml:2:1: YAML syntax error: Source contains multiple documents; please use YAML.parseAllDocuments()']],
  ];
  it.each(cases)('%s', (_intent, text, expected) => {
    expect(issuesOf(text)).toEqual(expected);
  });

  it('refuses nesting deeper than 64 levels with one error, before it can strain the evaluator', () => {
    const text = `version: 1\nrules:\n  - id: x\n    when: ${'{ not: '.repeat(100)}{}${' }'.repeat(100)}\n    action: tag\n`;
    expect(issuesOf(text)).toEqual(['inline.yaml:4:445: nested more than 64 levels deep']);
  });

  it('refuses bytes that are not UTF-8', () => {
    const result = buildPolicy([{ file: 'bin.yaml', bytes: new Uint8Array([0xff, 0xfe, 0x00]) }]);
    expect(result.ok ? [] : result.errors.map((issue) => issue.format())).toEqual(['bin.yaml:1:1: the file is not valid UTF-8']);
  });
});
