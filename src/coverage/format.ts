/**
 * The coverage report in words: a summary, then clients as an aligned table on a terminal or as tab-separated
 * lines otherwise (what `cut`/`awk` read); `--json` prints the report object itself (docs/coverage.md).
 */
import type { CoverageHost, CoverageReport } from './tally.js';
import type { CoverageInputSummary } from './read-flows.js';

/** Clients listed in text; the JSON has them all. */
export const TEXT_HOST_LIMIT = 50;

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function count(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}

/** Columns of one client line. */
function hostCells(h: CoverageHost): string[] {
  return [
    h['source.ip'],
    h.managed ? 'managed' : 'unmanaged',
    String(h.flows),
    percent(h.attributed_share),
    `${h.by_method.telemetry}/${h.by_method.header}/${h.by_method.none}`,
    h.last_flow,
    h.last_telemetry ?? '-',
    h.hint_lag_p50_ms === null ? '-' : String(Math.round(h.hint_lag_p50_ms)),
    h.host_names.length === 0 ? '-' : `${h.host_names.join(',')}${h.host_names_more ? ',…' : ''}`,
  ];
}

const HOST_HEADER = ['source.ip', 'managed', 'flows', 'attributed', 'tel/hdr/none', 'last flow', 'last telemetry', 'lag p50 ms', 'host names'];

function table(rows: readonly string[][], tty: boolean): string[] {
  if (!tty) return rows.map((r) => r.join('\t'));
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

export function formatCoverageText(report: CoverageReport, input: CoverageInputSummary | null, tty: boolean): string {
  const lines: string[] = [];
  const m = report.by_method;
  lines.push(
    `coverage: ${count(report.flows, 'flow')}, ${percent(report.attributed_share)} attributed ` +
      `(telemetry ${m.telemetry.toLocaleString('en-US')}, header ${m.header.toLocaleString('en-US')}, none ${m.none.toLocaleString('en-US')}` +
      `${report.late_attributed > 0 ? `; ${report.late_attributed.toLocaleString('en-US')} late, by follow-up records` : ''})`,
  );
  if (report.first_flow !== null) lines.push(`  flows from ${report.first_flow} to ${report.last_flow ?? ''}`);
  lines.push(
    `  ${count(report.clients.tracked, 'client')}: ${report.clients.managed.toLocaleString('en-US')} managed, ${report.clients.unmanaged.toLocaleString('en-US')} unmanaged` +
      ` (managed as ${report.managed_source === 'hint-store' ? 'the hint store knows it now' : 'seen in the flow records: telemetry attributed a flow within the managed window'})`,
  );
  if (input !== null && input.invalid_lines > 0) {
    lines.push(`  ${count(input.invalid_lines, 'line')} skipped (not flow records):`);
    for (const bad of input.invalid_examples) lines.push(`    ${bad.file}:${bad.line}: ${bad.reason}`);
  }
  const b = report.bounds;
  if (b.cut) {
    const parts: string[] = [];
    if (b.evicted_clients > 0) parts.push(`${count(b.evicted_clients, 'client')} dropped at the ${b.max_clients.toLocaleString('en-US')}-client bound`);
    if (b.expired_clients > 0) parts.push(`${count(b.expired_clients, 'client')} expired`);
    if (b.flows_of_dropped_clients > 0) parts.push(`their ${count(b.flows_of_dropped_clients, 'flow')} are in the totals only`);
    if (b.evicted_pending > 0) parts.push(`${count(b.evicted_pending, 'unattributed flow')} no longer awaited for a follow-up`);
    if (b.followups_unmatched > 0) parts.push(`${count(b.followups_unmatched, 'follow-up record')} for flows not seen (not counted)`);
    if (b.hosts_omitted > 0) parts.push(`${count(b.hosts_omitted, 'client')} not listed`);
    lines.push(`  bounds cut the report: ${parts.join('; ')}`);
  }

  lines.push('', `stale telemetry (attributed before, none in the last ${report.stale_minutes} min, still making flows): ${report.stale_telemetry.length}`);
  if (report.stale_telemetry.length > 0) {
    const rows = [['source.ip', 'last telemetry', 'last flow', 'min since', 'host names']];
    for (const s of report.stale_telemetry) rows.push([s['source.ip'], s.last_telemetry, s.last_flow, String(s.minutes_since_telemetry), s.host_names.join(',') || '-']);
    lines.push(...table(rows, tty).map((l) => `  ${l}`));
  }

  lines.push('', `unmanaged clients making flows: ${report.unmanaged.length}`);
  if (report.unmanaged.length > 0) {
    const rows = [HOST_HEADER, ...report.unmanaged.slice(0, TEXT_HOST_LIMIT).map(hostCells)];
    lines.push(...table(rows, tty).map((l) => `  ${l}`));
    if (report.unmanaged.length > TEXT_HOST_LIMIT) lines.push(`  … ${count(report.unmanaged.length - TEXT_HOST_LIMIT, 'more client')} (--json lists all)`);
  }

  lines.push('', `clients, most flows first: ${report.hosts.length}`);
  if (report.hosts.length > 0) {
    const rows = [HOST_HEADER, ...report.hosts.slice(0, TEXT_HOST_LIMIT).map(hostCells)];
    lines.push(...table(rows, tty).map((l) => `  ${l}`));
    if (report.hosts.length > TEXT_HOST_LIMIT) lines.push(`  … ${count(report.hosts.length - TEXT_HOST_LIMIT, 'more client')} (--json lists all)`);
  }
  return `${lines.join('\n')}\n`;
}

/** One JSON object: the report, and for recorded logs what was read. */
export function formatCoverageJson(report: CoverageReport, input: CoverageInputSummary | null): string {
  return `${JSON.stringify(input === null ? report : { ...report, input })}\n`;
}
