/**
 * The policy file's side of the detection engine: `scoring.weights` (checked against the signal catalogue,
 * positioned errors), features as `when` keys, the refusal of a verdict on a fact known only at the end, and
 * egress.score as a running total that a rule waits on until it is final.
 */
import { describe, expect, it } from 'vitest';
import { buildPolicy } from '../../../src/policy/load.js';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';
import { DEFAULT_WEIGHTS } from '../../../src/scoring/signals.js';
import { compileYaml, fakeFacts, issuesOf } from './policy-kit.js';

describe('scoring.weights', () => {
  it('overrides the defaults it names and keeps the others', () => {
    const policy = compileYaml('version: 1\nscoring:\n  weights:\n    beacon: 60\n    uri_random: 0\n');
    expect(policy.weights.beacon).toBe(60);
    expect(policy.weights.uri_random).toBe(0);
    expect(policy.weights.sni_mismatch).toBe(DEFAULT_WEIGHTS.sni_mismatch);
    expect(compileYaml('version: 1\n').weights).toBe(DEFAULT_WEIGHTS);
  });

  it.each([
    ['an unknown signal, with a suggestion', 'version: 1\nscoring:\n  weights:\n    becaon: 50\n', 'inline.yaml:4:5: unknown signal "becaon" in scoring.weights (did you mean "beacon"?); the signals are listed in docs/scoring.md'],
    ['a weight out of range', 'version: 1\nscoring:\n  weights:\n    beacon: 150\n', 'inline.yaml:4:13: scoring.weights.beacon must be a number of points from 0 to 100, got number 150'],
    ['a weight that is not a number', 'version: 1\nscoring:\n  weights:\n    beacon: high\n', 'inline.yaml:4:13: scoring.weights.beacon must be a number of points from 0 to 100, got string "high"'],
    ['an unknown key under scoring', 'version: 1\nscoring:\n  weight: {}\n', 'inline.yaml:3:3: unknown key "weight" in scoring (did you mean "weights"?); expected one of weights'],
    ['weights that are not a map', 'version: 1\nscoring:\n  weights: [1, 2]\n', 'inline.yaml:3:12: scoring.weights must be a map of signal name to points, got a list'],
  ])('refuses %s at file:line:col', (_intent, text, expected) => {
    expect(issuesOf(text)).toEqual([expected]);
  });

  it('refuses a weight set twice across the files of one policy', () => {
    const enc = new TextEncoder();
    const result = buildPolicy([
      { file: 'a.yaml', bytes: enc.encode('version: 1\nscoring:\n  weights:\n    beacon: 10\n') },
      { file: 'b.yaml', bytes: enc.encode('version: 1\nscoring:\n  weights:\n    beacon: 20\n') },
    ]);
    expect(result.ok ? [] : result.errors.map((e) => e.format())).toEqual(['b.yaml:4:5: scoring.weights.beacon is set twice (first at a.yaml:4:5)']);
  });
});

describe('features in rules', () => {
  it('a feature is a when key like any field', () => {
    const policy = compileYaml('version: 1\nrules:\n  - id: c2\n    when: { egress.features.uri_c2_shape: { exists: true } }\n    action: block\n');
    expect(evaluatePolicy(policy, fakeFacts({ 'egress.features.uri_c2_shape': 'cobaltstrike-default-get' }))).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'c2' });
  });

  it('refuses a verdict on a fact known only at the end of the flow, and takes it in a tag rule', () => {
    expect(issuesOf('version: 1\nrules:\n  - id: enc\n    when: { egress.features.body_encrypted: true }\n    action: block\n')).toEqual([
      'inline.yaml:3:5: rule "enc": egress.features.body_encrypted is known only when the flow ends (after forwarding); use it in a "tag" rule (an alert with severity), not in "block"',
    ]);
    expect(issuesOf('version: 1\nrules:\n  - id: enc\n    when: { egress.features.body_encrypted: true }\n    action: tag\n    severity: medium\n')).toEqual([]);
  });
});

describe('egress.score is a running total', () => {
  const policy = compileYaml('version: 1\nrules:\n  - id: high\n    when: { egress.score: { gte: 80 } }\n    action: block\n  - id: alert\n    when: { egress.score: { gte: 50 } }\n    action: tag\n    severity: high\n');

  it('a verdict on it waits while a stage can still add evidence, whatever the score so far', () => {
    expect(evaluatePolicy(policy, fakeFacts({ 'egress.score': 10 }, ['egress.score']))).toMatchObject({ status: 'pending', pendingRuleId: 'high' });
    expect(evaluatePolicy(policy, fakeFacts({ 'egress.score': 90 }, ['egress.score']))).toMatchObject({ status: 'pending', pendingRuleId: 'high' });
  });

  it('once final, it decides', () => {
    expect(evaluatePolicy(policy, fakeFacts({ 'egress.score': 90 }))).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'high' });
    expect(evaluatePolicy(policy, fakeFacts({ 'egress.score': 60 }))).toMatchObject({ status: 'final', verdict: 'allow', severity: 'high', matchedRuleIds: ['alert'] });
  });
});
