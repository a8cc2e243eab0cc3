/**
 * The console's HTTP routes under /ui/ on the admin listener (docs/console.md). Pages are rendered on the
 * server from the console's stores (src/console/views/); the one script (assets.ts) only streams new rows and
 * expands a row's details. Every page but the sign-in form and the static assets needs a session
 * (session.ts); every POST needs the session's CSRF token and a same-origin Origin.
 *
 * Headers on every answer: a Content-Security-Policy that allows only this origin's own script and
 * stylesheet (no inline code, no framing, forms post only here), `nosniff`, `no-store` for pages and data.
 */
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parseFilter } from './filter.js';
import type { AlertBoard } from './alerts.js';
import type { ConsoleFlow, FlowDetail, FlowHistory, HealthView, PageFrame, PolicyView } from './model.js';
import { summaryOf, type RecentFlows } from './recent.js';
import { clearedSessionCookie, sameOrigin, sameSecret, sessionCookie, SignInThrottle, type Session, type Sessions } from './session.js';
import { CONSOLE_CSS, CONSOLE_JS, FAVICON_SVG } from './assets.js';
import { renderLogin } from './views/login.js';
import { renderFlowsPage } from './views/flows.js';
import { renderFlowDetail } from './views/flow-detail.js';
import { renderAlertsPage } from './views/alerts.js';
import { renderEndpointsPage } from './views/endpoints.js';
import { renderPolicyPage } from './views/policy.js';
import { renderHealthPage } from './views/health.js';
import type { CoverageReport } from '../coverage/tally.js';
import type { Logger } from '../observe/logger.js';

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Rows on one page of the flows list. */
export const PAGE_ROWS = 200;
/** Largest sign-in or action form body read. */
const MAX_FORM_BYTES = 4_096;
/** A comment line on idle live streams, so proxies and browsers keep them open. */
const HEARTBEAT_MS = 15_000;
/** A viewer whose socket has this much unsent is skipped until it drains (a slow browser never grows memory). */
const MAX_UNSENT_BYTES = 256 * 1024;
const DETAIL_PATH = /^\/ui\/flows\/([0-9a-f-]{36})\/detail$/;
const BEFORE_QUERY = /^\d{1,15}$/;

/** `?before=` (ms since the epoch: the next, older page), or undefined when absent or not a time. */
function beforeOf(url: URL): number | undefined {
  const before = url.searchParams.get('before');
  return before !== null && BEFORE_QUERY.test(before) ? Number(before) : undefined;
}

export interface ConsoleDeps {
  /** The admin token the sign-in form takes. */
  readonly secret: string;
  /** Mark the cookie Secure even over plain HTTP (a TLS-terminating reverse proxy is in front). */
  readonly secureCookie: boolean;
  readonly sessions: Sessions;
  readonly recent: RecentFlows;
  readonly history: FlowHistory;
  readonly alerts: AlertBoard;
  readonly coverage: () => CoverageReport;
  readonly policy: () => Promise<PolicyView>;
  /** Reload the policy files (as POST /v1/policy/reload does); true when the files are in force. */
  readonly reloadPolicy: () => Promise<boolean>;
  readonly health: () => Promise<HealthView>;
  /** Explain a flow against the policy in force now. */
  readonly explain: (flow: ConsoleFlow) => FlowDetail;
  readonly logger: Logger;
  /** Wait after a failed sign-in, per client address (default 1 s). */
  readonly signInDelayMs?: number;
}

type Page = 'flows' | 'alerts' | 'endpoints' | 'policy' | 'health';

/** Fixed notices a redirect can ask for (never text from the URL). */
const NOTICES: Readonly<Record<string, PageFrame['notice']>> = {
  reloaded: { kind: 'ok', text: 'Policy reloaded: the files on disk are in force.' },
  'reload-failed': { kind: 'error', text: 'Policy reload failed: the last good policy stays in force (see the errors below).' },
};

function securityHeaders(res: http.ServerResponse): void {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
}

function sendText(res: http.ServerResponse, status: number, type: string, body: string, cache = 'no-store'): void {
  securityHeaders(res);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': cache });
  res.end(body);
}

function sendHtml(res: http.ServerResponse, status: number, body: string): void {
  sendText(res, status, 'text/html; charset=utf-8', body);
}

function redirect(res: http.ServerResponse, location: string, cookie?: string): void {
  securityHeaders(res);
  if (cookie !== undefined) res.setHeader('set-cookie', cookie);
  res.writeHead(303, { location, 'content-length': 0, 'cache-control': 'no-store' });
  res.end();
}

/** An urlencoded form body of at most MAX_FORM_BYTES; null when larger or not a form. */
async function readForm(req: http.IncomingMessage): Promise<URLSearchParams | null> {
  const type = req.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_FORM_BYTES) return null;
    chunks.push(buf);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function clientOf(req: http.IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export function createConsoleHandler(deps: ConsoleDeps): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  const throttle = new SignInThrottle(deps.signInDelayMs ?? 1_000);
  const secure = (req: http.IncomingMessage): boolean => deps.secureCookie || (req.socket as TLSSocket).encrypted === true;
  const frame = (session: Session, active: Page, title: string, notice: string | null): PageFrame => ({
    title,
    active,
    csrf: session.csrf,
    notice: notice === null ? null : NOTICES[notice] ?? null,
  });

  /** A POST from a signed-in page: same origin, and the session's CSRF token in the form. */
  const checkedForm = async (req: http.IncomingMessage, res: http.ServerResponse, session: Session): Promise<URLSearchParams | null> => {
    if (!sameOrigin(req.headers)) {
      sendText(res, 403, 'text/plain; charset=utf-8', 'refused: the request does not come from the console (Origin)\n');
      return null;
    }
    const form = await readForm(req);
    if (form === null || !sameSecret(form.get('csrf') ?? '', session.csrf)) {
      sendText(res, 403, 'text/plain; charset=utf-8', 'refused: missing or wrong CSRF token; reload the page and try again\n');
      return null;
    }
    return form;
  };

  const signIn = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (!sameOrigin(req.headers)) return sendHtml(res, 403, renderLogin({ error: 'Refused: the form was not sent from this console.' }));
    const client = clientOf(req);
    const wait = throttle.waitMs(client);
    if (wait > 0) {
      res.setHeader('retry-after', Math.ceil(wait / 1000));
      return sendHtml(res, 429, renderLogin({ error: 'Too many attempts: wait a second and try again.' }));
    }
    const form = await readForm(req);
    const token = form?.get('token') ?? '';
    if (form === null || token === '' || !sameSecret(token, deps.secret)) {
      throttle.failed(client);
      deps.logger.warn({ client }, 'console sign-in refused: wrong token');
      return sendHtml(res, 401, renderLogin({ error: 'Wrong token.' }));
    }
    throttle.succeeded(client);
    const session = deps.sessions.create();
    // SPEC "Operator console": the sign-in redirects to /ui/ (which shows the flows).
    redirect(res, '/ui/', sessionCookie(session.id, secure(req)));
  };

  const flowsPage = async (url: URL, session: Session, res: http.ServerResponse): Promise<void> => {
    const { filter, errors } = parseFilter(url.searchParams);
    const beforeMs = beforeOf(url);
    const fromHistory = beforeMs !== undefined && deps.history.stats().backend !== 'none';
    const rows = fromHistory
      ? await deps.history.query({ filter, limit: PAGE_ROWS, beforeMs })
      : deps.recent.list(filter, PAGE_ROWS, beforeMs);
    const last = rows.at(-1);
    const more = last !== undefined && (rows.length === PAGE_ROWS || deps.history.stats().backend !== 'none');
    const page = frame(session, 'flows', 'Flows', null);
    sendHtml(res, 200, renderFlowsPage({
      // A hand-edited filter that could not be read is named, not silently widened.
      frame: errors.length === 0 ? page : { ...page, notice: { kind: 'error', text: `Ignored in the filter: ${errors.join('; ')}` } },
      filter,
      beforeMs: beforeMs ?? null,
      rows: rows.map(summaryOf),
      source: fromHistory ? 'history' : 'ring',
      olderBeforeMs: more ? last.timeMs : null,
      liveRate: deps.recent.liveRate,
    }));
  };

  const flowsApi = async (url: URL, res: http.ServerResponse): Promise<void> => {
    const { filter, errors } = parseFilter(url.searchParams);
    if (errors.length > 0) return sendText(res, 400, 'application/json', `${JSON.stringify({ errors })}\n`);
    const limitText = url.searchParams.get('limit') ?? String(PAGE_ROWS);
    const limit = Math.min(1_000, Math.max(1, Number.parseInt(limitText, 10) || PAGE_ROWS));
    const beforeMs = beforeOf(url);
    const useHistory = url.searchParams.get('source') === 'history' && deps.history.stats().backend !== 'none';
    const rows = useHistory
      ? await deps.history.query({ filter, limit, ...(beforeMs === undefined ? {} : { beforeMs }) })
      : deps.recent.list(filter, limit, beforeMs);
    sendText(res, 200, 'application/json', `${JSON.stringify({ source: useHistory ? 'history' : 'ring', flows: rows.map(summaryOf) })}\n`);
  };

  const detail = async (id: string, res: http.ServerResponse): Promise<void> => {
    const flow = deps.recent.get(id) ?? (await deps.history.get(id));
    if (flow === null || flow === undefined) return sendText(res, 404, 'text/plain; charset=utf-8', 'This flow is no longer kept (neither in the recent ring nor in the history).\n');
    sendHtml(res, 200, renderFlowDetail(deps.explain(flow)));
  };

  /** Server-sent events (WHATWG HTML §9.2): `flow` per new matching flow, `sampling` when the rate cut some. */
  const events = (url: URL, req: http.IncomingMessage, res: http.ServerResponse): void => {
    const { filter } = parseFilter(url.searchParams);
    const write = (event: string, data: unknown): void => {
      if (res.writableLength > MAX_UNSENT_BYTES) return;
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const stop = deps.recent.watch(filter, { send: (flow) => write('flow', flow), sampling: (cut) => write('sampling', cut) });
    if (stop === null) return sendText(res, 503, 'text/plain; charset=utf-8', `too many live viewers (at most ${deps.recent.maxViewers})\n`);
    securityHeaders(res);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const end = (): void => {
      clearInterval(heartbeat);
      stop();
    };
    req.socket.setTimeout(0);
    res.on('close', end);
  };

  return async (req, res) => {
    const url = new URL(req.url ?? '/ui/', 'http://console.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (path.startsWith('/ui/assets/') && method === 'GET') {
      if (path === '/ui/assets/console.css') return sendText(res, 200, 'text/css; charset=utf-8', CONSOLE_CSS, 'no-cache');
      if (path === '/ui/assets/console.js') return sendText(res, 200, 'text/javascript; charset=utf-8', CONSOLE_JS, 'no-cache');
      if (path === '/ui/assets/favicon.svg') return sendText(res, 200, 'image/svg+xml', FAVICON_SVG, 'no-cache');
      return sendText(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    if (path === '/ui/login') {
      if (method === 'POST') return signIn(req, res);
      if (method !== 'GET') return sendText(res, 405, 'text/plain; charset=utf-8', 'GET or POST\n');
      if (deps.sessions.fromCookieHeader(req.headers.cookie) !== null) return redirect(res, '/ui/flows');
      return sendHtml(res, 200, renderLogin({ error: null }));
    }

    const session = deps.sessions.fromCookieHeader(req.headers.cookie);
    if (session === null) {
      if (method === 'GET' && !path.startsWith('/ui/api/') && path !== '/ui/events' && !DETAIL_PATH.test(path)) return redirect(res, '/ui/login');
      return sendText(res, 401, 'text/plain; charset=utf-8', 'sign in first: /ui/login\n');
    }

    if (method === 'POST') {
      if (path === '/ui/logout') {
        if ((await checkedForm(req, res, session)) === null) return;
        deps.sessions.destroy(session.id);
        return redirect(res, '/ui/login', clearedSessionCookie(secure(req)));
      }
      if (path === '/ui/policy/reload') {
        if ((await checkedForm(req, res, session)) === null) return;
        const ok = await deps.reloadPolicy();
        return redirect(res, `/ui/policy?notice=${ok ? 'reloaded' : 'reload-failed'}`);
      }
      return sendText(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    if (method !== 'GET') return sendText(res, 405, 'text/plain; charset=utf-8', 'GET\n');

    const notice = url.searchParams.get('notice');
    if (path === '/ui' || path === '/ui/') return redirect(res, '/ui/flows');
    if (path === '/ui/flows') return flowsPage(url, session, res);
    if (path === '/ui/events') return events(url, req, res);
    if (path === '/ui/api/flows') return flowsApi(url, res);
    const detailId = DETAIL_PATH.exec(path)?.[1];
    if (detailId !== undefined) return detail(detailId, res);
    if (path === '/ui/alerts') return sendHtml(res, 200, renderAlertsPage(frame(session, 'alerts', 'Alerts', notice), deps.alerts.view()));
    if (path === '/ui/endpoints') return sendHtml(res, 200, renderEndpointsPage({ frame: frame(session, 'endpoints', 'Endpoints & coverage', notice), coverage: deps.coverage() }));
    if (path === '/ui/policy') return sendHtml(res, 200, renderPolicyPage(frame(session, 'policy', 'Policy', notice), await deps.policy()));
    if (path === '/ui/health') return sendHtml(res, 200, renderHealthPage(frame(session, 'health', 'Health', notice), await deps.health()));
    sendText(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  };
}
