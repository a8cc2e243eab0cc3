import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';
import { compileSafeRegex, nestedRepetition } from '../../../src/policy/regex-safety.js';
import { fakeFacts, issuesOf, ruleWhen } from './policy-kit.js';

describe('nestedRepetition', () => {
  it.each([
    ['^(a+)+$', '(a+)+'],
    ['(a*)*', '(a*)*'],
    ['^(\\w+\\s?)*$', '(\\w+\\s?)*'],
    ['(.*,){2,}x', '(.*,){2,}'],
    ['((ab)+c)*', '((ab)+c)*'],
    ['(x(a|b+))+', '(x(a|b+))+'],
    ['(a+?)+?', '(a+?)+?'],
    ['(?:[a-z]+\\.){2,5}', '(?:[a-z]+\\.){2,5}'],
    ['(?<word>\\d+)*', '(?<word>\\d+)*'],
  ])('finds the repeated group holding an unbounded repetition in %s', (source, found) => {
    expect(nestedRepetition(source)).toBe(found);
  });

  it.each([
    'a+b+c*',
    '(ab)+',
    '(\\d{1,3}\\.){3}\\d{1,3}',
    '[(+)]*x+',
    '\\(a+\\)+',
    '(a{2,5}){2}',
    '(a+)?',
    '(a+){1}',
    '^/[a-f0-9]{32}$',
    '(?=.*admin)(?:x+)',
    '[\\]a+]+',
    'a{2,}b{,3}',
  ])('accepts %s (no nested unbounded repetition)', (source) => {
    expect(nestedRepetition(source)).toBeNull();
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const r = nestedRepetition(s);
        expect(r === null || typeof r === 'string').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('compileSafeRegex', () => {
  it('runs nested repetition on the linear-time engine: an input that would take 2^40 steps answers at once', () => {
    const re = compileSafeRegex('^(a+)+$', '');
    expect(re.flags).toContain('l');
    // On the backtracking engine this never finishes (the test would time out).
    expect(re.test(`${'a'.repeat(40)}b`)).toBe(false);
    expect(re.test('aaaa')).toBe(true);
  });

  it('leaves a pattern without nesting on the usual engine', () => {
    expect(compileSafeRegex('^/[a-f0-9]{32}$', '').flags).toBe('');
    expect(compileSafeRegex('(?=x)a+', 'i').flags).toBe('i');
  });

  it('refuses nesting the linear engine cannot run, naming the group and why', () => {
    expect(() => compileSafeRegex('^(a+)+$', 'i')).toThrow(/\(a\+\)\+ repeats a group .*\(\?i\)/);
    expect(() => compileSafeRegex('(?=x)(a*)*', '')).toThrow(/\(a\*\)\* repeats a group .*lookarounds/);
    expect(() => compileSafeRegex('(\\w+\\s?)*\\1', '')).toThrow(/ReDoS/);
  });

  it('reports an invalid pattern as new RegExp does', () => {
    expect(() => compileSafeRegex('(a+', '')).toThrow(SyntaxError);
  });

  it('gives the same answers on the linear engine as on the backtracking one (generated patterns and inputs)', () => {
    const atom = fc.constantFrom('a', 'b', '.', '[ab]', '\\w', 'ab', 'a|b');
    const inner = fc.tuple(atom, fc.constantFrom('+', '*', '{1,}', '+?')).map(([a, q]) => `(?:${a})${q}`);
    const pattern = fc
      .tuple(fc.constantFrom('', '^'), fc.array(inner, { minLength: 1, maxLength: 2 }), fc.constantFrom('+', '*', '{2,}', '{2,3}'), fc.constantFrom('', 'b', '$'))
      .map(([anchor, parts, q, tail]) => `${anchor}(${parts.join('')})${q}${tail}`);
    fc.assert(
      fc.property(pattern, fc.stringMatching(/^[abc]{0,12}$/), (source, input) => {
        const safe = compileSafeRegex(source, '');
        expect(safe.flags).toContain('l');
        expect(safe.test(input)).toBe(new RegExp(source).test(input));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('policy regex matchers and ReDoS', () => {
  it('a nested pattern loads and matches on the linear engine', () => {
    const policy = ruleWhen('{ url.path: { regex: "^/(a+)+$" } }');
    expect(evaluatePolicy(policy, fakeFacts({ 'url.path': '/aaaa' })).status).toBe('final');
    const decision = evaluatePolicy(policy, fakeFacts({ 'url.path': `/${'a'.repeat(40)}b` }));
    expect(decision.status === 'final' && decision.ruleId).toBe(null);
  });

  it('a nested pattern the linear engine cannot run is refused at load with file:line:col', () => {
    const issues = issuesOf('version: 1\nrules:\n  - id: r\n    when: { url.path: { regex: "(?i)^/(a+)+$" } }\n    action: block\n', 'p.yaml');
    expect(issues.join('\n')).toMatch(/^p\.yaml:4:\d+: .*invalid regex "\(\?i\)\^\/\(a\+\)\+\$": \(a\+\)\+ repeats a group/m);
  });
});
