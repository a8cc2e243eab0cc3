/**
 * The frame of every console page (issue 13) and the small formatters the pages share.
 *
 * One document shape for all pages: the stylesheet and the one module script from /ui/assets/ (the CSP allows
 * only 'self': no inline script, style or handler anywhere), a skip link to the content (WCAG 2.4.1 "Bypass
 * Blocks"), a <nav> whose current entry carries aria-current="page" (WAI-ARIA 1.2 §6.7, aria-current), the
 * sign-out form with the session's CSRF token, and the notice line as a live region (role=status for news,
 * role=alert for errors: WAI-ARIA 1.2 §5.3.5 live region roles).
 */
import type { ConsoleAction, PageFrame } from '../model.js';
import type { Severity } from '../../policy/decision.js';
import { html, type HtmlValue, type SafeHtml } from './html.js';

export const STYLESHEET_PATH = '/ui/assets/console.css';
export const SCRIPT_PATH = '/ui/assets/console.js';
export const FAVICON_PATH = '/ui/assets/favicon.svg';

/** The pages in nav order. */
export const NAV: readonly { readonly page: PageFrame['active']; readonly label: string; readonly href: string }[] = [
  { page: 'flows', label: 'Flows', href: '/ui/flows' },
  { page: 'alerts', label: 'Alerts', href: '/ui/alerts' },
  { page: 'endpoints', label: 'Endpoints', href: '/ui/endpoints' },
  { page: 'policy', label: 'Policy', href: '/ui/policy' },
  { page: 'health', label: 'Health', href: '/ui/health' },
];

const PRODUCT = 'egress-inspector';

/** The <head>, shared by the pages and the sign-in form. `withScript`: the sign-in form needs none. */
export function documentHead(title: string, withScript: boolean): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} — ${PRODUCT}</title>
<link rel="icon" href="${FAVICON_PATH}" type="image/svg+xml">
<link rel="stylesheet" href="${STYLESHEET_PATH}">
${withScript && html`<script type="module" src="${SCRIPT_PATH}"></script>`}
</head>`;
}

/** A whole page: frame around `body` (which starts below the page's <h1>). */
export function renderPage(frame: PageFrame, body: SafeHtml): string {
  const nav = NAV.map(
    (item) => html`<li><a href="${item.href}"${item.page === frame.active && html` aria-current="page"`}>${item.label}</a></li>`,
  );
  const notice =
    frame.notice === null
      ? null
      : html`<p class="notice notice-${frame.notice.kind === 'ok' ? 'ok' : 'error'}" role="${frame.notice.kind === 'ok' ? 'status' : 'alert'}">${frame.notice.text}</p>`;
  return html`${documentHead(frame.title, true)}
<body class="page-${frame.active}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/ui/flows">${PRODUCT}</a>
<nav aria-label="Console"><ul>${nav}</ul></nav>
<form class="signout" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${frame.csrf}"><button type="submit">Sign out</button></form>
</header>
<main id="main" tabindex="-1">
<h1>${frame.title}</h1>
${notice}
${body}
</main>
</body>
</html>
`.toString();
}

// ---- shared formatters -------------------------------------------------------------------------------------

const FRACTION_Z = /\.\d+Z$/;
const TRAILING_Z = /Z$/;
const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const SEVERITIES: ReadonlySet<string> = new Set<Severity>(['low', 'medium', 'high', 'critical']);

/** ISO 8601 UTC, or '' when `ms` is not a time (Date#toISOString throws on those). */
export function isoOf(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** HH:MM:SS in this process's local time (the browser script re-renders it in the viewer's). */
export function clockOf(ms: number): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return '';
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/** A <time> with the full ISO time in `datetime` and "YYYY-MM-DD HH:MM:SS UTC" as text; "—" when not a time. */
export function timeTag(ms: number | null): SafeHtml {
  if (ms === null) return html`<span class="none">—</span>`;
  const iso = isoOf(ms);
  return isoTag(iso === '' ? null : iso);
}

/** timeTag for a time that is already an ISO string (coverage reports carry those). */
export function isoTag(iso: string | null): SafeHtml {
  if (iso === null || iso === '') return html`<span class="none">—</span>`;
  const text = iso.replace('T', ' ').replace(FRACTION_Z, 'Z').replace(TRAILING_Z, ' UTC');
  return html`<time datetime="${iso}">${text}</time>`;
}

/** 12345 → "12,345"; 0.5 → "0.5". */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? COUNT.format(n) : String(n);
}

/** A 0–1 share as a percentage with one decimal: 0.875 → "87.5%". */
export function formatShare(share: number): string {
  if (!Number.isFinite(share)) return '—';
  return `${(Math.round(share * 1000) / 10).toFixed(1)}%`;
}

function unit(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A duration in words, the two largest units: "3 days 4 hours", "5 minutes 2 seconds", "0.25 seconds". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1_000) return `${formatCount(ms / 1_000)} seconds`;
  const s = Math.floor(ms / 1_000);
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'day'],
    [Math.floor(s / 3_600) % 24, 'hour'],
    [Math.floor(s / 60) % 60, 'minute'],
    [s % 60, 'second'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, word]) => unit(n, word))
    .join(' ');
}

/** A short badge whose text says what its colour says (WCAG 1.4.1: colour is never the only carrier). */
export function badge(text: string, cls: string): SafeHtml {
  return html`<span class="badge ${cls}">${text}</span>`;
}

export function actionBadge(action: ConsoleAction | string): SafeHtml {
  return badge(action, action === 'block' ? 'action-block' : 'action-allow');
}

/** A severity badge; an unknown severity gets the neutral class (never a class built from data). */
export function severityBadge(severity: Severity | string | null): SafeHtml | null {
  if (severity === null) return null;
  return badge(severity, SEVERITIES.has(severity) ? `sev-${severity}` : 'sev-other');
}

/** `/ui/flows?…` with the parameters in the given order (URLSearchParams encodes them). */
export function flowsHref(params: readonly (readonly [string, string | null | undefined])[]): string {
  const query = new URLSearchParams();
  for (const [name, value] of params) if (value !== null && value !== undefined && value !== '') query.append(name, value);
  const text = query.toString();
  return text === '' ? '/ui/flows' : `/ui/flows?${text}`;
}

/** A table, or `empty` as a paragraph when there are no rows (an empty table reads badly to screen readers). */
export function tableOrEmpty(rows: readonly SafeHtml[], head: SafeHtml, empty: string, attrs: { readonly id?: string; readonly caption?: string } = {}): SafeHtml {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  const caption: HtmlValue = attrs.caption === undefined ? null : html`<caption>${attrs.caption}</caption>`;
  return html`<div class="table-wrap"><table${attrs.id !== undefined && html` id="${attrs.id}"`}>${caption}<thead>${head}</thead><tbody>${rows}</tbody></table></div>`;
}
