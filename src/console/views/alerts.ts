/**
 * The alerts page (issue 13): alerts since start grouped by rule and by endpoint (host / process), each with
 * a per-minute sparkline, and links into the flows list filtered to that group.
 *
 * The sparkline is inline SVG (allowed by the CSP: only presentation attributes, no style attribute) with
 * role="img" and an aria-label that says in words what it draws (WAI-ARIA 1.2 "img" role; the SVG
 * Accessibility API Mappings map role=img + aria-label to one accessible image).
 */
import type { AlertGroup, AlertsView, PageFrame } from '../model.js';
import { html, type SafeHtml } from './html.js';
import { flowsHref, formatCount, renderPage, severityBadge, tableOrEmpty, timeTag } from './layout.js';

const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 24;

/** The largest finite count, 0 for none (a reduce: spreading a long array into Math.max can overflow the stack). */
function maxOf(values: readonly number[]): number {
  return values.reduce((max, v) => (Number.isFinite(v) && v > max ? v : max), 0);
}

function round2(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** The polyline's points: one per minute, oldest on the left, scaled to the largest count (flat when all 0). */
export function sparklinePoints(perMinute: readonly number[]): string {
  const n = perMinute.length;
  const max = maxOf(perMinute);
  const step = n > 1 ? SPARK_WIDTH / (n - 1) : 0;
  return perMinute
    .map((value, i) => {
      const v = Number.isFinite(value) && value > 0 ? value : 0;
      const y = max === 0 ? SPARK_HEIGHT - 1 : SPARK_HEIGHT - 1 - (v / max) * (SPARK_HEIGHT - 2);
      return `${round2(i * step)},${round2(y)}`;
    })
    .join(' ');
}

export function sparkline(perMinute: readonly number[]): SafeHtml {
  const max = maxOf(perMinute);
  const label = `alerts per minute, last ${perMinute.length} minutes: max ${formatCount(max)}`;
  return html`<svg class="spark" viewBox="0 0 ${String(SPARK_WIDTH)} ${String(SPARK_HEIGHT)}" width="${String(SPARK_WIDTH)}" height="${String(SPARK_HEIGHT)}" role="img" aria-label="${label}"><polyline points="${sparklinePoints(perMinute)}" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/></svg>`;
}

function groupCells(group: AlertGroup): SafeHtml {
  return html`<td>${severityBadge(group.severity)}</td>
<td class="num">${formatCount(group.count)}</td>
<td class="num">${formatCount(group.blocked)}</td>
<td>${timeTag(group.firstMs)}</td>
<td>${timeTag(group.lastMs)}</td>
<td>${sparkline(group.perMinute)}</td>`;
}

function ruleRow(group: AlertGroup): SafeHtml {
  const rule = group.rule ?? group.key;
  return html`<tr><th scope="row"><a href="${flowsHref([['rule', rule], ['alert', 'yes']])}">${rule}</a></th>
${groupCells(group)}</tr>`;
}

function endpointRow(group: AlertGroup): SafeHtml {
  const host = group.host ?? group.sourceIp;
  const href = host === null && group.process === null ? null : flowsHref([['host', host], ['process', group.process]]);
  const name = href === null ? html`${group.key}` : html`<a href="${href}">${group.key}</a>`;
  return html`<tr><th scope="row">${name}</th>
${groupCells(group)}</tr>`;
}

function head(first: string): SafeHtml {
  return html`<tr><th scope="col">${first}</th><th scope="col">Severity</th><th scope="col" class="num">Alerts</th><th scope="col" class="num">Blocked</th><th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col">Per minute</th></tr>`;
}

export function renderAlertsPage(frame: PageFrame, view: AlertsView): string {
  if (view.total === 0 && view.byRule.length === 0 && view.byEndpoint.length === 0) {
    return renderPage(frame, html`<p class="empty">No alerts since start. A flow is an alert when a rule with a severity matches it.</p>`);
  }
  const body = html`<p class="summary"><span class="big">${formatCount(view.total)}</span> alerts since start; sparklines cover the last ${formatCount(view.windowMinutes)} minutes.</p>
${view.evictedGroups > 0 && html`<p class="note">${formatCount(view.evictedGroups)} groups were dropped because the board was full (the least recently alerted first); the total still counts their alerts.</p>`}
<section aria-labelledby="by-rule"><h2 id="by-rule">By rule</h2>
${tableOrEmpty(view.byRule.map(ruleRow), head('Rule'), 'No rule groups.', { id: 'alerts-by-rule' })}
</section>
<section aria-labelledby="by-endpoint"><h2 id="by-endpoint">By host and process</h2>
${tableOrEmpty(view.byEndpoint.map(endpointRow), head('Host / process'), 'No endpoint groups.', { id: 'alerts-by-endpoint' })}
</section>`;
  return renderPage(frame, body);
}
