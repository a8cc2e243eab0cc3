import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from './listen.js';
import { bearerTokenMatches } from '../enrich/identity.js';
import type { Registry } from 'prom-client';
import type { Logger } from '../observe/logger.js';

/** A handler of an authenticated /v1/* route. It owns the response. */
export type ApiHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface AdminOptions {
  host: string;
  port: number;
  /** Bearer token for /v1/*; null refuses every /v1/* request. */
  token: string | null;
}

export interface AdminDeps {
  registry: Registry;
  /** true once the policy is loaded and every listener is up. */
  isReady: () => boolean;
  logger: Logger;
  /**
   * What GET /metrics serves, when it is not this process's registry: a cluster worker asks the primary for the
   * aggregate of every process (src/cluster/worker-link.ts).
   */
  scrape?: () => Promise<{ readonly contentType: string; readonly text: string }>;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * The admin listener: /metrics (Prometheus text), /healthz (the process serves), /readyz (policy loaded and
 * listeners up), and /v1/* for the API, which needs the bearer token. Meant for a loopback or management
 * address; it never serves proxy traffic.
 */
export class AdminListener {
  readonly server: http.Server;
  private readonly routes = new Map<string, { method: string; handler: ApiHandler; maxBodyBytes: number | null }>();
  private consoleHandler: ApiHandler | null = null;
  private readonly opts: AdminOptions;

  constructor(opts: AdminOptions, deps: AdminDeps) {
    this.opts = opts;
    const serve = (expectsContinue: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.route(req, res, deps, expectsContinue).catch((err: unknown) => {
        deps.logger.error({ err }, 'admin handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    };
    this.server = http.createServer({ headersTimeout: 10_000, requestTimeout: 60_000 }, serve(false));
    // `Expect: 100-continue` (RFC 9110 §10.1.1): invite the body only once the request is authenticated, routed and
    // within the route's size limit, so that a refused client never uploads it (Node would send 100 at once).
    this.server.on('checkContinue', serve(true));
  }

  /**
   * Register an authenticated API route, e.g. ('POST', '/v1/hints', handler). `maxBodyBytes`: a request that
   * announces a larger body with `Expect: 100-continue` gets 413 before it sends it (the handler enforces the
   * limit on every other request itself).
   */
  addRoute(method: string, path: string, handler: ApiHandler, opts: { maxBodyBytes?: number } = {}): void {
    this.routes.set(path, { method, handler, maxBodyBytes: opts.maxBodyBytes ?? null });
  }

  /**
   * Serve everything under /ui/ with `handler` (the operator console, src/console/routes.ts), which does its own
   * sign-in: the bearer token of /v1/* is not asked for there.
   */
  mountConsole(handler: ApiHandler): void {
    this.consoleHandler = handler;
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.opts.host, this.opts.port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, deps: AdminDeps, expectsContinue: boolean): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (path === '/metrics' && req.method === 'GET') {
      const { contentType, text } = deps.scrape === undefined ? { contentType: deps.registry.contentType, text: await deps.registry.metrics() } : await deps.scrape();
      res.writeHead(200, { 'content-type': contentType });
      res.end(text);
      return;
    }
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') return deps.isReady() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready' });
    if (path === '/ui' || path.startsWith('/ui/')) {
      if (this.consoleHandler === null) return sendJson(res, 404, { error: 'the console is off (console.enabled: false)' });
      if (expectsContinue) res.writeContinue();
      await this.consoleHandler(req, res);
      return;
    }
    if (path.startsWith('/v1/')) {
      if (this.opts.token === null) {
        return sendJson(res, 403, { error: 'the admin API is disabled: set admin.token or EGRESS_ADMIN_TOKEN' });
      }
      if (!bearerTokenMatches(req.headers.authorization, this.opts.token)) {
        res.setHeader('www-authenticate', 'Bearer realm="egress-inspector"');
        return sendJson(res, 401, { error: 'missing or wrong bearer token' });
      }
      const route = this.routes.get(path);
      if (route === undefined) return sendJson(res, 404, { error: `no such API: ${path}` });
      if (route.method !== req.method) {
        res.setHeader('allow', route.method);
        return sendJson(res, 405, { error: `${path} takes ${route.method}` });
      }
      if (expectsContinue) {
        const declared = Number(req.headers['content-length']);
        if (route.maxBodyBytes !== null && Number.isFinite(declared) && declared > route.maxBodyBytes) {
          res.setHeader('connection', 'close');
          return sendJson(res, 413, { error: `Content-Length ${declared} is over the limit of ${route.maxBodyBytes} bytes`, code: 'BODY_TOO_LARGE', limit: route.maxBodyBytes });
        }
        res.writeContinue();
      }
      await route.handler(req, res);
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  }
}
