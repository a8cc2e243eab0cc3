/**
 * The flows page (issue 13): a filter form, the newest flows as a table, and the hooks the browser script
 * (assets.ts) uses to stream new rows in (`/ui/events?<filter>`) and to expand a row's details.
 *
 * A row is rendered twice: here for the first page, and by the script for each live flow, from the summary's
 * JSON with DOM APIs (textContent only, never innerHTML with data). Both follow FLOW_COLUMNS, which the script
 * gets serialized, and both produce the same cells, classes and attributes in the same order; the unit test
 * runs the script's row builder against a stub DOM and compares the markup with `flowRowHtml`.
 */
import { filterQuery } from '../filter.js';
import type { ConsoleFlowSummary, FlowFilter, FlowsPageView } from '../model.js';
import { html, type HtmlValue, type SafeHtml } from './html.js';
import { clockOf, formatCount, isoOf, renderPage } from './layout.js';

/** The table's columns, in order: `key` picks the cell's content, `cls` is the cell's class. */
export const FLOW_COLUMNS = [
  { key: 'time', label: 'Time', cls: 'c-time' },
  { key: 'action', label: 'Action', cls: 'c-action' },
  { key: 'alert', label: 'Alert', cls: 'c-alert' },
  { key: 'source', label: 'Source', cls: 'c-source' },
  { key: 'user', label: 'User', cls: 'c-user' },
  { key: 'process', label: 'Process', cls: 'c-process' },
  { key: 'destination', label: 'Destination', cls: 'c-destination' },
  { key: 'rule', label: 'Rule', cls: 'c-rule' },
  { key: 'tags', label: 'Tags', cls: 'c-tags' },
  { key: 'score', label: 'Score', cls: 'c-score num' },
] as const;

export type FlowColumnKey = (typeof FLOW_COLUMNS)[number]['key'];

/** Rows the live table keeps; older ones fall off the bottom (the "Older" link pages through them). */
export const LIVE_MAX_ROWS = 500;

const KNOWN_SEVERITIES: ReadonlySet<string> = new Set(['low', 'medium', 'high', 'critical']);

/** The <tr>'s class: the script computes the same string (rowClass in assets.ts). */
function rowClass(flow: ConsoleFlowSummary): string {
  const action = flow.action === 'block' ? 'action-block' : 'action-allow';
  const late = flow.followupOf === null ? '' : ' followup';
  if (flow.severity === null) return `flow ${action}${late}`;
  return `flow ${action} alert ${KNOWN_SEVERITIES.has(flow.severity) ? `sev-${flow.severity}` : 'sev-other'}${late}`;
}

function cell(key: FlowColumnKey, cls: string, flow: ConsoleFlowSummary): SafeHtml {
  switch (key) {
    case 'time': {
      const iso = isoOf(flow.timeMs);
      return html`<td class="${cls}"><button type="button" class="expand" aria-expanded="false" aria-controls="detail-${flow.id}"><span class="vh">Details of the flow at </span><time datetime="${iso}" title="${iso}">${clockOf(flow.timeMs)}</time></button></td>`;
    }
    case 'action':
      return html`<td class="${cls}"><span class="badge ${flow.action === 'block' ? 'action-block' : 'action-allow'}">${flow.action}</span></td>`;
    case 'alert': {
      const sev = flow.severity;
      const badge: HtmlValue = sev === null ? null : html`<span class="badge ${KNOWN_SEVERITIES.has(sev) ? `sev-${sev}` : 'sev-other'}">${sev}</span>`;
      return html`<td class="${cls}">${badge}</td>`;
    }
    case 'source':
      return flow.host === null ? html`<td class="${cls}">${flow.sourceIp}</td>` : html`<td class="${cls}" title="${flow.sourceIp}">${flow.host}</td>`;
    case 'user':
      return html`<td class="${cls}">${flow.user}</td>`;
    case 'process': {
      // A follow-up record (late attribution): the same class and title as the script's row.
      const late: HtmlValue = flow.followupOf === null ? null : html`<span class="badge late" title="late attribution: completes the record of flow ${flow.followupOf}">late</span>`;
      return html`<td class="${cls}">${flow.process}${late}</td>`;
    }
    case 'destination':
      return html`<td class="${cls}">${flow.destination}</td>`;
    case 'rule':
      return html`<td class="${cls}">${flow.rule}</td>`;
    case 'tags':
      return html`<td class="${cls}">${flow.tags.join(', ')}</td>`;
    case 'score':
      return html`<td class="${cls}">${flow.score === null ? null : String(flow.score)}</td>`;
  }
}

function flowRow(flow: ConsoleFlowSummary): SafeHtml {
  return html`<tr class="${rowClass(flow)}" data-flow-id="${flow.id}">${FLOW_COLUMNS.map((c) => cell(c.key, c.cls, flow))}</tr>`;
}

/** One row of the flows table, exactly as the script builds it for a live flow. */
export function flowRowHtml(flow: ConsoleFlowSummary): string {
  return flowRow(flow).toString();
}

function textField(name: keyof FlowFilter & string, label: string, value: string | undefined, placeholder: string): SafeHtml {
  return html`<div class="field"><label for="f-${name}">${label}</label><input type="search" id="f-${name}" name="${name}" value="${value ?? ''}" placeholder="${placeholder}"></div>`;
}

function selectField(name: string, label: string, options: readonly (readonly [string, string])[], selected: string): SafeHtml {
  const items = options.map(([value, text]) => html`<option value="${value}"${value === selected && html` selected`}>${text}</option>`);
  return html`<div class="field"><label for="f-${name}">${label}</label><select id="f-${name}" name="${name}">${items}</select></div>`;
}

/** The filter form: GET /ui/flows with the parameter names parseFilter (src/console/filter.ts) reads. */
function filterForm(filter: FlowFilter): SafeHtml {
  const alert = filter.alert === undefined ? '' : filter.alert ? 'yes' : 'no';
  return html`<form class="filter" method="get" action="/ui/flows" role="search" aria-label="Filter flows">
${selectField('action', 'Action', [['', 'any'], ['allow', 'allow'], ['block', 'block']], filter.action ?? '')}
${selectField('alert', 'Alert', [['', 'any'], ['yes', 'yes'], ['no', 'no']], alert)}
${textField('host', 'Host', filter.host, 'name or IP')}
${textField('user', 'User', filter.user, 'e.g. CORP\\alice')}
${textField('process', 'Process', filter.process, 'e.g. rundll32')}
${textField('rule', 'Rule', filter.rule, 'rule id (exact)')}
${textField('tag', 'Tag', filter.tag, 'tag (exact)')}
${textField('destination', 'Destination', filter.destination, 'e.g. evil.example')}
<div class="field"><label for="f-score">Score (min)</label><input type="number" id="f-score" name="score" min="0" max="100" step="any" value="${filter.minScore === undefined ? '' : String(filter.minScore)}"></div>
<div class="field buttons"><button type="submit">Apply</button> <a href="/ui/flows">Clear</a></div>
</form>`;
}

export function renderFlowsPage(view: FlowsPageView): string {
  const query = filterQuery(view.filter);
  const newest = query === '' ? '/ui/flows' : `/ui/flows?${query}`;
  const live = view.source === 'ring' && view.beforeMs === null;
  const liveBar = live
    ? html`<div class="live-bar"><p id="live-status" aria-live="polite">connecting…</p><button type="button" id="live-toggle">Pause</button></div>`
    : html`<div class="live-bar"><p id="live-status" aria-live="polite">history — not live</p><a href="${newest}">Back to the newest flows</a></div>`;
  const note = live
    ? html`<p class="source-note">Newest first, from the in-memory ring of recent flows. New flows appear at the top as they happen (at most ${formatCount(view.liveRate)} a second; more are sampled and the line above says so).</p>`
    : html`<p class="source-note">Older flows from ${view.source === 'history' ? 'the history store' : 'the in-memory ring (no history store: console.history.store is none)'}, newest first. New flows are not added to this page.</p>`;
  const head = FLOW_COLUMNS.map((c) => html`<th scope="col" class="${c.cls}">${c.label}</th>`);
  const rows =
    view.rows.length > 0
      ? view.rows.map(flowRow)
      : html`<tr class="empty"><td colspan="${FLOW_COLUMNS.length}">${live ? 'No flows match this filter yet.' : 'No older flows match this filter.'}</td></tr>`;
  const older =
    view.olderBeforeMs === null
      ? null
      : html`<nav class="pager" aria-label="Pages of flows"><a href="/ui/flows?${query === '' ? '' : `${query}&`}before=${String(view.olderBeforeMs)}" rel="next">Older</a></nav>`;
  const body = html`${filterForm(view.filter)}
${liveBar}
${note}
<div class="table-wrap flows-wrap"><table id="flows" data-filter="${query}" data-live-rate="${String(view.liveRate)}" data-live="${live ? 'on' : 'off'}">
<caption class="vh">Flows, newest first</caption>
<thead><tr>${head}</tr></thead>
<tbody>${rows}</tbody>
</table></div>
${older}`;
  return renderPage(view.frame, body);
}
