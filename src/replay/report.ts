/**
 * How `policy replay` shows its result: one JSON object (`--json`; SPEC "Policy files": `total`, `changed`,
 * `changes` of `{rule, change, count, examples}`, plus the counts of skipped and invalid lines), or text for a
 * person — per rule and change, a count and a few example flows — and a progress line for a terminal.
 */
import type { ChangeKind } from './diff.js';
import type { ReplayProgress } from './replay.js';
import type { ReplayExample, ReplaySummary } from './tally.js';

const CHANGE_WORDS: Readonly<Record<ChangeKind, string>> = {
  newly_blocked: 'newly blocked',
  newly_allowed: 'newly allowed',
  newly_alerted: 'newly alerted',
  alert_removed: 'alert removed',
  tags_changed: 'tags changed',
};

function count(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

export function formatJson(summary: ReplaySummary): string {
  return `${JSON.stringify(summary, null, 2)}\n`;
}

function exampleLine(e: ReplayExample): string {
  const parts: string[] = [e['@timestamp'] ?? '-', e.source ?? '-', e.process ?? '(no process)', '→', e.destination ?? e.dns ?? '-'];
  if (e.url !== null) parts.push(e.url);
  if (e.sni !== null) parts.push(`sni=${e.sni}`);
  if (e.dns !== null && e.destination !== null) parts.push(`dns=${e.dns}`);
  const rule = (r: string | null): string => (r === null ? '' : ` (${r})`);
  parts.push(`[${e.before.action}${rule(e.before.rule)} → ${e.after.action}${rule(e.after.rule)}]`, e.at);
  return parts.join(' ');
}

export function formatText(summary: ReplaySummary): string {
  const lines: string[] = [];
  const skipped = Object.entries(summary.skipped).filter(([, n]) => n > 0);
  lines.push(
    `policy replay: ${count(summary.total, 'record')} read, ${summary.replayed.toLocaleString('en-US')} compared with ` +
      `${summary.baseline === 'recorded' ? 'the decisions recorded' : 'the --against policy'}, ${count(summary.changed, 'changed record')}`,
  );
  if (skipped.length > 0) {
    lines.push(`  skipped (not decided by the policy): ${skipped.map(([reason, n]) => `${n.toLocaleString('en-US')} ${reason.replace('_', ' ')}`).join(', ')}`);
  }
  if (summary.invalid_lines > 0) {
    lines.push(`  ${count(summary.invalid_lines, 'line')} not a flow record${summary.invalid_lines === 1 ? '' : 's'}:`);
    for (const bad of summary.invalid_examples) lines.push(`    ${bad.file}:${bad.line}: ${bad.reason}`);
  }
  const rejected = Object.entries(summary.rejected_values);
  if (rejected.length > 0) {
    lines.push(`  values of the wrong type, read as absent: ${rejected.map(([field, n]) => `${field} ×${n}`).join(', ')}`);
  }
  if (summary.changes.length === 0) {
    lines.push('no change');
    return `${lines.join('\n')}\n`;
  }
  for (const change of summary.changes) {
    lines.push('', `${CHANGE_WORDS[change.change]} by ${change.rule}: ${count(change.count, 'flow')}`);
    for (const example of change.examples) lines.push(`  ${exampleLine(example)}`);
  }
  return `${lines.join('\n')}\n`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** One progress line (for `\r` overwriting on a terminal): bytes read of the total, records, records/s. */
export function formatProgress(progress: ReplayProgress, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? Math.round((progress.records * 1000) / elapsedMs) : 0;
  const of = progress.totalBytes === null || progress.totalBytes === 0 ? '' : ` / ${megabytes(progress.totalBytes)} (${Math.min(100, Math.floor((progress.bytes * 100) / progress.totalBytes))}%)`;
  return `replay: ${megabytes(progress.bytes)}${of}, ${progress.records.toLocaleString('en-US')} records, ${rate.toLocaleString('en-US')} records/s`;
}
