/**
 * The endpoints page (issue 13): how much of the traffic the proxy can name a process for, and which clients
 * it cannot — the coverage report of src/coverage/tally.ts on a page. An inspector that hides the endpoints it
 * cannot attribute gives a false sense of coverage, so unmanaged clients are flagged in words as well as colour
 * (WCAG 1.4.1 "Use of Color") and listed in their own section, next to the clients whose telemetry stopped.
 */
import type { CoverageHost, CoverageReport, StaleTelemetry } from '../../coverage/tally.js';
import type { EndpointsPageView } from '../model.js';
import { html, type SafeHtml } from './html.js';
import { badge, flowsHref, formatCount, formatShare, isoTag, renderPage, tableOrEmpty } from './layout.js';

const UNMANAGED_TEXT = 'unmanaged — no telemetry';

function hostNames(names: readonly string[], more: boolean): SafeHtml {
  if (names.length === 0) return html`<span class="none">unknown</span>`;
  return html`${names.join(', ')}${more && html` <span class="none">and more</span>`}`;
}

function clientLink(ip: string): SafeHtml {
  return html`<a href="${flowsHref([['host', ip]])}">${ip}</a>`;
}

function formatLag(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  return Math.abs(ms) < 1_000 ? `${formatCount(Math.round(ms))} ms` : `${formatCount(Math.round(ms / 100) / 10)} s`;
}

function hostRow(host: CoverageHost): SafeHtml {
  const managed = host.managed ? html`yes` : badge(UNMANAGED_TEXT, 'unmanaged');
  return html`<tr class="${host.managed ? 'managed' : 'unmanaged'}">
<th scope="row">${clientLink(host['source.ip'])}</th>
<td>${hostNames(host.host_names, host.host_names_more)}</td>
<td>${managed}</td>
<td class="num">${formatCount(host.flows)}</td>
<td class="num">${formatShare(host.attributed_share)}</td>
<td>${isoTag(host.last_hint)}</td>
<td class="num">${formatLag(host.hint_lag_p50_ms)}</td>
<td>${isoTag(host.last_telemetry)}</td>
</tr>`;
}

function unmanagedRow(host: CoverageHost): SafeHtml {
  return html`<tr class="unmanaged">
<th scope="row">${clientLink(host['source.ip'])}</th>
<td>${hostNames(host.host_names, host.host_names_more)}</td>
<td>${badge(UNMANAGED_TEXT, 'unmanaged')}</td>
<td class="num">${formatCount(host.flows)}</td>
<td>${isoTag(host.last_flow)}</td>
</tr>`;
}

function staleRow(stale: StaleTelemetry): SafeHtml {
  return html`<tr class="stale">
<th scope="row">${clientLink(stale['source.ip'])}</th>
<td>${hostNames(stale.host_names, false)}</td>
<td>${isoTag(stale.last_telemetry)}</td>
<td class="num">${formatCount(stale.minutes_since_telemetry)}</td>
<td>${isoTag(stale.last_flow)}</td>
<td class="num">${formatCount(stale.flows)}</td>
</tr>`;
}

function boundsNote(report: CoverageReport): SafeHtml | null {
  const b = report.bounds;
  if (!b.cut) return null;
  const parts: string[] = [];
  if (b.evicted_clients > 0) parts.push(`${formatCount(b.evicted_clients)} clients dropped because the table was full (at most ${formatCount(b.max_clients)})`);
  if (b.expired_clients > 0) parts.push(`${formatCount(b.expired_clients)} clients dropped after not being seen within their time to live`);
  if (b.flows_of_dropped_clients > 0) parts.push(`${formatCount(b.flows_of_dropped_clients)} flows of dropped clients are in the totals but in no row`);
  if (b.evicted_pending > 0) parts.push(`${formatCount(b.evicted_pending)} unattributed flows could no longer be joined with a late hint`);
  if (b.followups_unmatched > 0) parts.push(`${formatCount(b.followups_unmatched)} late attributions matched no flow`);
  if (b.hosts_omitted > 0) parts.push(`${formatCount(b.hosts_omitted)} clients not listed`);
  return html`<div class="note bounds" role="note"><p>This report is cut by its bounds:</p><ul>${parts.map((p) => html`<li>${p}</li>`)}</ul></div>`;
}

export function renderEndpointsPage(view: EndpointsPageView): string {
  const r = view.coverage;
  const methodRow = (name: string, what: string, n: number): SafeHtml =>
    html`<tr><th scope="row">${name}</th><td>${what}</td><td class="num">${formatCount(n)}</td><td class="num">${formatShare(r.flows === 0 ? 0 : n / r.flows)}</td></tr>`;
  const managedFrom =
    r.managed_source === 'hint-store'
      ? 'Managed: the hint store has received telemetry from the client recently.'
      : 'Managed: telemetry attributed one of the client’s flows recently (all the flow records can tell).';
  const body = html`<section aria-labelledby="overall"><h2 id="overall">Attribution</h2>
<p class="summary"><span class="big">${formatShare(r.attributed_share)}</span> of ${formatCount(r.flows)} flows attributed to a process
(${formatCount(r.attributed)} flows; first ${isoTag(r.first_flow)}, last ${isoTag(r.last_flow)}).</p>
<p>Clients: ${formatCount(r.clients.tracked)} tracked, ${formatCount(r.clients.managed)} managed, <strong>${formatCount(r.clients.unmanaged)} unmanaged</strong>. ${managedFrom}</p>
${boundsNote(r)}
<div class="table-wrap"><table id="by-method"><caption>Flows by attribution method</caption>
<thead><tr><th scope="col">Method</th><th scope="col">Meaning</th><th scope="col" class="num">Flows</th><th scope="col" class="num">Share</th></tr></thead>
<tbody>
${methodRow('telemetry', 'process named by endpoint telemetry (Sysmon, EDR)', r.by_method.telemetry)}
${methodRow('header', 'process named by a request header only', r.by_method.header)}
${methodRow('none', 'no process known', r.by_method.none)}
</tbody></table></div>
${r.late_attributed > 0 && html`<p class="note">${formatCount(r.late_attributed)} flows were attributed late (follow-up records), counted as telemetry.</p>`}
</section>
<section aria-labelledby="unmanaged"><h2 id="unmanaged">Unmanaged clients making flows</h2>
${tableOrEmpty(
  r.unmanaged.map(unmanagedRow),
  html`<tr><th scope="col">Client</th><th scope="col">Host names</th><th scope="col">Managed</th><th scope="col" class="num">Flows</th><th scope="col">Last flow</th></tr>`,
  'Every client making flows sends telemetry.',
  { id: 'unmanaged-clients' },
)}
</section>
<section aria-labelledby="stale"><h2 id="stale">Telemetry stopped</h2>
<p>Clients whose flows telemetry used to attribute, still making flows, with no attributed flow for ${formatCount(r.stale_minutes)} minutes or more: Sysmon stopped, was tampered with, or its shipper is stuck.</p>
${tableOrEmpty(
  r.stale_telemetry.map(staleRow),
  html`<tr><th scope="col">Client</th><th scope="col">Host names</th><th scope="col">Last telemetry</th><th scope="col" class="num">Minutes since</th><th scope="col">Last flow</th><th scope="col" class="num">Flows</th></tr>`,
  'No client’s telemetry has stopped.',
  { id: 'stale-telemetry' },
)}
</section>
<section aria-labelledby="clients"><h2 id="clients">All clients</h2>
${tableOrEmpty(
  r.hosts.map(hostRow),
  html`<tr><th scope="col">Client</th><th scope="col">Host names</th><th scope="col">Managed</th><th scope="col" class="num">Flows</th><th scope="col" class="num">Attributed</th><th scope="col">Last hint</th><th scope="col" class="num">Hint lag p50</th><th scope="col">Last telemetry</th></tr>`,
  'No client has made a flow yet.',
  { id: 'clients-table' },
)}
</section>`;
  return renderPage(view.frame, body);
}
