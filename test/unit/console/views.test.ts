import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONSOLE_CSS, CONSOLE_JS, FAVICON_SVG } from '../../../src/console/assets.js';
import { filterQuery, parseFilter } from '../../../src/console/filter.js';
import type { AlertGroup, AlertsView, ConsoleFlow, ConsoleFlowSummary, FlowDetail, FlowFilter, FlowsPageView, HealthView, PageFrame, PolicyView } from '../../../src/console/model.js';
import { CoverageTally, type CoverageReport } from '../../../src/coverage/tally.js';
import { renderAlertsPage, sparklinePoints } from '../../../src/console/views/alerts.js';
import { renderEndpointsPage } from '../../../src/console/views/endpoints.js';
import { recordStrings, renderFlowDetail } from '../../../src/console/views/flow-detail.js';
import { FLOW_COLUMNS, flowRowHtml, LIVE_MAX_ROWS, renderFlowsPage } from '../../../src/console/views/flows.js';
import { renderHealthPage } from '../../../src/console/views/health.js';
import { escapeHtml, html, joinHtml, raw, SafeHtml } from '../../../src/console/views/html.js';
import { formatDuration, NAV, renderPage } from '../../../src/console/views/layout.js';
import { renderLogin } from '../../../src/console/views/login.js';
import { renderPolicyPage } from '../../../src/console/views/policy.js';

// ---- attacker strings and sample data -------------------------------------------------------------------------

const XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "'><svg onload=alert(3)>", 'javascript:alert(4)', '</textarea><iframe src=//evil.example>'];
/** All of them in one value, so every field carries every payload. */
const EVIL = XSS.join(' ');

const T0 = Date.UTC(2026, 10, 26, 13, 21, 57, 504);
const CSRF = 'k3J9_x-Tq0aVb7LmN2pQ';

function frame(active: PageFrame['active'], notice: PageFrame['notice'] = null): PageFrame {
  return { title: active[0]!.toUpperCase() + active.slice(1), active, csrf: CSRF, notice };
}

function flow(over: Partial<ConsoleFlow> = {}): ConsoleFlow {
  const base: ConsoleFlow = {
    id: '8d95f88b-3c1e-4d4f-9a51-0c6f2b1e7a10',
    timeMs: T0,
    action: 'block',
    protocol: 'tls',
    severity: 'high',
    sourceIp: '10.20.0.7',
    user: 'CORP\\alice',
    host: 'WS-042',
    process: 'rundll32.exe',
    rule: 'lolbin-external',
    rules: ['lolbin-external', 'shadow-rare-ja4'],
    tags: ['attack.t1218.011', 'attack.t1071.001'],
    destination: 'evil.example:8443',
    score: 65,
    attribution: 'telemetry',
    followupOf: null,
    record: '{}',
  };
  return { ...base, ...over };
}

function summary(over: Partial<ConsoleFlow> = {}): ConsoleFlowSummary {
  const { record: _record, ...rest } = flow(over);
  return rest;
}

/** A flow whose every text field is hostile. */
const evilFlow = summary({ id: EVIL, user: EVIL, host: EVIL, sourceIp: EVIL, process: EVIL, rule: EVIL, rules: [EVIL], tags: XSS, destination: EVIL });

function record(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '@timestamp': new Date(T0).toISOString(),
    event: { id: '8d95f88b-3c1e-4d4f-9a51-0c6f2b1e7a10', action: 'block', severity: 3 },
    source: { ip: '10.20.0.7', port: 50312 },
    destination: { domain: 'evil.example', ip: '203.0.113.9', port: 8443 },
    process: { name: 'rundll32.exe', command_line: 'rundll32.exe C:\\Users\\Public\\x.dll,Start' },
    user_agent: { original: 'Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1)' },
    egress: {
      score: 65,
      reasons: ['uncommon destination port 8443 (+25 uncommon_port)', 'rare JA4 for this host (+40 rare_ja4)'],
      explanation: ['rule lolbin-external: process.name is one of [rundll32.exe, mshta.exe]'],
    },
    rule: { id: 'lolbin-external' },
    ...over,
  };
}

function detail(over: Partial<FlowDetail> = {}): FlowDetail {
  return {
    flow: flow(),
    record: record(),
    policySha256: 'a3f1c09be27d4410e5d6b8c9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3',
    rules: [
      { rule: 'allow-updates', mode: 'live', action: 'allow', file: 'policies/base.yaml', line: 4, status: 'failed', why: 'destination.domain ends with .windowsupdate.com is false: destination.domain is "evil.example"', afterDecision: false },
      { rule: 'lolbin-external', mode: 'live', action: 'block', file: 'policies/base.yaml', line: 12, status: 'matched', why: 'process.name is one of [rundll32.exe, mshta.exe]', afterDecision: false },
      { rule: 'shadow-rare-ja4', mode: 'shadow', action: 'block', file: 'policies/shadow.yaml', line: 3, status: 'pending', why: 'waits for tls.client.ja4', afterDecision: false },
      { rule: 'tag-high-port', mode: 'live', action: 'tag', file: 'policies/base.yaml', line: 30, status: 'matched', why: 'destination.port >= 1024', afterDecision: true },
    ],
    explainError: null,
    followUps: [],
    ...over,
  };
}

function group(over: Partial<AlertGroup> = {}): AlertGroup {
  const perMinute = Array.from({ length: 60 }, (_, i) => (i % 10 === 0 ? 12 : i % 3));
  return {
    key: 'lolbin-external',
    rule: 'lolbin-external',
    host: null,
    process: null,
    sourceIp: null,
    severity: 'high',
    count: 41,
    blocked: 39,
    firstMs: T0 - 3_600_000,
    lastMs: T0,
    perMinute,
    ...over,
  };
}

function alertsView(over: Partial<AlertsView> = {}): AlertsView {
  return {
    byRule: [group(), group({ key: 'mshta-remote', rule: 'mshta-remote', severity: 'critical', count: 3, blocked: 3, perMinute: [0, 1, 2] })],
    byEndpoint: [group({ key: 'WS-042 / mshta.exe', rule: null, host: 'WS-042', process: 'mshta.exe', sourceIp: '10.20.0.7' }), group({ key: '10.20.0.9', rule: null, sourceIp: '10.20.0.9', severity: 'medium' })],
    total: 44,
    windowMinutes: 60,
    evictedGroups: 0,
    ...over,
  };
}

/** A coverage report from the real tally: a managed host, an unmanaged one, one whose telemetry stopped. */
function coverage(hostName = 'WS-042'): CoverageReport {
  const tally = new CoverageTally();
  const t = T0 - 60 * 60_000;
  tally.addFlow('a1', '10.20.0.7', 'telemetry', hostName, t);
  tally.noteHint('10.20.0.7', t - 400, t);
  tally.addFlow('a2', '10.20.0.7', 'telemetry', hostName, T0 - 60_000);
  tally.addFlow('a3', '10.20.0.7', 'none', hostName, T0 - 30_000);
  tally.addFlow('b1', '10.20.0.66', 'none', undefined, T0 - 20_000);
  tally.addFlow('c1', '10.20.0.9', 'telemetry', 'WS-077', t);
  tally.addFlow('c2', '10.20.0.9', 'none', 'WS-077', T0 - 10_000);
  return tally.report({ nowMs: T0 });
}

function policyView(over: Partial<PolicyView> = {}): PolicyView {
  return {
    sha256: 'a3f1c09be27d4410e5d6b8c9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3',
    files: ['/etc/egress-inspector/policies/base.yaml', '/etc/egress-inspector/policies/shadow.yaml'],
    rules: [
      { id: 'lolbin-external', mode: 'live', action: 'block', file: 'policies/base.yaml', line: 12, severity: 'high', tags: ['attack.t1218.011'], hits: 41 },
      { id: 'shadow-rare-ja4', mode: 'shadow', action: 'block', file: 'policies/shadow.yaml', line: 3, severity: null, tags: [], hits: 7 },
    ],
    builtinHits: [{ id: 'builtin:internal-destination', hits: 2 }],
    tests: 14,
    reloads: [
      { atMs: T0, trigger: 'file-change', outcome: 'failure', sha256: null, errors: ['policies/base.yaml:14:9: unknown operator "matches_regex"'], reason: null },
      { atMs: T0 - 60_000, trigger: 'admin-api', outcome: 'success', sha256: 'a3f1c09be27d4410e5d6', errors: [], reason: null },
    ],
    lastErrors: ['policies/base.yaml:14:9: unknown operator "matches_regex"'],
    ...over,
  };
}

function healthView(over: Partial<HealthView> = {}): HealthView {
  return {
    version: '0.1.0',
    startedMs: T0 - (3 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000),
    nowMs: T0,
    ready: true,
    listeners: [{ name: 'proxy', address: '0.0.0.0:3128' }, { name: 'admin', address: '127.0.0.1:9090' }],
    flowRate: { lastMinute: 12.345, total: 98_765 },
    activeFlows: 17,
    blocked: 321,
    hints: { perSecond: 3.5, accepted: 5_000, rejected: [{ reason: 'bad-signature', count: 2 }] },
    dns: { queries: 1_234, upstreamErrors: 0, enabled: true },
    stores: [{ name: 'hints', backend: 'redis', state: 'ok', detail: '120 network, 40 process' }, { name: 'console history', backend: 'sqlite', state: 'SQLITE_FULL: database or disk is full', detail: '1000 flows' }],
    flowLogDropped: 5,
    console: {
      viewers: 2,
      ringSize: 1_000,
      ringCapacity: 5_000,
      maxRate: 100,
      sampledOut: 4_000,
      history: { backend: 'sqlite', path: '/var/lib/egress-inspector/flows.sqlite', rows: 120_000, written: 130_000, sampledOut: 9_000, dropped: 0, pruned: 10_000, lastError: null, retentionMs: 24 * 3_600_000, maxRows: 1_000_000 },
    },
    ...over,
  };
}

function flowsView(over: Partial<FlowsPageView> = {}): FlowsPageView {
  return {
    frame: frame('flows'),
    filter: {},
    rows: [summary(), summary({ id: '0b1c2d3e-0000-4000-8000-000000000002', action: 'allow', severity: null, rule: null, rules: [], tags: [], process: 'msedge.exe', destination: 'www.example.com:443', score: 0, timeMs: T0 - 1_000 })],
    source: 'ring',
    beforeMs: null,
    olderBeforeMs: T0 - 1_000,
    liveRate: 50,
    ...over,
  };
}

// ---- checkers -----------------------------------------------------------------------------------------------------

const TAG = /<\/?([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=/>]+(?:="[^"]*")?)*)\s*\/?>/g;
const ATTR = /\s+([^\s=/>]+)(?:="([^"]*)")?/g;
const ALLOWED_TAGS = new Set(
  'html head meta title link script body a header nav ul li form input button main h1 h2 h3 p div table caption thead tbody tr th td span time select option label section dl dt dd code pre strong svg polyline'.split(' '),
);

function unescape(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] ?? '');
}

/**
 * Nothing in `page` is live except what the views write themselves: every "<" opens one of the known tags, no
 * attribute is an event handler or a style, no URL attribute takes a scheme, the only script is the console's.
 */
function expectNoLiveMarkup(page: string): void {
  const withoutDoctype = page.replace(/^<!doctype html>/, '');
  const tags = [...withoutDoctype.matchAll(TAG)];
  // Every "<" in the output is the start of one of the tags matched above: data never adds one.
  expect(withoutDoctype.split('<').length - 1).toBe(tags.length);
  for (const [whole, name, attrText] of tags) {
    expect(ALLOWED_TAGS.has(name!.toLowerCase()), whole).toBe(true);
    for (const [, attr, value] of (attrText ?? '').matchAll(ATTR)) {
      const a = attr!.toLowerCase();
      expect(a.startsWith('on'), `${a} in ${whole}`).toBe(false);
      expect(a, whole).not.toBe('style');
      if (a === 'href' || a === 'src' || a === 'action') expect(unescape(value ?? ''), whole).toMatch(/^(\/ui\/|#)/);
      if (a === 'srcdoc' || a === 'formaction') throw new Error(`unexpected ${a}`);
    }
    if (name!.toLowerCase() === 'script' && !whole.startsWith('</')) expect(whole).toBe('<script type="module" src="/ui/assets/console.js">');
  }
  // The same over the markup alone (text between tags and quoted attribute values are data, where "onerror=" is harmless words).
  const tagsOnly = page.replace(/>[^<]*</g, '><');
  expect(tagsOnly).not.toMatch(/<script(?![^>]*\ssrc="\/ui\/assets\/console\.js")[\s>]/i);
  const markup = tagsOnly.replace(/="[^"]*"/g, '=""');
  expect(markup).not.toMatch(/<style[\s>]/i);
  expect(markup).not.toMatch(/\sstyle\s*=/i);
  expect(markup).not.toMatch(/\son[a-z]+\s*=/i);
}

/** The attacker's strings are all in the page as text (escaped), none of them live. */
function expectEscaped(page: string, strings: readonly string[] = XSS): void {
  expectNoLiveMarkup(page);
  for (const s of strings) expect(page).toContain(escapeHtml(s));
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** The fields a browser would submit from the GET form in `page` (inputs by value, selects by selected option). */
function submittedFields(page: string): URLSearchParams {
  const form = /<form class="filter"[^>]*>([\s\S]*?)<\/form>/.exec(page)?.[1] ?? '';
  const params = new URLSearchParams();
  for (const [, attrs] of form.matchAll(/<input([^>]*)>/g)) {
    const name = /\sname="([^"]*)"/.exec(attrs!)?.[1];
    const value = /\svalue="([^"]*)"/.exec(attrs!)?.[1] ?? '';
    if (name !== undefined) params.append(unescape(name), unescape(value));
  }
  for (const [, name, options] of form.matchAll(/<select[^>]*\sname="([^"]*)"[^>]*>([\s\S]*?)<\/select>/g)) {
    const all = [...options!.matchAll(/<option value="([^"]*)"( selected)?>/g)];
    const chosen = all.find((o) => o[2] !== undefined) ?? all[0];
    params.append(unescape(name!), unescape(chosen?.[1] ?? ''));
  }
  return params;
}

// ---- a stub DOM for the browser script's row builder ---------------------------------------------------------------

class StubElement {
  readonly attrs = new Map<string, string>();
  children: (StubElement | string)[] = [];
  constructor(readonly tag: string) {}
  setAttribute(name: string, value: unknown): void {
    this.attrs.set(name, String(value));
  }
  getAttribute(name: string): string | null {
    return this.attrs.get(name) ?? null;
  }
  appendChild(child: StubElement): StubElement {
    this.children.push(child);
    return child;
  }
  set textContent(text: string) {
    this.children = [String(text)];
  }
  get innerHTML(): string {
    return this.children.map((c) => (typeof c === 'string' ? escapeHtml(c) : c.outerHTML)).join('');
  }
  set innerHTML(_: string) {
    throw new Error('the row builder must not use innerHTML');
  }
  get outerHTML(): string {
    const attrs = [...this.attrs].map(([k, v]) => ` ${k}="${escapeHtml(v)}"`).join('');
    return `<${this.tag}${attrs}>${this.innerHTML}</${this.tag}>`;
  }
}

const stubDocument = { createElement: (tag: string) => new StubElement(tag), getElementById: () => null };
// The script's own code, run with the stub as `document`: it starts nothing (no #flows) and hands back its builder.
const clientBuildRow = new Function('document', `${CONSOLE_JS}\nreturn buildRow;`)(stubDocument) as (f: unknown) => StubElement;

function clientRowHtml(f: ConsoleFlowSummary): string {
  return clientBuildRow(JSON.parse(JSON.stringify(f))).outerHTML; // the browser gets the summary as JSON
}

// ---- tests --------------------------------------------------------------------------------------------------------

describe('html tag', () => {
  it('escapes & < > " \' in every interpolated value', () => {
    expect(html`<p title="${EVIL}">${EVIL}</p>`.toString()).toBe(`<p title="${escapeHtml(EVIL)}">${escapeHtml(EVIL)}</p>`);
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
    for (const [c, entity] of [['&', '&amp;'], ['<', '&lt;'], ['>', '&gt;'], ['"', '&quot;'], ["'", '&#39;']]) expect(html`a${c}b`.toString()).toBe(`a${entity}b`);
  });

  it('keeps SafeHtml and arrays of it, renders null, undefined and false as nothing, numbers as text', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`${inner}|${[inner, '<x>']}|${null}${undefined}${false}|${42}`.toString()).toBe('<b>&lt;i&gt;</b>|<b>&lt;i&gt;</b>&lt;x&gt;||42');
    expect(raw('<br>').toString()).toBe('<br>');
    expect(joinHtml(['<a>', html`<b></b>`], raw('<hr>')).toString()).toBe('&lt;a&gt;<hr><b></b>');
  });

  it('cannot be forged: SafeHtml is only made by html`` and raw()', () => {
    expect(() => new SafeHtml(Symbol('SafeHtml.mint'), '<script>')).toThrow(TypeError);
  });

  it('round-trips any string: escaped text decodes to the original and holds no markup character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = html`${s}`.toString();
        expect(out).not.toMatch(/[<>"']/);
        expect(unescape(out)).toBe(s);
      }),
    );
  });
});

describe('page frame', () => {
  it.each(NAV.map((n) => n.page))('marks %s, and only it, as the current page', (active) => {
    const page = renderPage(frame(active), html`<p>body</p>`);
    expect(count(page, 'aria-current="page"')).toBe(1);
    const entry = NAV.find((n) => n.page === active)!;
    expect(page).toContain(`<a href="${entry.href}" aria-current="page">${entry.label}</a>`);
    for (const other of NAV.filter((n) => n.page !== active)) expect(page).toContain(`<a href="${other.href}">${other.label}</a>`);
  });

  it('has the document basics, the assets, a skip link and the sign-out form with the CSRF token', () => {
    const page = renderPage(frame('alerts'), html`<p>body</p>`);
    expect(page.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(page).toContain('<meta charset="utf-8">');
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(page).toContain('<link rel="stylesheet" href="/ui/assets/console.css">');
    expect(page).toContain('<script type="module" src="/ui/assets/console.js"></script>');
    expect(page).toContain('<a class="skip" href="#main">Skip to content</a>');
    expect(page).toContain('<main id="main"');
    expect(page).toContain(`<form class="signout" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${CSRF}"><button type="submit">Sign out</button></form>`);
    expectNoLiveMarkup(page);
  });

  it('shows the notice as a status (ok) or an alert (error), escaped', () => {
    expect(renderPage(frame('policy', { kind: 'ok', text: 'Policy reloaded' }), html``)).toContain('<p class="notice notice-ok" role="status">Policy reloaded</p>');
    const error = renderPage(frame('policy', { kind: 'error', text: EVIL }), html``);
    expect(error).toContain(`<p class="notice notice-error" role="alert">${escapeHtml(EVIL)}</p>`);
    expectEscaped(error);
    expect(renderPage(frame('policy'), html``)).not.toContain('class="notice');
  });

  it('escapes a hostile title and CSRF token', () => {
    const page = renderPage({ ...frame('health'), title: EVIL, csrf: EVIL }, html``);
    expectEscaped(page);
  });
});

describe('sign-in page', () => {
  it('is a standalone POST form with the token field, no nav and no script', () => {
    const page = renderLogin({ error: null });
    expect(page).toContain('<form method="post" action="/ui/login"');
    expect(page).toContain('<label for="token">Admin token</label>');
    expect(page).toContain('<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>');
    expect(page).toContain('<button type="submit">Sign in</button>');
    expect(page).not.toContain('<nav');
    expect(page).not.toContain('<script');
    expect(page).not.toContain('role="alert"');
    expectNoLiveMarkup(page);
  });

  it('shows the error as an alert, escaped', () => {
    const page = renderLogin({ error: EVIL });
    expect(page).toContain(`role="alert">${escapeHtml(EVIL)}</p>`);
    expectEscaped(page);
  });
});

describe('flows page', () => {
  it('lists the rows newest first with the table hooks the script needs', () => {
    const view = flowsView({ filter: { process: 'rundll32', alert: true } });
    const page = renderFlowsPage(view);
    expect(page).toContain(`<table id="flows" data-filter="${escapeHtml(filterQuery(view.filter))}" data-live-rate="50" data-live="on">`);
    expect(page).toContain('<p id="live-status" aria-live="polite">');
    expect(page).toContain('<button type="button" id="live-toggle">Pause</button>');
    expect(page.indexOf('data-flow-id="8d95f88b')).toBeLessThan(page.indexOf('data-flow-id="0b1c2d3e'));
    for (const row of view.rows) expect(page).toContain(flowRowHtml(row));
    expect(page).toContain('from the in-memory ring');
    for (const c of FLOW_COLUMNS) expect(page).toContain(`<th scope="col" class="${c.cls}">${c.label}</th>`);
    expectNoLiveMarkup(page);
  });

  it('renders a row: expand button first, badges with text, host name with the address as its title', () => {
    const row = flowRowHtml(summary());
    expect(row).toMatch(/^<tr class="flow action-block alert sev-high" data-flow-id="8d95f88b-3c1e-4d4f-9a51-0c6f2b1e7a10"><td class="c-time"><button type="button" class="expand" aria-expanded="false" aria-controls="detail-8d95f88b-3c1e-4d4f-9a51-0c6f2b1e7a10">/);
    expect(row).toContain(`<time datetime="${new Date(T0).toISOString()}" title="${new Date(T0).toISOString()}">`);
    expect(row).toContain('<td class="c-action"><span class="badge action-block">block</span></td>');
    expect(row).toContain('<td class="c-alert"><span class="badge sev-high">high</span></td>');
    expect(row).toContain('<td class="c-source" title="10.20.0.7">WS-042</td>');
    expect(row).toContain('<td class="c-process">rundll32.exe</td><td class="c-destination">evil.example:8443</td><td class="c-rule">lolbin-external</td>');
    expect(row).toContain('<td class="c-tags">attack.t1218.011, attack.t1071.001</td><td class="c-score num">65</td></tr>');
    expect(count(row, '<td')).toBe(FLOW_COLUMNS.length);
    const allowed = flowRowHtml(summary({ action: 'allow', severity: null, host: null, user: null, score: null, rule: null }));
    expect(allowed).toContain('<tr class="flow action-allow" ');
    expect(allowed).toContain('<td class="c-alert"></td><td class="c-source">10.20.0.7</td><td class="c-user"></td>');
    expect(allowed).toContain('<td class="c-score num"></td>');
  });

  it('links to the older page with the filter kept, or not at all', () => {
    const filtered = renderFlowsPage(flowsView({ filter: { destination: 'evil.example', action: 'block' } }));
    expect(filtered).toContain(`<a href="/ui/flows?action=block&amp;destination=evil.example&amp;before=${T0 - 1_000}" rel="next">Older</a>`);
    expect(renderFlowsPage(flowsView())).toContain(`<a href="/ui/flows?before=${T0 - 1_000}" rel="next">Older</a>`);
    expect(renderFlowsPage(flowsView({ olderBeforeMs: null }))).not.toContain('>Older</a>');
  });

  it('says when rows come from the history store, and is not live then', () => {
    const page = renderFlowsPage(flowsView({ source: 'history', filter: { host: 'WS-042' } }));
    expect(page).toContain('data-live="off"');
    expect(page).toContain('Older flows from the history store');
    expect(page).toContain('<a href="/ui/flows?host=WS-042">Back to the newest flows</a>');
    expect(page).not.toContain('id="live-toggle"');
  });

  it('shows an empty state', () => {
    expect(renderFlowsPage(flowsView({ rows: [], olderBeforeMs: null }))).toContain(`<tr class="empty"><td colspan="${FLOW_COLUMNS.length}">No flows match this filter yet.</td></tr>`);
    expect(renderFlowsPage(flowsView({ rows: [], source: 'history', olderBeforeMs: null }))).toContain('No older flows match this filter.');
  });

  it('escapes hostile values in every field of a flow and of the filter', () => {
    const filter: FlowFilter = { host: EVIL, user: EVIL, process: EVIL, rule: EVIL, tag: EVIL, destination: EVIL };
    const page = renderFlowsPage(flowsView({ rows: [evilFlow], filter }));
    expectEscaped(page);
    expect(flowRowHtml(evilFlow)).not.toContain('<img');
  });

  it('the filter form submits exactly the fields parseFilter reads, and they round-trip', () => {
    const filters: FlowFilter[] = [
      {},
      { action: 'block', alert: true, process: 'rundll32.exe', destination: 'evil.example:8443', minScore: 40 },
      { action: 'allow', alert: false, host: 'WS-042', user: 'CORP\\alice', rule: 'lolbin-external', tag: 'attack.t1218.011', minScore: 0 },
      { host: EVIL, process: 'mshta.exe', minScore: 99.5 },
    ];
    for (const filter of filters) {
      const fields = submittedFields(renderFlowsPage(flowsView({ filter })));
      expect([...fields.keys()].sort()).toEqual(['action', 'alert', 'destination', 'host', 'process', 'rule', 'score', 'tag', 'user']);
      expect(parseFilter(fields)).toEqual({ filter, errors: [] });
    }
  });

  it('the filter form round-trips any filter parseFilter can produce', () => {
    const text = fc.string({ minLength: 1, maxLength: 60 }).map((s) => s.trim()).filter((s) => s !== '');
    const arbFilter = fc.record(
      {
        action: fc.constantFrom('allow' as const, 'block' as const),
        alert: fc.boolean(),
        host: text,
        user: text,
        process: text,
        rule: text,
        tag: text,
        destination: text,
        minScore: fc.double({ min: 0, max: 100, noNaN: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(arbFilter, (filter) => {
        expect(parseFilter(submittedFields(renderFlowsPage(flowsView({ filter })))).filter).toEqual(filter);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the script builds the same rows as the server', () => {
  it('for sample flows', () => {
    const flows = [summary(), summary({ action: 'allow', severity: null, host: null, user: null, rule: null, rules: [], tags: [], score: null }), evilFlow, summary({ severity: 'critical', process: 'mshta.exe', timeMs: 1e20 }), summary({ followupOf: '8d95f88b-3c1e-4d4f-9a51-0c6f2b1e7a10', process: 'regsvr32.exe' })];
    for (const f of flows) expect(clientRowHtml(f)).toBe(flowRowHtml(f));
  });

  it('for any flow (fast-check)', () => {
    const str = fc.oneof(fc.string(), fc.constantFrom(...XSS));
    const arbFlow: fc.Arbitrary<ConsoleFlowSummary> = fc.record({
      id: fc.oneof(fc.uuid(), str),
      timeMs: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constant(9e15)),
      action: fc.constantFrom('allow' as const, 'block' as const),
      protocol: fc.constantFrom('http', 'tls', 'dns', 'unknown'),
      severity: fc.constantFrom(null, 'low' as const, 'medium' as const, 'high' as const, 'critical' as const),
      sourceIp: str,
      user: fc.option(str),
      host: fc.option(str),
      process: fc.option(str),
      rule: fc.option(str),
      rules: fc.array(str, { maxLength: 3 }),
      tags: fc.array(str, { maxLength: 3 }),
      destination: str,
      score: fc.option(fc.double({ noNaN: true, noDefaultInfinity: true })),
      attribution: fc.constantFrom('telemetry' as const, 'header' as const, 'none' as const),
      followupOf: fc.option(fc.oneof(fc.uuid(), str)),
    });
    fc.assert(
      fc.property(arbFlow, (f) => {
        expect(clientRowHtml(f)).toBe(flowRowHtml(f));
      }),
      { numRuns: 300 },
    );
  });

  it('the script carries the column list and the row bound of the views', () => {
    expect(CONSOLE_JS).toContain(`const COLUMNS = ${JSON.stringify(FLOW_COLUMNS.map((c) => [c.key, c.cls]))};`);
    expect(CONSOLE_JS).toContain(`const MAX_ROWS = ${LIVE_MAX_ROWS};`);
  });
});

describe('browser script', () => {
  it('is small, parses, and has no backtick or ${ of its own', () => {
    expect(CONSOLE_JS.split('\n').length).toBeLessThan(300);
    expect(CONSOLE_JS).not.toMatch(/[`]|\$\{/);
    expect(() => new Function(CONSOLE_JS)).not.toThrow();
  });

  it('puts data in the page only with textContent and setAttribute; innerHTML only for the server fragment', () => {
    expect(count(CONSOLE_JS, 'innerHTML')).toBe(1);
    expect(CONSOLE_JS).toMatch(/box\.innerHTML = text; \/\/ server-rendered and escaped/);
    expect(CONSOLE_JS).not.toMatch(/insertAdjacentHTML|outerHTML|document\.write|eval\(/);
  });

  it('opens the live stream with the table filter and shows the sampling line', () => {
    expect(CONSOLE_JS).toContain("new EventSource('/ui/events?' + filter)");
    expect(CONSOLE_JS).toContain("'live — sampling: showing ' + count(sampling.sent) + ' of ' + count(sampling.matched) + ' flows/s (limit ' + count(sampling.limit) + '/s)'");
    expect(CONSOLE_JS).toContain("fetch('/ui/flows/' + encodeURIComponent(id) + '/detail', { credentials: 'same-origin'");
  });
});

describe('stylesheet and favicon', () => {
  function luminance(hex: string): number {
    const full = hex.length === 4 ? hex.replace(/^#(.)(.)(.)$/, '#$1$1$2$2$3$3') : hex;
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(full.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!; // WCAG 2.2 "relative luminance"
  }
  function contrast(a: string, b: string): number {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi! + 0.05) / (lo! + 0.05);
  }

  it('is small, has focus outlines and a sticky table header', () => {
    expect(CONSOLE_CSS.split('\n').length).toBeLessThan(250);
    expect(CONSOLE_CSS).toMatch(/:focus-visible \{ outline: 3px solid/);
    expect(CONSOLE_CSS).toMatch(/thead th \{ position: sticky; top: 0;/);
    expect(CONSOLE_CSS).toContain('@media (max-width: 900px)');
  });

  it('every rule that sets a text colour and a background meets WCAG AA (4.5:1)', () => {
    let checked = 0;
    for (const [, selector, body] of CONSOLE_CSS.matchAll(/([^{}]+)\{([^{}]*)\}/g)) {
      const fg = /(?:^|;)\s*color:\s*(#[0-9a-f]{3,6})\b/i.exec(body!)?.[1];
      const bg = /background(?:-color)?:\s*(#[0-9a-f]{3,6})\b/i.exec(body!)?.[1];
      if (fg === undefined || bg === undefined) continue;
      checked++;
      expect(contrast(fg, bg), selector!.trim()).toBeGreaterThanOrEqual(4.5);
    }
    expect(checked).toBeGreaterThan(25);
    expect(contrast('#0b57d0', '#ffffff')).toBeGreaterThanOrEqual(4.5); // links on the page
    expect(contrast('#4b5563', '#ffffff')).toBeGreaterThanOrEqual(4.5); // muted text
  });

  it('styles every badge class the views use', () => {
    for (const cls of ['action-block', 'action-allow', 'sev-low', 'sev-medium', 'sev-high', 'sev-critical', 'sev-other', 'mode-live', 'mode-shadow', 'status-matched', 'status-pending', 'status-failed', 'after-decision', 'unmanaged', 'outcome-success', 'outcome-unchanged', 'outcome-failure', 'outcome-refused', 'state-ok', 'state-bad']) {
      expect(CONSOLE_CSS, cls).toContain(`.badge.${cls}`);
    }
  });

  it('the favicon is a plain SVG', () => {
    expect(FAVICON_SVG.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(FAVICON_SVG).not.toMatch(/<script|\son\w+=/i);
  });
});

describe('flow detail', () => {
  it('shows the decision, the reasons from the record, and each rule with its status', () => {
    const out = renderFlowDetail(detail());
    expect(out).toContain('<span class="badge action-block">block</span>');
    expect(out).toContain('<span class="badge sev-high">high</span>');
    expect(out).toContain('<li>uncommon destination port 8443 (+25 uncommon_port)</li>');
    expect(out).toContain('<li>rule lolbin-external: process.name is one of [rundll32.exe, mshta.exe]</li>');
    expect(out).toContain('<span class="badge status-matched">matched</span>');
    expect(out).toContain('<span class="badge status-pending">pending</span>');
    expect(out).toContain('<span class="badge status-failed">failed</span>');
    expect(out).toContain('<span class="badge mode-shadow">shadow</span>');
    expect(count(out, '<span class="badge after-decision">after decision</span>')).toBe(1);
    expect(out).toContain('<td class="where">policies/base.yaml:12</td>');
    expect(out).toContain('Explained against the policy in force now (sha256 <code>a3f1c09be27d</code>)');
    expect(out).toContain('&quot;command_line&quot;: &quot;rundll32.exe C:\\\\Users\\\\Public\\\\x.dll,Start&quot;');
    expect(out).not.toContain('<html');
    expectNoLiveMarkup(out);
  });

  it('prints the whole record with two-space indents', () => {
    const out = renderFlowDetail(detail());
    const pre = /<pre class="record"[^>]*>([\s\S]*)<\/pre>/.exec(out)?.[1];
    expect(JSON.parse(unescape(pre!))).toEqual(record());
    expect(unescape(pre!)).toBe(JSON.stringify(record(), null, 2));
  });

  it('shows why the flow could not be explained', () => {
    const out = renderFlowDetail(detail({ rules: [], explainError: 'the record has no destination.port' }));
    expect(out).toContain('<p class="error" role="alert">Could not explain this flow: the record has no destination.port</p>');
    expect(out).not.toContain('The policy has no rules.');
  });

  it('escapes hostile values in the record, the rules and the error', () => {
    const evilRecord = record({ user_agent: { original: EVIL }, url: { original: EVIL }, egress: { reasons: XSS, explanation: [EVIL] }, [EVIL]: EVIL });
    const out = renderFlowDetail(
      detail({
        flow: { ...flow(), ...evilFlow, record: JSON.stringify(evilRecord) },
        record: evilRecord,
        policySha256: EVIL,
        explainError: EVIL,
        rules: [{ rule: EVIL, mode: 'live', action: 'block', file: EVIL, line: 1, status: 'failed', why: EVIL, afterDecision: false }],
      }),
    );
    expectEscaped(out);
  });

  it('reads reasons nested or dotted, and ignores what is not a string', () => {
    expect(recordStrings({ egress: { reasons: ['a', 1, 'b'] } }, ['egress', 'reasons'])).toEqual(['a', 'b']);
    expect(recordStrings({ 'egress.reasons': ['c'] }, ['egress', 'reasons'])).toEqual(['c']);
    expect(recordStrings(null, ['egress', 'reasons'])).toEqual([]);
    expect(recordStrings('text', ['egress'])).toEqual([]);
  });
});

describe('alerts page', () => {
  it('lists groups by rule and by endpoint with links into the flows list', () => {
    const page = renderAlertsPage(frame('alerts'), alertsView());
    expect(page).toContain('<a href="/ui/flows?rule=lolbin-external&amp;alert=yes">lolbin-external</a>');
    expect(page).toContain('<a href="/ui/flows?host=WS-042&amp;process=mshta.exe">WS-042 / mshta.exe</a>');
    expect(page).toContain('<a href="/ui/flows?host=10.20.0.9">10.20.0.9</a>');
    expect(page).toContain(`<time datetime="${new Date(T0).toISOString()}">2026-11-26 13:21:57 UTC</time>`);
    expect(page).toContain('<span class="badge sev-critical">critical</span>');
    expect(page).toContain('id="alerts-by-rule"');
    expect(page).toContain('id="alerts-by-endpoint"');
    expectNoLiveMarkup(page);
  });

  it('draws a sparkline with one point per minute and says what it shows', () => {
    const page = renderAlertsPage(frame('alerts'), alertsView());
    expect(page).toContain('role="img" aria-label="alerts per minute, last 60 minutes: max 12"');
    expect(page).toContain('aria-label="alerts per minute, last 3 minutes: max 2"');
    for (const perMinute of [[], [5], [0, 0, 0], group().perMinute, Array.from({ length: 1_440 }, (_, i) => i % 7)]) {
      const points = sparklinePoints(perMinute);
      expect(points === '' ? 0 : points.split(' ').length).toBe(perMinute.length);
      for (const p of points === '' ? [] : points.split(' ')) expect(p).toMatch(/^\d+(\.\d+)?,\d+(\.\d+)?$/);
    }
    const polylines = [...page.matchAll(/<polyline points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
    expect(polylines).toEqual([60, 3, 60, 60]);
  });

  it('shows the empty state', () => {
    const page = renderAlertsPage(frame('alerts'), { byRule: [], byEndpoint: [], total: 0, windowMinutes: 60, evictedGroups: 0 });
    expect(page).toContain('No alerts since start');
    expect(page).not.toContain('<table');
  });

  it('says when groups were dropped', () => {
    expect(renderAlertsPage(frame('alerts'), alertsView({ evictedGroups: 12 }))).toContain('12 groups were dropped');
  });

  it('escapes hostile group keys, hosts and processes', () => {
    const evil = group({ key: EVIL, rule: EVIL, host: EVIL, process: EVIL, sourceIp: EVIL });
    const page = renderAlertsPage(frame('alerts'), alertsView({ byRule: [evil], byEndpoint: [evil] }));
    expectEscaped(page);
    expect(page).toContain(`href="/ui/flows?${escapeHtml(new URLSearchParams({ rule: EVIL, alert: 'yes' }).toString())}"`);
  });
});

describe('endpoints page', () => {
  it('shows the attributed share, the methods and every client with a link to its flows', () => {
    const report = coverage();
    const page = renderEndpointsPage({ frame: frame('endpoints'), coverage: report });
    expect(page).toContain(`<span class="big">${(Math.round(report.attributed_share * 1000) / 10).toFixed(1)}%</span>`);
    expect(page).toContain('<th scope="row">telemetry</th>');
    expect(page).toContain('<th scope="row">header</th>');
    expect(page).toContain('<th scope="row">none</th>');
    for (const h of report.hosts) expect(page).toContain(`<a href="/ui/flows?host=${h['source.ip']}">${h['source.ip']}</a>`);
    expectNoLiveMarkup(page);
  });

  it('flags unmanaged clients in words and with a class, and lists them in their own section', () => {
    const report = coverage();
    expect(report.unmanaged.map((h) => h['source.ip'])).toContain('10.20.0.66');
    const page = renderEndpointsPage({ frame: frame('endpoints'), coverage: report });
    expect(page).toContain('Unmanaged clients making flows');
    const unmanagedSection = /<section aria-labelledby="unmanaged">([\s\S]*?)<\/section>/.exec(page)?.[1] ?? '';
    expect(unmanagedSection).toContain('10.20.0.66');
    expect(unmanagedSection).toContain('<span class="badge unmanaged">unmanaged — no telemetry</span>');
    const clients = /<section aria-labelledby="clients">([\s\S]*?)<\/section>/.exec(page)?.[1] ?? '';
    const rows = [...clients.matchAll(/<tr class="(managed|unmanaged)">([\s\S]*?)<\/tr>/g)];
    expect(rows).toHaveLength(report.hosts.length);
    for (const [, cls, cells] of rows) expect(cells!.includes('unmanaged — no telemetry')).toBe(cls === 'unmanaged');
  });

  it('lists clients whose telemetry stopped', () => {
    const report = coverage();
    expect(report.stale_telemetry.map((s) => s['source.ip'])).toEqual(['10.20.0.9']);
    const page = renderEndpointsPage({ frame: frame('endpoints'), coverage: report });
    const stale = /<section aria-labelledby="stale">([\s\S]*?)<\/section>/.exec(page)?.[1] ?? '';
    expect(stale).toContain('Telemetry stopped');
    expect(stale).toContain('<a href="/ui/flows?host=10.20.0.9">10.20.0.9</a>');
    expect(stale).toContain('WS-077');
  });

  it('notes the bounds only when they cut the report', () => {
    const report = coverage();
    expect(renderEndpointsPage({ frame: frame('endpoints'), coverage: report })).not.toContain('cut by its bounds');
    const cut = { ...report, bounds: { ...report.bounds, evicted_clients: 3, flows_of_dropped_clients: 40, cut: true } };
    const page = renderEndpointsPage({ frame: frame('endpoints'), coverage: cut });
    expect(page).toContain('This report is cut by its bounds');
    expect(page).toContain('3 clients dropped because the table was full');
  });

  it('renders an empty report', () => {
    const page = renderEndpointsPage({ frame: frame('endpoints'), coverage: new CoverageTally().report({ nowMs: T0 }) });
    expect(page).toContain('No client has made a flow yet.');
    expect(page).toContain('Every client making flows sends telemetry.');
    expect(page).toContain('No client’s telemetry has stopped.');
    expectNoLiveMarkup(page);
  });

  it('escapes hostile host names', () => {
    const page = renderEndpointsPage({ frame: frame('endpoints'), coverage: coverage(EVIL) });
    expectEscaped(page);
  });
});

describe('policy page', () => {
  it('shows the policy in force, its rules, built-in hits and the reload history', () => {
    const page = renderPolicyPage(frame('policy'), policyView());
    expect(page).toContain('<code class="hash">a3f1c09be27d4410e5d6b8c9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3</code>');
    expect(page).toContain('<li><code>/etc/egress-inspector/policies/base.yaml</code></li>');
    expect(page).toContain('<span class="badge mode-live">live</span>');
    expect(page).toContain('<span class="badge mode-shadow">shadow</span>');
    expect(page).toContain('<td class="where">policies/shadow.yaml:3</td>');
    expect(page).toContain('<th scope="row">builtin:internal-destination</th><td class="num">2</td>');
    expect(page).toContain('<span class="badge outcome-failure">failure</span>');
    expect(page).toContain('<span class="badge outcome-success">success</span>');
    expect(page).toContain('<a href="/ui/flows?rule=lolbin-external">lolbin-external</a>');
    expectNoLiveMarkup(page);
  });

  it('highlights the errors that keep the files on disk out of force', () => {
    const page = renderPolicyPage(frame('policy'), policyView());
    expect(page).toMatch(/<section class="errors"[^>]*><h2 id="last-errors">The files on disk do not load<\/h2>[\s\S]*unknown operator &quot;matches_regex&quot;/);
    expect(renderPolicyPage(frame('policy'), policyView({ lastErrors: [] }))).not.toContain('class="errors"');
  });

  it('every POST form carries the session CSRF token', () => {
    const page = renderPolicyPage(frame('policy'), policyView());
    const forms = [...page.matchAll(/<form[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/g)];
    expect(forms.map((f) => /action="([^"]*)"/.exec(f[0])?.[1])).toEqual(['/ui/logout', '/ui/policy/reload']);
    for (const [, inner] of forms) expect(inner).toContain(`<input type="hidden" name="csrf" value="${CSRF}">`);
    expect(page).toContain('<button type="submit">Reload policy now</button>');
  });

  it('shows empty states', () => {
    const page = renderPolicyPage(frame('policy'), policyView({ rules: [], builtinHits: [], reloads: [], lastErrors: [], files: [] }));
    expect(page).toContain('No reload since start.');
    expect(page).toContain('The policy has no rules');
    expect(page).toContain('No built-in rule has matched since start.');
  });

  it('escapes hostile file names, rule ids, tags and reload errors', () => {
    const page = renderPolicyPage(
      frame('policy'),
      policyView({
        files: [EVIL],
        rules: [{ id: EVIL, mode: 'live', action: 'block', file: EVIL, line: 1, severity: 'low', tags: XSS, hits: 1 }],
        builtinHits: [{ id: EVIL, hits: 1 }],
        reloads: [{ atMs: T0, trigger: EVIL, outcome: 'refused', sha256: EVIL, errors: [EVIL], reason: EVIL }],
        lastErrors: [EVIL],
      }),
    );
    expectEscaped(page);
  });
});

describe('health page', () => {
  it('shows every field', () => {
    const page = renderHealthPage(frame('health'), healthView());
    for (const text of [
      '0.1.0',
      '3 days 4 hours',
      '<code>0.0.0.0:3128</code>',
      '<code>127.0.0.1:9090</code>',
      '12.35/s',
      '98,765',
      '<dt>Active flows</dt><dd>17</dd>',
      '<dt>Blocked since start</dt><dd>321</dd>',
      '3.5/s',
      '5,000',
      '<th scope="row">bad-signature</th><td class="num">2</td>',
      '<dt>Queries since start</dt><dd>1,234</dd>',
      '<dt>DNS listener</dt><dd>enabled</dd>',
      '<dt>Flow-log records dropped</dt><dd><span class="bad">5</span></dd>',
      '<dt>Live viewers</dt><dd>2</dd>',
      '1,000 of 5,000',
      '/var/lib/egress-inspector/flows.sqlite',
      '<dt>Retention</dt><dd>1 day</dd>',
      '<dt>Max rows</dt><dd>1,000,000</dd>',
    ]) {
      expect(page, text).toContain(text);
    }
    expect(page).toContain('<tr class="state-ok"><th scope="row">hints</th><td>redis</td><td><span class="badge state-ok">ok</span></td><td>120 network, 40 process</td></tr>');
    expect(page).toContain('<tr class="state-bad"><th scope="row">console history</th>');
    expectNoLiveMarkup(page);
  });

  it('escapes hostile store states and errors', () => {
    const base = healthView();
    const page = renderHealthPage(
      frame('health'),
      healthView({
        version: EVIL,
        listeners: [{ name: EVIL, address: EVIL }],
        stores: [{ name: EVIL, backend: EVIL, state: EVIL, detail: EVIL }],
        hints: { perSecond: 0, accepted: 0, rejected: [{ reason: EVIL, count: 1 }] },
        console: { ...base.console, history: { ...base.console.history, path: EVIL, lastError: EVIL } },
      }),
    );
    expectEscaped(page);
  });

  it('puts durations in words', () => {
    expect(formatDuration(42_000)).toBe('42 seconds');
    expect(formatDuration(61_000)).toBe('1 minute 1 second');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000 + 7_000)).toBe('2 hours 5 minutes');
    expect(formatDuration(86_400_000 + 30_000)).toBe('1 day');
    expect(formatDuration(250)).toBe('0.25 seconds');
    expect(formatDuration(Number.NaN)).toBe('—');
  });
});

describe('no inline script, style or handler on any page', () => {
  it.each([
    ['login', () => renderLogin({ error: 'Wrong token.' })],
    ['flows', () => renderFlowsPage(flowsView())],
    ['flows (history, empty)', () => renderFlowsPage(flowsView({ source: 'history', rows: [] }))],
    ['flow detail', () => renderFlowDetail(detail())],
    ['alerts', () => renderAlertsPage(frame('alerts'), alertsView())],
    ['endpoints', () => renderEndpointsPage({ frame: frame('endpoints'), coverage: coverage() })],
    ['policy', () => renderPolicyPage(frame('policy', { kind: 'ok', text: 'Policy reloaded' }), policyView())],
    ['health', () => renderHealthPage(frame('health'), healthView())],
  ])('%s', (_name, render) => {
    const page = render();
    expectNoLiveMarkup(page);
    expect(page).not.toMatch(/javascript:/i);
  });
});
