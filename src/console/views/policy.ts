/**
 * The policy page (issue 13): which policy is in force (its sha256 and files), every rule with its mode and
 * hits since start, the proxy's own rules' hits, the reload history, the errors that keep the files on disk
 * out of force, and a button to reload now (a POST with the session's CSRF token: OWASP CSRF Prevention Cheat
 * Sheet, "synchronizer token pattern").
 */
import type { PageFrame, PolicyRuleView, PolicyView, ReloadView } from '../model.js';
import { html, type SafeHtml } from './html.js';
import { badge, flowsHref, formatCount, renderPage, severityBadge, tableOrEmpty, timeTag } from './layout.js';

function ruleRow(rule: PolicyRuleView): SafeHtml {
  return html`<tr class="${rule.mode === 'shadow' ? 'shadow' : 'live'}">
<th scope="row"><a href="${flowsHref([['rule', rule.id]])}">${rule.id}</a></th>
<td>${badge(rule.mode, rule.mode === 'shadow' ? 'mode-shadow' : 'mode-live')}</td>
<td>${rule.action}</td>
<td>${severityBadge(rule.severity) ?? html`<span class="none">—</span>`}</td>
<td>${rule.tags.join(', ')}</td>
<td class="where">${rule.file}:${String(rule.line)}</td>
<td class="num">${formatCount(rule.hits)}</td>
</tr>`;
}

const OUTCOME_CLASS: Readonly<Record<ReloadView['outcome'], string>> = {
  success: 'outcome-success',
  unchanged: 'outcome-unchanged',
  failure: 'outcome-failure',
  refused: 'outcome-refused',
};

function reloadRow(reload: ReloadView): SafeHtml {
  const detail: SafeHtml[] = reload.errors.map((e) => html`<li>${e}</li>`);
  if (reload.reason !== null) detail.unshift(html`<li>${reload.reason}</li>`);
  return html`<tr>
<td>${timeTag(reload.atMs)}</td>
<td>${reload.trigger}</td>
<td>${badge(reload.outcome, OUTCOME_CLASS[reload.outcome] ?? 'outcome-failure')}</td>
<td>${reload.sha256 === null ? html`<span class="none">—</span>` : html`<code>${reload.sha256.slice(0, 12)}</code>`}</td>
<td>${detail.length === 0 ? html`<span class="none">—</span>` : html`<ul class="plain">${detail}</ul>`}</td>
</tr>`;
}

export function renderPolicyPage(frame: PageFrame, view: PolicyView): string {
  const lastErrors =
    view.lastErrors.length === 0
      ? null
      : html`<section class="errors" aria-labelledby="last-errors"><h2 id="last-errors">The files on disk do not load</h2>
<p>The last good policy stays in force until these are fixed:</p>
<ul>${view.lastErrors.map((e) => html`<li><code>${e}</code></li>`)}</ul></section>`;
  const body = html`${lastErrors}
<section aria-labelledby="in-force"><h2 id="in-force">In force</h2>
<dl class="facts">
<dt>sha256</dt><dd><code class="hash">${view.sha256}</code></dd>
<dt>Files</dt><dd>${view.files.length === 0 ? html`<span class="none">none</span>` : html`<ul class="plain">${view.files.map((f) => html`<li><code>${f}</code></li>`)}</ul>`}</dd>
<dt>Rules</dt><dd>${formatCount(view.rules.length)} (${formatCount(view.rules.filter((r) => r.mode === 'shadow').length)} shadow)</dd>
<dt>Policy tests</dt><dd>${formatCount(view.tests)}</dd>
</dl>
<form class="reload" method="post" action="/ui/policy/reload"><input type="hidden" name="csrf" value="${frame.csrf}"><button type="submit">Reload policy now</button></form>
</section>
<section aria-labelledby="rules"><h2 id="rules">Rules</h2>
${tableOrEmpty(
  view.rules.map(ruleRow),
  html`<tr><th scope="col">Rule</th><th scope="col">Mode</th><th scope="col">Action</th><th scope="col">Severity</th><th scope="col">Tags</th><th scope="col">File:line</th><th scope="col" class="num">Hits</th></tr>`,
  'The policy has no rules: every flow gets the default.',
  { id: 'policy-rules' },
)}
</section>
<section aria-labelledby="builtin"><h2 id="builtin">Built-in rules</h2>
${tableOrEmpty(
  view.builtinHits.map((b) => html`<tr><th scope="row">${b.id}</th><td class="num">${formatCount(b.hits)}</td></tr>`),
  html`<tr><th scope="col">Rule</th><th scope="col" class="num">Hits</th></tr>`,
  'No built-in rule has matched since start.',
  { id: 'builtin-rules' },
)}
</section>
<section aria-labelledby="reloads"><h2 id="reloads">Reloads</h2>
${tableOrEmpty(
  view.reloads.map(reloadRow),
  html`<tr><th scope="col">Time</th><th scope="col">Trigger</th><th scope="col">Outcome</th><th scope="col">sha256</th><th scope="col">Errors / reason</th></tr>`,
  'No reload since start.',
  { id: 'reload-history' },
)}
</section>`;
  return renderPage(frame, body);
}
