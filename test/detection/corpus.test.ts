/**
 * The labelled detection corpus as a test: C2 and benign scenarios played through one live proxy with the
 * shipped default policy (see README.md in this folder). The corpus contract is checked first (sizes, ids,
 * sources, every scenario recorded); then the detection targets: TPR ≥ 95 % and FPR ≤ 2 %. The targets carry
 * the whole report in their failure message, so a red run says which scenarios were missed and why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCorpus, type CorpusResult } from './corpus.js';
import { formatReport } from './report.js';
import { SCENARIOS } from './scenarios/index.js';

const TPR_TARGET = 0.95;
const FPR_TARGET = 0.02;

describe('detection corpus (live proxy, shipped default policy)', () => {
  let result: CorpusResult;
  let report: string;

  beforeAll(async () => {
    result = await runCorpus({ scenarios: SCENARIOS });
    report = formatReport(result);
  }, 120_000);

  afterAll(() => {
    // The numbers are worth seeing on a green run too.
    if (result !== undefined) process.stdout.write(`${report.split('\nMissed')[0] ?? ''}\n`);
  });

  it('has at least 45 C2 and 55 benign scenarios, unique ids, sources, and expected reasons for every C2 one', () => {
    const c2 = SCENARIOS.filter((s) => s.label === 'c2');
    const benign = SCENARIOS.filter((s) => s.label === 'benign');
    expect(c2.length).toBeGreaterThanOrEqual(45);
    expect(benign.length).toBeGreaterThanOrEqual(55);
    expect(new Set(SCENARIOS.map((s) => s.id)).size).toBe(SCENARIOS.length);
    for (const s of SCENARIOS) {
      expect(s.id.startsWith(`${s.label}-`), s.id).toBe(true);
      expect(s.sources.length, s.id).toBeGreaterThan(0);
    }
    for (const s of c2) expect(s.expect?.length ?? 0, s.id).toBeGreaterThan(0);
  });

  it('plays every scenario cleanly: each has flow records, none errored, every connection was recorded', () => {
    const broken = result.scenarios.filter((r) => r.flows === 0 || r.error !== null || r.unrecorded > 0);
    expect(broken.map((r) => `${r.id}: flows ${r.flows}, unrecorded ${r.unrecorded}, error ${r.error ?? '-'}`)).toEqual([]);
    expect(result.hintErrors, 'Sysmon events refused by /v1/hints').toBe(0);
    expect(result.unmatchedRecords, 'flow records that belong to no scenario').toBe(0);
  });

  it('runs the whole corpus within 60 s', () => {
    expect(result.durationMs).toBeLessThan(60_000);
  });

  it(`detects at least ${TPR_TARGET * 100} % of the C2 scenarios`, () => {
    expect(result.tpr, `TPR ${(result.tpr * 100).toFixed(1)} % < ${TPR_TARGET * 100} %\n\n${report}`).toBeGreaterThanOrEqual(TPR_TARGET);
  });

  it(`flags at most ${FPR_TARGET * 100} % of the benign scenarios`, () => {
    expect(result.fpr, `FPR ${(result.fpr * 100).toFixed(1)} % > ${FPR_TARGET * 100} %\n\n${report}`).toBeLessThanOrEqual(FPR_TARGET);
  });
});
