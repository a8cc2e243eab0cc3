/**
 * A flow's expanded row (issue 13): why it got its decision — the decision in short, the score's reasons and the
 * rules' explanation from the record itself, then every rule of the policy in force now in file order with its
 * status (src/policy/explain.ts, as `policy explain` prints it), then the whole record.
 *
 * An HTML fragment, served at /ui/flows/<id>/detail and inserted by the script with innerHTML: everything in it
 * is escaped here, since the record is attacker-controlled from end to end.
 */
import type { FlowDetail } from '../model.js';
import type { RuleExplanation } from '../../policy/explain.js';
import { html, type HtmlValue, type SafeHtml } from './html.js';
import { actionBadge, badge, formatCount, severityBadge, tableOrEmpty } from './layout.js';

/** Strings at `path` in the record, nested (`{"egress":{"reasons":[…]}}`) or dotted (`{"egress.reasons":[…]}`). */
export function recordStrings(record: unknown, path: readonly string[]): string[] {
  const nested = path.reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), record);
  const value = nested ?? (isObject(record) ? record[path.join('.')] : undefined);
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(items: readonly string[], empty: string): SafeHtml {
  if (items.length === 0) return html`<span class="none">${empty}</span>`;
  return html`<ul class="plain">${items.map((item) => html`<li>${item}</li>`)}</ul>`;
}

function ruleRow(rule: RuleExplanation): SafeHtml {
  const status = rule.status === 'matched' ? 'status-matched' : rule.status === 'pending' ? 'status-pending' : 'status-failed';
  return html`<tr class="rule-row ${status}${rule.afterDecision && ' after'}">
<th scope="row">${rule.rule}</th>
<td>${badge(rule.mode, rule.mode === 'shadow' ? 'mode-shadow' : 'mode-live')}</td>
<td>${rule.action}</td>
<td>${badge(rule.status, status)}${rule.afterDecision && html` ${badge('after decision', 'after-decision')}`}</td>
<td class="why">${rule.why}</td>
<td class="where">${rule.file}:${String(rule.line)}</td>
</tr>`;
}

/** JSON.stringify(record, null, 2), or a note when it cannot be printed (it is parsed JSON, so it always can). */
function prettyRecord(record: unknown): string {
  try {
    return JSON.stringify(record, null, 2) ?? String(record);
  } catch (err) {
    return `(the record cannot be printed: ${err instanceof Error ? err.message : String(err)})`;
  }
}

/**
 * Late attribution (docs/flow-record.md "Follow-up records"): on a follow-up, which record it completes and what
 * the policy would have decided with the process known; on an original, the follow-ups that completed it.
 */
function lateSection(detail: FlowDetail): HtmlValue {
  const { flow, record } = detail;
  if (flow.followupOf !== null) {
    const verdict = recordStrings(record, ['egress', 'late_verdict'])[0];
    const rule = recordStrings(record, ['egress', 'late_rule'])[0];
    return html`<h3>Late attribution</h3>
<p class="late-note">A follow-up record: telemetry named the process after the record of flow <code>${flow.followupOf}</code> was written. The traffic was ${flow.action === 'block' ? 'blocked' : 'allowed'} as that record says; with the process known, the policy would have decided <strong>${verdict ?? 'the same'}</strong>${rule === undefined ? null : html` (rule ${rule})`}.</p>`;
  }
  if (detail.followUps.length === 0) return null;
  const items = detail.followUps.map((f) => html`<li>${f.process ?? 'unknown process'} — ${f.severity === null ? 'no alert' : html`alert ${severityBadge(f.severity)}`}${f.rule === null ? null : html`, rule ${f.rule}`} (follow-up record <code>${f.id}</code>)</li>`);
  return html`<h3>Late attribution</h3>
<p class="late-note">Telemetry named the process after this record was written:</p>
<ul class="late-list">${items}</ul>`;
}

export function renderFlowDetail(detail: FlowDetail): string {
  const { flow, record } = detail;
  const head = html`<tr><th scope="col">Rule</th><th scope="col">Mode</th><th scope="col">Action</th><th scope="col">Status</th><th scope="col">Why</th><th scope="col">File:line</th></tr>`;
  return html`<div class="flow-detail">
<h3>Decision</h3>
<dl class="facts">
<dt>Action</dt><dd>${actionBadge(flow.action)}</dd>
<dt>Rule</dt><dd>${flow.rule ?? html`<span class="none">none — the default applied</span>`}</dd>
<dt>Rules matched</dt><dd>${flow.rules.length > 0 ? flow.rules.join(', ') : html`<span class="none">none</span>`}</dd>
<dt>Severity</dt><dd>${severityBadge(flow.severity) ?? html`<span class="none">not an alert</span>`}</dd>
<dt>Score</dt><dd>${flow.score === null ? html`<span class="none">—</span>` : formatCount(flow.score)}</dd>
<dt>Attribution</dt><dd>${flow.attribution}</dd>
<dt>Score reasons</dt><dd>${list(recordStrings(record, ['egress', 'reasons']), 'none')}</dd>
<dt>Rule explanation</dt><dd>${list(recordStrings(record, ['egress', 'explanation']), 'none')}</dd>
</dl>
${lateSection(detail)}
<h3>Rules, in file order</h3>
<p class="policy-note">Explained against the policy in force now (sha256 <code>${detail.policySha256.slice(0, 12)}</code>), which may differ from the one that decided this flow.</p>
${detail.explainError !== null && html`<p class="error" role="alert">Could not explain this flow: ${detail.explainError}</p>`}
${detail.rules.length === 0 && detail.explainError !== null ? null : tableOrEmpty(detail.rules.map(ruleRow), head, 'The policy has no rules.')}
<h3>Record</h3>
<pre class="record" tabindex="0" aria-label="The flow record (JSON)">${prettyRecord(record)}</pre>
</div>
`.toString();
}
