/**
 * The SigmaHQ corpus (test/fixtures/sigma/rules-summary.jsonl, a copy of ../shared/sigma, 124 rules under DRL 1.1; authors and links are
 * kept in the generated policy): every rule evaluable on flow fields must import, load with the real policy
 * loader, fire on a flow built from its own detection, and agree with a reference Sigma evaluator on near
 * misses (one selected value perturbed). Refusals are counted by reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildPolicy } from '../../../../src/policy/load.js';
import { evaluatePolicy } from '../../../../src/policy/evaluate.js';
import type { SigmaCategory } from '../../../../src/policy/sigma/fields.js';
import { groupRefusals, importSigmaRules } from '../../../../src/policy/sigma/import.js';
import { readSigmaRule, type SigmaRule } from '../../../../src/policy/sigma/parse.js';
import { fakeFacts } from '../policy-kit.js';
import { flowOf, perturbations, positiveEvent, sigmaMatches, type Detection, type SigmaEvent } from './sigma-oracle.js';

const CORPUS = fileURLToPath(new URL('../../../fixtures/sigma/rules-summary.jsonl', import.meta.url));

interface CorpusLine {
  readonly path: string;
  readonly id: string;
  readonly title: string;
  readonly status: string;
  readonly level: string;
  readonly category: SigmaCategory;
  readonly logsource: Record<string, unknown>;
  readonly relevance: 'core' | 'adjacent' | 'unsupported';
  readonly detection: Detection;
  readonly author: string;
  readonly license: string;
  readonly rule_url: string;
}

const lines: CorpusLine[] = existsSync(CORPUS)
  ? readFileSync(CORPUS, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as CorpusLine)
  : [];

function ruleOf(line: CorpusLine): SigmaRule {
  const read = readSigmaRule(
    { id: line.id, title: line.title, status: line.status, level: line.level, author: line.author, license: line.license, logsource: line.logsource, detection: line.detection },
    line.rule_url,
  );
  if (!read.ok) throw new Error(`${line.path}: ${read.error}`);
  return read.rule;
}

/** The fields and their refusal reasons that the corpus is expected to hit (any other refusal is a regression). */
const EXPECTED_REFUSALS: readonly RegExp[] = [
  /timeframe/, // old aggregation rules with a timeframe
  /aggregation/, // `| count() by …` without a timeframe
  /field query_length is not supported/,
  /field SourcePort is not supported/,
  /field answer maps to dns\.answers/,
  /field cs-cookie is not supported/,
  /field sc-status maps to http\.response\.status_code/,
  /modifier "expand" is not supported/,
];

describe('SigmaHQ corpus', () => {
  it('is all there (124 rules, vendored under test/fixtures/sigma)', () => {
    expect(lines).toHaveLength(124);
  });

  const byId = new Map(lines.map((line) => [line.id, line]));
  const result = importSigmaRules(lines.map(ruleOf));

  it('converts every rule evaluable on flow fields and refuses the rest with a known reason', () => {
    expect(lines).toHaveLength(124);
    expect(result.converted.length + result.refused.length).toBe(124);
    for (const refused of result.refused) {
      expect(EXPECTED_REFUSALS.some((re) => re.test(refused.reason)), `${refused.id ?? ''}: ${refused.reason}`).toBe(true);
    }
    // Reported for the record (printed by vitest with --reporter verbose).
    const groups = groupRefusals(result.refused);
    expect(groups.reduce((sum, g) => sum + g.count, 0)).toBe(result.refused.length);
    console.info(`sigma corpus: ${result.converted.length} converted, ${result.refused.length} refused\n${groups.map((g) => `  ${g.count} × ${g.reason}`).join('\n')}`);
    expect(result.converted.length).toBe(111);
  });

  it('refuses every rule of relevance "unsupported" (old aggregation syntax)', () => {
    const unsupported = lines.filter((line) => line.relevance === 'unsupported');
    expect(unsupported).toHaveLength(7);
    const refusedIds = new Set(result.refused.map((r) => r.id));
    for (const line of unsupported) expect(refusedIds.has(line.id), line.title).toBe(true);
  });

  it('the generated policy loads with the real loader and keeps DRL 1.1 attribution for every rule', () => {
    const loaded = buildPolicy([{ file: 'sigma.yaml', bytes: new TextEncoder().encode(result.policyText) }]);
    expect(loaded.ok ? null : loaded.errors.map((e) => e.format())).toBeNull();
    if (!loaded.ok) return;
    expect(loaded.policy.rules).toHaveLength(result.converted.length);
    expect(result.policyText).toContain('Detection Rule License (DRL) 1.1');
    for (const rule of result.converted) {
      const line = byId.get(rule.sigma.id) as CorpusLine;
      expect(result.policyText).toContain(`# Sigma rule ${line.id}: ${line.title}`);
      expect(result.policyText).toContain(`# author: ${line.author}`);
      expect(result.policyText).toContain(`# source: ${line.rule_url}`);
      const compiled = loaded.policy.ruleById(`sigma.${line.id}`);
      expect(compiled?.tags).toContain(`sigma.author:${line.author}`);
      expect(compiled?.severity).toBe(line.level === 'informational' ? 'low' : line.level);
    }
  });

  it('every converted rule fires on a flow built from its own detection and agrees with Sigma on near misses', () => {
    let nearMisses = 0;
    const loaded = buildPolicy([{ file: 'sigma.yaml', bytes: new TextEncoder().encode(result.policyText) }]);
    if (!loaded.ok) throw new Error('policy did not load');
    for (const draft of result.converted) {
      const line = byId.get(draft.sigma.id) as CorpusLine;
      const fires = (event: SigmaEvent): boolean => {
        const decision = evaluatePolicy(loaded.policy, fakeFacts(flowOf(line.category, event)));
        return decision.matchedRuleIds.includes(draft.id);
      };
      const positive = positiveEvent(line.detection);
      expect(positive, `${line.title}: no positive event found`).not.toBeNull();
      if (positive === null) continue;
      expect(fires(positive), `${line.title} should fire on ${JSON.stringify(positive)}`).toBe(true);
      let missed = 0;
      for (const variant of perturbations(positive)) {
        const expected = sigmaMatches(line.detection, variant.event);
        expect(fires(variant.event), `${line.title}: ${variant.name} ${JSON.stringify(variant.event)}`).toBe(expected);
        if (!expected) missed++;
      }
      expect(missed, `${line.title}: no near miss`).toBeGreaterThan(0);
      nearMisses += missed;
    }
    expect(nearMisses).toBeGreaterThan(result.converted.length);
  });
});
