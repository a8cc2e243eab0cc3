/** Renders a corpus result as the text report (table, rates, misses, false positives) or as JSON. */
import type { CorpusResult, FlowSummary, ScenarioResult } from './corpus.js';

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function describeFlow(f: FlowSummary | null): string {
  if (f === null) return 'no flow record';
  const why = f.reasons.length > 0 ? f.reasons.join('; ') : '-';
  const rules = f.rules.length > 0 ? f.rules.join(',') : '-';
  return `score ${f.score}, ${f.action}${f.alert ? '/alert' : ''}, rule ${f.rule ?? '-'} (matched ${rules}), reasons: ${why}, tags: ${f.tags.join(',') || '-'} — ${f.kind} ${f.target}${f.process === null ? '' : ` by ${f.process}`}`;
}

function line(r: ScenarioResult): string {
  const extra = [r.unrecorded > 0 ? `${r.unrecorded} connection(s) without a record` : '', r.error === null ? '' : `error: ${r.error}`].filter((s) => s !== '').join('; ');
  return `  - ${r.id} [${r.cls}] flows ${r.flows}, max score ${r.maxScore}\n      ${describeFlow(r.worst)}${extra === '' ? '' : `\n      (${extra})`}`;
}

export function formatReport(res: CorpusResult): string {
  const out: string[] = [];
  out.push(`Detection corpus — policy ${res.policyFile}`);
  out.push(`${res.c2} C2 and ${res.benign} benign scenarios, ${res.records} flow records, ${(res.durationMs / 1000).toFixed(1)} s` +
    (res.unmatchedRecords > 0 ? `, ${res.unmatchedRecords} records not matched to a scenario` : '') +
    (res.hintErrors > 0 ? `, ${res.hintErrors} hint events refused` : ''));
  out.push('');
  out.push(`${pad('class', 26)} ${pad('label', 7)} ${lpad('scenarios', 9)} ${lpad('flagged', 8)} ${lpad('right-reason', 12)}`);
  out.push('-'.repeat(66));
  for (const c of res.classes) {
    out.push(`${pad(c.cls, 26)} ${pad(c.label, 7)} ${lpad(String(c.scenarios), 9)} ${lpad(String(c.flagged), 8)} ${lpad(c.label === 'c2' ? String(c.rightReason) : '-', 12)}`);
  }
  out.push('-'.repeat(66));
  out.push(`TPR ${pct(res.tpr)} (${res.truePositives}/${res.c2}); right reason ${pct(res.tprRightReason)} (${res.rightReason}/${res.c2})`);
  out.push(`FPR ${pct(res.fpr)} (${res.falsePositives}/${res.benign})`);
  const misses = res.scenarios.filter((r) => r.label === 'c2' && !r.flagged);
  const wrong = res.scenarios.filter((r) => r.label === 'c2' && r.flagged && r.rightReason === false);
  const fps = res.scenarios.filter((r) => r.label === 'benign' && r.flagged);
  out.push('');
  out.push(`Missed C2 (${misses.length}):`);
  for (const r of misses) out.push(line(r));
  out.push('');
  out.push(`Caught for another reason than expected (${wrong.length}):`);
  for (const r of wrong) out.push(`${line(r)}\n      expected one of ${r.expect.join(' ')}`);
  out.push('');
  out.push(`False positives (${fps.length}):`);
  for (const r of fps) out.push(line(r));
  const broken = res.scenarios.filter((r) => r.flows === 0 || r.error !== null);
  if (broken.length > 0) {
    out.push('');
    out.push(`Scenarios that did not play cleanly (${broken.length}):`);
    for (const r of broken) out.push(line(r));
  }
  return out.join('\n');
}

export function formatJson(res: CorpusResult): string {
  return JSON.stringify(res, null, 2);
}
