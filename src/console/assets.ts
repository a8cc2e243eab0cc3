/**
 * The console's static assets (issue 13), served from /ui/assets/ so the CSP can allow only 'self': no inline
 * script or style anywhere, nothing fetched from elsewhere, works offline, no build step.
 *
 * CONSOLE_JS is the one browser script (ES2020, no dependencies). It does something only on the flows page:
 * streams new rows in from /ui/events (server-sent events: WHATWG HTML §9.2), pauses and resumes, and expands a
 * row's details. It builds rows with DOM APIs — setAttribute and textContent only, never innerHTML with data —
 * following FLOW_COLUMNS (serialized in below), so its rows are those of views/flows.ts `flowRowHtml`, which the
 * unit test checks. The one innerHTML is the detail fragment, which the server renders escaped
 * (views/flow-detail.ts). The script text holds no backtick and no "${" of its own, so it can live in
 * String.raw; the only interpolations are the constants shared with the views.
 */
import { FLOW_COLUMNS, LIVE_MAX_ROWS } from './views/flows.js';

const COLUMNS_JSON = JSON.stringify(FLOW_COLUMNS.map((c) => [c.key, c.cls]));

export const CONSOLE_JS = String.raw`// egress-inspector console: live rows and row details on the flows page. Served as is; no dependencies.
const COLUMNS = ${COLUMNS_JSON};
const MAX_ROWS = ${String(LIVE_MAX_ROWS)};
const SEVERITIES = ['low', 'medium', 'high', 'critical'];
/** No sampling event for this long: the stream is no longer cut. */
const SAMPLING_QUIET_MS = 2000;
/** A stream the browser gave up on (HTTP error) is reopened after this long. */
const RETRY_MS = 5000;

function make(tag, attrs, text) {
  const node = document.createElement(tag);
  for (let i = 0; i < attrs.length; i++) node.setAttribute(attrs[i][0], attrs[i][1]);
  if (text !== undefined && text !== null && text !== '') node.textContent = String(text);
  return node;
}

function pad(n) {
  return (n < 10 ? '0' : '') + n;
}

function isoOf(ms) {
  const d = new Date(ms);
  return isNaN(d.getTime()) ? '' : d.toISOString();
}

/** Local HH:MM:SS; the full ISO time is in the title. */
function clockOf(ms) {
  const d = new Date(ms);
  return isNaN(d.getTime()) ? '' : pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

function count(n) {
  return Number(n).toLocaleString('en-US');
}

function actionClass(action) {
  return action === 'block' ? 'action-block' : 'action-allow';
}

function severityClass(severity) {
  return SEVERITIES.indexOf(severity) >= 0 ? 'sev-' + severity : 'sev-other';
}

function rowClass(f) {
  return 'flow ' + actionClass(f.action) + (f.severity === null || f.severity === undefined ? '' : ' alert ' + severityClass(f.severity)) + (typeof f.followupOf === 'string' ? ' followup' : '');
}

/** One cell, as views/flows.ts renders it. */
function cellOf(key, cls, f) {
  const td = make('td', [['class', cls]]);
  switch (key) {
    case 'time': {
      const iso = isoOf(f.timeMs);
      const button = make('button', [['type', 'button'], ['class', 'expand'], ['aria-expanded', 'false'], ['aria-controls', 'detail-' + f.id]]);
      button.appendChild(make('span', [['class', 'vh']], 'Details of the flow at '));
      button.appendChild(make('time', [['datetime', iso], ['title', iso]], clockOf(f.timeMs)));
      td.appendChild(button);
      return td;
    }
    case 'action':
      td.appendChild(make('span', [['class', 'badge ' + actionClass(f.action)]], f.action));
      return td;
    case 'alert':
      if (f.severity !== null && f.severity !== undefined) td.appendChild(make('span', [['class', 'badge ' + severityClass(f.severity)]], f.severity));
      return td;
    case 'source':
      if (f.host === null || f.host === undefined) return make('td', [['class', cls]], f.sourceIp);
      return make('td', [['class', cls], ['title', f.sourceIp]], f.host);
    case 'process': {
      const cell = make('td', [['class', cls]], f.process);
      if (typeof f.followupOf === 'string') cell.appendChild(make('span', [['class', 'badge late'], ['title', 'late attribution: completes the record of flow ' + f.followupOf]], 'late'));
      return cell;
    }
    case 'tags':
      return make('td', [['class', cls]], (f.tags || []).join(', '));
    case 'score':
      return make('td', [['class', cls]], f.score === null || f.score === undefined ? '' : String(f.score));
    default:
      return make('td', [['class', cls]], f[key]);
  }
}

/** A <tr> for a flow summary (the JSON of a "flow" event or of /ui/api/flows). */
function buildRow(f) {
  const tr = make('tr', [['class', rowClass(f)], ['data-flow-id', String(f.id)]]);
  for (let i = 0; i < COLUMNS.length; i++) tr.appendChild(cellOf(COLUMNS[i][0], COLUMNS[i][1], f));
  return tr;
}

function parse(text) {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' ? value : null;
  } catch (_) {
    return null;
  }
}

function localizeTimes(root) {
  const times = root.querySelectorAll('td.c-time time[datetime]');
  for (let i = 0; i < times.length; i++) {
    const ms = Date.parse(times[i].getAttribute('datetime'));
    if (!isNaN(ms)) times[i].textContent = clockOf(ms);
  }
}

/** Expand or collapse a row's details; the first expansion fetches the fragment. */
function toggleDetail(button) {
  const row = button.closest('tr');
  if (!row) return;
  const id = row.getAttribute('data-flow-id') || '';
  const open = button.getAttribute('aria-expanded') !== 'true';
  button.setAttribute('aria-expanded', open ? 'true' : 'false');
  let detail = document.getElementById('detail-' + id);
  if (detail) {
    detail.hidden = !open;
    return;
  }
  if (!open) return;
  detail = make('tr', [['class', 'detail-row'], ['id', 'detail-' + id]]);
  const td = make('td', [['colspan', String(COLUMNS.length)]]);
  const box = make('div', [['class', 'detail'], ['aria-busy', 'true']], 'loading…');
  td.appendChild(box);
  detail.appendChild(td);
  row.after(detail);
  fetch('/ui/flows/' + encodeURIComponent(id) + '/detail', { credentials: 'same-origin', headers: { accept: 'text/html' } })
    .then((r) => r.text().then((text) => {
      const type = r.headers.get('content-type') || '';
      if (r.ok && !r.redirected && type.indexOf('text/html') === 0) {
        box.innerHTML = text; // server-rendered and escaped (views/flow-detail.ts): the one place markup is inserted
      } else if (r.redirected || r.status === 401) {
        box.textContent = 'Signed out: reload the page to sign in again.';
      } else {
        box.textContent = 'Could not load the details (HTTP ' + r.status + '): ' + text.trim().slice(0, 300);
      }
    }))
    .catch((err) => {
      box.textContent = 'Could not load the details: ' + (err && err.message ? err.message : String(err));
    })
    .finally(() => box.removeAttribute('aria-busy'));
}

function startFlows(table) {
  const tbody = table.tBodies[0];
  const status = document.getElementById('live-status');
  const toggle = document.getElementById('live-toggle');
  const filter = table.getAttribute('data-filter') || '';
  localizeTimes(table);
  table.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button.expand') : null;
    if (button && table.contains(button)) toggleDetail(button);
  });
  if (table.getAttribute('data-live') !== 'on' || !tbody) return;
  if (typeof EventSource === 'undefined') {
    if (status) status.textContent = 'not live: this browser has no EventSource';
    return;
  }

  let paused = false;
  let resuming = null;
  let missed = 0;
  let sampling = null;
  let quietTimer = 0;
  let source = null;

  function say(text) {
    if (status) status.textContent = text;
  }
  function liveText() {
    if (paused) return missed > 0 ? 'paused (' + count(missed) + ' new)' : 'paused';
    if (sampling) return 'live — sampling: showing ' + count(sampling.sent) + ' of ' + count(sampling.matched) + ' flows/s (limit ' + count(sampling.limit) + '/s)';
    return 'live';
  }
  function trim() {
    const rows = tbody.querySelectorAll('tr.flow');
    for (let i = rows.length - 1; i >= MAX_ROWS; i--) {
      const next = rows[i].nextElementSibling;
      if (next && next.classList.contains('detail-row')) next.remove();
      rows[i].remove();
    }
  }
  // New rows are inserted once per animation frame, together: the stream sends its flows in bursts (up to the live
  // rate at the start of each second), and one insertion and one trim per burst keeps the browser's layout work
  // small. A hidden tab gets no frames: its queue stays bounded and is shown when the tab is visible again.
  let queued = [];
  let frameAsked = false;
  function flush() {
    frameAsked = false;
    if (queued.length === 0) return;
    const empty = tbody.querySelector('tr.empty');
    if (empty) empty.remove();
    const fragment = document.createDocumentFragment();
    for (let i = queued.length - 1; i >= 0; i--) fragment.appendChild(buildRow(queued[i]));
    queued = [];
    tbody.insertBefore(fragment, tbody.firstChild);
    trim();
  }
  function prepend(f) {
    queued.push(f);
    if (queued.length > MAX_ROWS) queued.shift();
    if (!frameAsked) {
      frameAsked = true;
      requestAnimationFrame(flush);
    }
  }
  function onFlow(event) {
    const f = parse(event.data);
    if (!f || f.id === undefined) return;
    if (resuming) {
      if (resuming.length < MAX_ROWS) resuming.push(f);
    } else if (paused) {
      missed++;
      say(liveText());
    } else {
      prepend(f);
    }
  }
  function onSampling(event) {
    const s = parse(event.data);
    if (!s) return;
    sampling = s;
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => {
      sampling = null;
      say(liveText());
    }, SAMPLING_QUIET_MS);
    say(liveText());
  }
  function connect() {
    source = new EventSource('/ui/events?' + filter);
    source.addEventListener('open', () => say(liveText()));
    source.addEventListener('flow', onFlow);
    source.addEventListener('sampling', onSampling);
    source.addEventListener('error', () => {
      say('disconnected — retrying');
      // The browser retries by itself after a network error, but gives up on an HTTP error (e.g. 503: too many viewers).
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, RETRY_MS);
      }
    });
  }
  /** Resume: the list again from the server (what came while paused), then live rows on top. */
  function resume() {
    resuming = [];
    say('loading…');
    fetch('/ui/api/flows?' + filter, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then((r) => (r.ok && !r.redirected ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
      .then((body) => {
        const flows = Array.isArray(body.flows) ? body.flows : [];
        const seen = new Set();
        const rows = document.createDocumentFragment();
        for (let i = 0; i < flows.length; i++) {
          seen.add(flows[i].id);
          rows.appendChild(buildRow(flows[i]));
        }
        tbody.replaceChildren(rows);
        const late = resuming.filter((f) => !seen.has(f.id));
        resuming = null;
        paused = false;
        missed = 0;
        for (let i = 0; i < late.length; i++) prepend(late[i]);
        trim();
        toggle.textContent = 'Pause';
        toggle.disabled = false;
        say(liveText());
      })
      .catch(() => location.reload());
  }
  if (toggle) {
    toggle.addEventListener('click', () => {
      if (resuming) return;
      if (!paused) {
        paused = true;
        missed = 0;
        toggle.textContent = 'Resume';
        say(liveText());
      } else {
        toggle.disabled = true;
        resume();
      }
    });
  }
  connect();
}

const flowsTable = typeof document === 'undefined' ? null : document.getElementById('flows');
if (flowsTable) startFlows(flowsTable);
`;

export const CONSOLE_CSS = String.raw`/* egress-inspector console. Text colours meet WCAG 2.2 AA (4.5:1) on their backgrounds (the unit test checks
   every rule that sets both); focus is always visible; badges carry text, never colour alone. */
:root { --fg: #1b1f24; --muted: #4b5563; --bg: #ffffff; --line: #d0d7de; --head: #1f2937; --link: #0b57d0; --focus: #0b57d0; }
* { box-sizing: border-box; }
html { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
body { margin: 0; color: #1b1f24; background: #ffffff; }
a { color: #0b57d0; }
a:visited { color: #6b2fb3; }
code, pre, .where, .hash { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.92em; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.vh { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.skip { position: absolute; left: 0.5rem; top: -3rem; padding: 0.4rem 0.8rem; color: #ffffff; background: #0b57d0; z-index: 10; }
.skip:focus { top: 0.5rem; }

/* header and nav */
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem; padding: 0.5rem 1.25rem; color: #f9fafb; background: #1f2937; }
.top a { color: #f3f4f6; }
.top :focus-visible { outline-color: #fbbf24; }
.brand { font-weight: 700; text-decoration: none; letter-spacing: 0.02em; }
.top nav ul { display: flex; flex-wrap: wrap; gap: 0.25rem; margin: 0; padding: 0; list-style: none; }
.top nav a { display: block; padding: 0.35rem 0.7rem; border-radius: 4px; text-decoration: none; }
.top nav a:hover { text-decoration: underline; }
.top nav a[aria-current="page"] { color: #ffffff; background: #374151; font-weight: 700; text-decoration: underline; text-underline-offset: 0.25em; }
.signout { margin-left: auto; }
.signout button { color: #f9fafb; background: #374151; border: 1px solid #6b7280; }

/* page */
main { padding: 1rem 1.25rem 3rem; max-width: 1600px; }
main:focus { outline: none; }
h1 { font-size: 1.5rem; margin: 0.25rem 0 0.75rem; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 0.5rem; }
h3 { font-size: 1.02rem; margin: 1rem 0 0.4rem; }
section { margin-bottom: 1rem; }
.none { color: #4b5563; }
.empty { color: #374151; font-style: italic; }
.note, .source-note, .policy-note, .hint { color: #374151; }
.bounds { padding: 0.5rem 0.9rem; color: #6b4500; background: #fff4d6; border-left: 4px solid #b7791f; }
.summary { font-size: 1.05rem; }
.big { font-size: 2.4rem; font-weight: 700; line-height: 1.1; margin-right: 0.3rem; vertical-align: -0.15em; }
.bad { color: #a50e0e; font-weight: 700; }
.error { padding: 0.4rem 0.8rem; color: #8c1d18; background: #fde3df; border-left: 4px solid #b3261e; }
.errors { padding: 0.25rem 1rem 0.5rem; color: #5c0f0b; background: #fde3df; border-left: 5px solid #b3261e; }
.errors h2 { margin-top: 0.5rem; }
.notice { padding: 0.5rem 0.9rem; border-radius: 4px; font-weight: 600; }
.notice-ok { color: #0d5223; background: #e6f4ea; border: 1px solid #81c995; }
.notice-error { color: #8c1d18; background: #fde3df; border: 1px solid #ee675c; }
ul.plain { margin: 0; padding-left: 1.1rem; }

/* forms and buttons */
button, input, select { font: inherit; }
button { padding: 0.3rem 0.8rem; color: #ffffff; background: #0b57d0; border: 1px solid #0b57d0; border-radius: 4px; cursor: pointer; }
button:hover { background: #0842a0; }
button:disabled { color: #374151; background: #e5e7eb; border-color: #9ca3af; cursor: default; }
input, select { padding: 0.25rem 0.4rem; color: #1b1f24; background: #ffffff; border: 1px solid #6b7280; border-radius: 4px; }
label { font-weight: 600; font-size: 0.9rem; }
.filter { display: grid; grid-template-columns: repeat(auto-fill, minmax(10.5rem, 1fr)); gap: 0.5rem 0.75rem; align-items: end; padding: 0.75rem; background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; }
.field { display: flex; flex-direction: column; gap: 0.15rem; }
.field.buttons { flex-direction: row; align-items: center; gap: 0.75rem; }
.live-bar { display: flex; align-items: center; gap: 1rem; margin: 0.75rem 0 0.25rem; }
#live-status { margin: 0; font-weight: 600; }
#live-toggle { color: #1b1f24; background: #ffffff; border-color: #6b7280; }
#live-toggle:hover { background: #f3f4f6; }
.reload { margin: 0.5rem 0; }
.login { max-width: 26rem; margin: 4rem auto; padding: 1.5rem; border: 1px solid var(--line); border-radius: 8px; }
.login-form { display: flex; flex-direction: column; gap: 0.5rem; }

/* tables */
.table-wrap { overflow-x: auto; margin: 0.5rem 0; }
.flows-wrap { max-height: 75vh; overflow: auto; border: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; border-bottom: 1px solid #e5e7eb; }
thead th { position: sticky; top: 0; z-index: 1; color: #1b1f24; background: #eef1f4; border-bottom: 2px solid #9ca3af; white-space: nowrap; }
tbody tr:hover { background: #f6f8fa; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
#flows td { white-space: nowrap; max-width: 22rem; overflow: hidden; text-overflow: ellipsis; }
#flows td.c-tags, #flows td.c-destination { white-space: normal; overflow-wrap: anywhere; }
tr.action-block > td.c-time { box-shadow: inset 4px 0 0 #b3261e; }
tr.alert { background: #fffbeb; }
button.expand { padding: 0.05rem 0.35rem; color: #0b57d0; background: transparent; border: 1px solid transparent; font-variant-numeric: tabular-nums; }
button.expand:hover { border-color: #0b57d0; background: #ffffff; }
button.expand::before { content: "\25B8"; display: inline-block; width: 1em; }
button.expand[aria-expanded="true"]::before { content: "\25BE"; }
tr.detail-row > td { padding: 0.5rem 1rem 1rem; background: #f6f8fa; border-left: 4px solid #0b57d0; white-space: normal; max-width: none; }
.detail[aria-busy="true"] { color: #374151; font-style: italic; }
pre.record { max-height: 24rem; overflow: auto; padding: 0.6rem; color: #1b1f24; background: #ffffff; border: 1px solid var(--line); white-space: pre-wrap; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0.5rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.pager { margin: 0.75rem 0; }
.pager a { font-weight: 600; }
tr.unmanaged > th { box-shadow: inset 4px 0 0 #b3261e; }
tr.after { color: #4b5563; }
.why { white-space: normal; overflow-wrap: anywhere; }
svg.spark { color: #b3261e; vertical-align: middle; }

/* badges: the text says what the colour says */
.badge { display: inline-block; padding: 0 0.45rem; border: 1px solid transparent; border-radius: 999px; font-size: 0.82rem; font-weight: 700; line-height: 1.5; white-space: nowrap; }
.badge.action-block { color: #ffffff; background: #b3261e; }
.badge.action-allow { color: #0d5223; background: #e6f4ea; border-color: #81c995; }
.badge.sev-low { color: #1a3f8a; background: #e8f0fe; }
.badge.late { margin-left: 0.4rem; color: #4a2a7a; background: #f1e8fd; border-color: #b39ddb; }
.badge.sev-medium { color: #6b4500; background: #fff4d6; border-color: #e3b341; }
.badge.sev-high { color: #8c1d18; background: #fde3df; border-color: #ee675c; }
.badge.sev-critical { color: #ffffff; background: #7d1410; }
.badge.sev-other { color: #1b1f24; background: #e5e7eb; }
.badge.mode-live { color: #0d5223; background: #e6f4ea; }
.badge.mode-shadow { color: #4a2a7a; background: #ede7f6; }
.badge.status-matched { color: #0d5223; background: #e6f4ea; }
.badge.status-pending { color: #6b4500; background: #fff4d6; }
.badge.status-failed { color: #3c4043; background: #eceff1; }
.badge.after-decision { color: #4b5563; background: #ffffff; border: 1px dashed #6b7280; }
.badge.unmanaged { color: #8c1d18; background: #fde3df; border-color: #ee675c; }
.badge.outcome-success, .badge.state-ok { color: #0d5223; background: #e6f4ea; }
.badge.outcome-unchanged { color: #1b1f24; background: #e5e7eb; }
.badge.outcome-failure, .badge.state-bad { color: #ffffff; background: #b3261e; }
.badge.outcome-refused { color: #6b4500; background: #fff4d6; }

/* narrow windows: the header and the filter wrap, tables scroll sideways */
@media (max-width: 900px) {
  html { font-size: 14px; }
  .top { padding: 0.5rem 0.75rem; }
  .signout { margin-left: 0; }
  main { padding: 0.75rem 0.75rem 2rem; }
  .filter { grid-template-columns: repeat(auto-fill, minmax(8.5rem, 1fr)); }
  .flows-wrap { max-height: none; }
  #flows td { max-width: 12rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: 0.4rem; }
}
@media (prefers-reduced-motion: reduce) { * { scroll-behavior: auto; } }
`;

/** A 32×32 mark: an arrow leaving a box (egress), in the header's colours. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f2937"/><path d="M7 9v14h9" fill="none" stroke="#9ca3af" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/><path d="M13 16h12M20 10.5 25.5 16 20 21.5" fill="none" stroke="#fbbf24" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>
`;
