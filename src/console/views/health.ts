/**
 * The health page (issue 13): what /healthz and /metrics say, for a person — uptime, listeners, flow and hint
 * rates, DNS, the state of every store, what the flow log and the console's history lost. A store that is not
 * "ok"/"ready" and every non-zero loss counter are marked in words and with a class, never by colour alone.
 */
import type { HealthView, HistoryStats, PageFrame } from '../model.js';
import { html, type HtmlValue, type SafeHtml } from './html.js';
import { badge, formatCount, formatDuration, renderPage, tableOrEmpty, timeTag } from './layout.js';

const GOOD_STATES: ReadonlySet<string> = new Set(['ok', 'ready', 'up', 'connected', 'open', 'running']);

function facts(items: readonly (readonly [string, HtmlValue])[]): SafeHtml {
  return html`<dl class="facts">${items.map(([term, value]) => html`<dt>${term}</dt><dd>${value}</dd>`)}</dl>`;
}

/** A counter of losses: flagged when not zero. */
function loss(n: number): SafeHtml {
  return n > 0 ? html`<span class="bad">${formatCount(n)}</span>` : html`${formatCount(n)}`;
}

function perSecond(n: number): string {
  return `${formatCount(Math.round(n * 100) / 100)}/s`;
}

function historyFacts(h: HistoryStats): SafeHtml {
  return facts([
    ['Backend', h.backend],
    ['File', h.path ?? html`<span class="none">—</span>`],
    ['Rows', formatCount(h.rows)],
    ['Written since start', formatCount(h.written)],
    ['Sampled out (allowed, not alerts, over the rate)', formatCount(h.sampledOut)],
    ['Dropped (queue full or write failed)', loss(h.dropped)],
    ['Pruned (retention, max rows)', formatCount(h.pruned)],
    ['Retention', formatDuration(h.retentionMs)],
    ['Max rows', formatCount(h.maxRows)],
    ['Last error', h.lastError === null ? html`<span class="none">none</span>` : html`<span class="bad">${h.lastError}</span>`],
  ]);
}

export function renderHealthPage(frame: PageFrame, view: HealthView): string {
  const stores = view.stores.map((s) => {
    const good = GOOD_STATES.has(s.state.toLowerCase());
    return html`<tr class="${good ? 'state-ok' : 'state-bad'}"><th scope="row">${s.name}</th><td>${s.backend}</td><td>${badge(s.state, good ? 'state-ok' : 'state-bad')}</td><td>${s.detail}</td></tr>`;
  });
  const rejected = view.hints.rejected.map((r) => html`<tr><th scope="row">${r.reason}</th><td class="num">${formatCount(r.count)}</td></tr>`);
  const body = html`<section aria-labelledby="process"><h2 id="process">Process</h2>
${facts([
  ['Version', view.version],
  ['Ready', view.ready ? badge('ready', 'state-ok') : badge('not ready', 'state-bad')],
  ['Up for', formatDuration(view.nowMs - view.startedMs)],
  ['Started', timeTag(view.startedMs)],
])}
</section>
<section aria-labelledby="listeners"><h2 id="listeners">Listeners</h2>
${tableOrEmpty(
  view.listeners.map((l) => html`<tr><th scope="row">${l.name}</th><td><code>${l.address}</code></td></tr>`),
  html`<tr><th scope="col">Listener</th><th scope="col">Address</th></tr>`,
  'No listener is open.',
  { id: 'listeners-table' },
)}
</section>
<section aria-labelledby="flows-h"><h2 id="flows-h">Flows</h2>
${facts([
  ['Records per second (last minute)', perSecond(view.flowRate.lastMinute)],
  ['Records since start', formatCount(view.flowRate.total)],
  ['Active flows', formatCount(view.activeFlows)],
  ['Blocked since start', formatCount(view.blocked)],
  ['Flow-log records dropped', loss(view.flowLogDropped)],
])}
</section>
<section aria-labelledby="hints-h"><h2 id="hints-h">Process hints</h2>
${facts([
  ['Hints per second', perSecond(view.hints.perSecond)],
  ['Accepted since start', formatCount(view.hints.accepted)],
])}
${tableOrEmpty(rejected, html`<tr><th scope="col">Rejected because</th><th scope="col" class="num">Hints</th></tr>`, 'No hint was rejected.', { id: 'hints-rejected' })}
</section>
<section aria-labelledby="dns-h"><h2 id="dns-h">DNS</h2>
${facts([
  ['DNS listener', view.dns.enabled ? 'enabled' : 'disabled'],
  ['Queries since start', formatCount(view.dns.queries)],
  ['Upstream errors', loss(view.dns.upstreamErrors)],
])}
</section>
<section aria-labelledby="stores-h"><h2 id="stores-h">Stores</h2>
${tableOrEmpty(stores, html`<tr><th scope="col">Store</th><th scope="col">Backend</th><th scope="col">State</th><th scope="col">Holds</th></tr>`, 'No store is configured.', { id: 'stores-table' })}
</section>
<section aria-labelledby="console-h"><h2 id="console-h">Console</h2>
${facts([
  ['Live viewers', formatCount(view.console.viewers)],
  ['Recent flows in memory', `${formatCount(view.console.ringSize)} of ${formatCount(view.console.ringCapacity)}`],
  ['Allowed flows kept', `at most ${formatCount(view.console.maxRate)} a second (blocks and alerts always); ${formatCount(view.console.sampledOut)} not kept since start`],
])}
<h3>History store</h3>
${historyFacts(view.console.history)}
</section>`;
  return renderPage(frame, body);
}
