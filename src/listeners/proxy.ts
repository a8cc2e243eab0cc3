import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { listenOn } from './listen.js';
import type { Duplex } from 'node:stream';
import { EgressError, isEgressError, type ErrorCode } from '../errors.js';
import type { Flow } from '../flow/flow.js';
import type { Pipeline } from '../flow/pipeline.js';
import { builtinDecision, type Decision } from '../policy/decision.js';
import { parseAbsoluteTarget, parseConnectAuthority, type Target } from '../net/target.js';
import type { HttpForwarder } from '../actions/forward-http.js';
import { scrubRequestHeaders } from '../actions/headers.js';
import { blockMessage, sendRawText, sendText } from '../actions/respond.js';
import { dialUpstream, peekClientHello, splice, tapClientHello } from '../actions/tunnel.js';
import type { ReadResult } from '../parsers/client-hello.js';
import { tlsFactsOf } from '../fingerprint/tls-facts.js';
import { computeJa4h } from '../fingerprint/ja4h.js';
import { BODY_SAMPLE_BYTES } from '../scoring/extractors.js';
import type { Logger } from '../observe/logger.js';
import type { IdentityOutcome } from '../enrich/identity.js';

export interface ProxyTimeouts {
  /** Whole request head must arrive within this (slowloris). */
  headersMs: number;
  connectMs: number;
  responseMs: number;
  idleMs: number;
  /** Longest wait for a ClientHello when a rule pends on it. */
  clientHelloMs: number;
}

export interface ProxyListenerOptions {
  host: string;
  port: number;
  maxFlows: number;
  maxHeaderBytes: number;
  timeouts: ProxyTimeouts;
  /** true when the address may use the proxy (proxy.clients). */
  isAllowedClient: (ip: string) => boolean;
  /**
   * Observe the ClientHello of tunnels decided on the CONNECT alone (default true). false (config
   * `tls.observe`) exists to measure the observation's cost against a plain splice.
   */
  observeClientHello?: boolean;
  /** Compute JA4H (FoxIO) on plain HTTP requests; config `scoring.ja4h` (docs/fingerprints.md for why it is a switch). */
  ja4h?: boolean;
}

export interface ProxyListenerDeps {
  pipeline: Pipeline;
  forwarder: HttpForwarder;
  logger: Logger;
  /** Proxy authentication, trusted identity headers and process claims (src/enrich/identity.ts). */
  identify?: (flow: Flow, headers: http.IncomingHttpHeaders) => Promise<IdentityOutcome>;
  /** Realm of the 407 challenge. */
  authRealm?: string;
  /** Configured identity header names, stripped before forwarding like the built-in ones. */
  identityHeaders?: readonly string[];
}

/** Built-in rule ids for decisions the proxy makes before the policy runs. */
export const BUILTIN_RULES = {
  clientDenied: 'builtin:client-denied',
  badRequest: 'builtin:bad-request',
  capacity: 'builtin:capacity',
  authRequired: 'builtin:auth-required',
} as const;

const CONNECTION_ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

/** Node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d; records and ACLs use the IPv4 form. */
function clientIp(socket: net.Socket | Duplex): string {
  const raw = (socket as net.Socket).remoteAddress ?? '';
  return raw.startsWith('::ffff:') && raw.includes('.') ? raw.slice(7) : raw;
}

function clientPort(socket: net.Socket | Duplex): number {
  return (socket as net.Socket).remotePort ?? 0;
}

/** llhttp error codes → status (RFC 9110 §15.5; 431 from RFC 6585). */
function statusForParseError(code: string | undefined): { status: number; error: ErrorCode } {
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, error: 'HEADERS_TOO_LARGE' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, error: 'CLIENT_TIMEOUT' };
  return { status: 400, error: 'BAD_REQUEST' };
}

const PARSE_ERROR_TEXT: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: 'request headers too large',
  HPE_INVALID_METHOD: 'unknown or malformed request method',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'conflicting Content-Length / Transfer-Encoding (request smuggling form)',
  HPE_INVALID_TRANSFER_ENCODING: 'invalid Transfer-Encoding',
  HPE_INVALID_CONTENT_LENGTH: 'invalid Content-Length',
  HPE_INVALID_URL: 'malformed request target',
  HPE_INVALID_VERSION: 'malformed HTTP version',
  HPE_INVALID_HEADER_TOKEN: 'malformed header',
  HPE_LF_EXPECTED: 'malformed line ending',
  ERR_HTTP_REQUEST_TIMEOUT: 'request head not received in time',
};

/**
 * The forward proxy listener: absolute-URI HTTP requests and CONNECT tunnels. It turns socket events
 * into flow stages for the pipeline and carries out the decision; it never evaluates policy itself.
 */
export class ProxyListener {
  readonly server: http.Server;
  private readonly opts: ProxyListenerOptions;
  private readonly deps: ProxyListenerDeps;
  private readonly tunnels = new Set<Duplex>();
  /** The 407 challenge (RFC 7617 §2), built once; the realm cannot break out of its quotes. */
  private readonly challenge: string;
  /** Per client socket: bytesRead already attributed to earlier requests on that keep-alive connection. */
  private readonly consumed = new WeakMap<net.Socket, number>();

  constructor(opts: ProxyListenerOptions, deps: ProxyListenerDeps) {
    this.opts = opts;
    this.deps = deps;
    this.challenge = `Basic realm="${(deps.authRealm ?? 'egress-inspector').replace(/["\\]/g, '')}", charset="UTF-8"`;
    this.server = http.createServer({
      maxHeaderSize: opts.maxHeaderBytes,
      headersTimeout: opts.timeouts.headersMs,
      // Node checks the headers timeout on this interval (default 30 s); check often enough to enforce it.
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(opts.timeouts.headersMs / 2))),
      // Bodies may stream for long (uploads); idleness is bounded by the socket timeout instead.
      requestTimeout: 0,
      keepAliveTimeout: Math.min(opts.timeouts.idleMs, 60_000),
      // Reject ambiguous framing rather than guess (RFC 9112 §6.3; request smuggling).
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
    });
    this.server.timeout = opts.timeouts.idleMs;
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handleRequest(req, res).catch((err: unknown) => this.deps.logger.error({ err }, 'recording a flow failed'));
    });
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleConnect(req, socket as net.Socket, head).catch((err: unknown) => {
        this.deps.logger.error({ err }, 'CONNECT handler failed');
        socket.destroy();
      });
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      const flow = this.deps.pipeline.open('http', clientIp(socket), clientPort(socket));
      this.fillRequestFacts(flow, req);
      this.refuse(flow, 'BAD_REQUEST', 'protocol upgrade over plain HTTP is not supported; use CONNECT', 501);
      sendRawText(socket, 501, 'Protocol upgrade over plain HTTP is not supported; use CONNECT');
      this.deps.pipeline.end(flow);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.handleClientError(err, socket));
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.opts.host, this.opts.port);
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight flows finish for up to `drainMs`, then cut what is
   * left. Every cut flow still writes its record (the pipeline ends it with SHUTDOWN).
   */
  async shutdown(drainMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + drainMs;
    while (this.deps.pipeline.activeCount > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      this.server.closeIdleConnections();
    }
    for (const flow of this.deps.pipeline.activeFlows()) flow.fail('SHUTDOWN', 'the proxy shut down before the flow ended');
    this.server.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    // Give the close handlers a moment to write their records, then end whatever is still open.
    const grace = Date.now() + 500;
    while (this.deps.pipeline.activeCount > 0 && Date.now() < grace) await new Promise((r) => setTimeout(r, 10));
    for (const flow of this.deps.pipeline.activeFlows()) this.deps.pipeline.end(flow);
    await closed;
  }

  // ---- plain HTTP ------------------------------------------------------------------------------------

  private async handleRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const flow = this.deps.pipeline.open('http', clientIp(req.socket), clientPort(req.socket));
    this.fillRequestFacts(flow, req);
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    try {
      await this.serveRequest(flow, req, res);
    } catch (err) {
      // Answer (500) before waiting for the close: a request that got no answer would never close.
      flow.fail('INTERNAL', err instanceof Error ? err.message : String(err));
      this.internalError(err, res);
    } finally {
      // The record is written once the client has its whole answer (or is gone), with every count final.
      await closed;
      this.endHttpFlow(flow, req, res);
    }
  }

  private async serveRequest(flow: Flow, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { pipeline } = this.deps;
    if (!this.admit(flow, (status, text) => sendText(res, status, text))) return;
    if (!(await this.authenticate(flow, req, (status, text, headers) => sendText(res, status, text, headers)))) return;

    let target;
    try {
      target = parseAbsoluteTarget(req.url ?? '');
    } catch (err) {
      const message = isEgressError(err) ? err.message : 'malformed request target';
      this.refuse(flow, 'BAD_TARGET', message, 400);
      sendText(res, 400, `Bad request: ${message}`, { connection: 'close' });
      return;
    }
    this.fillDestination(flow, target);
    flow.set('url.scheme', target.scheme);
    flow.set('url.domain', target.host);
    flow.set('url.port', target.port);
    flow.set('url.path', target.path);
    if (target.query !== null) flow.set('url.query', target.query);
    // Facts of the request as the client sent it, before the proxy rewrites anything: the Host header (fronting
    // over plain HTTP) and the header order and case (JA4H, FoxIO).
    flow.requestHost = req.headers.host ?? null;
    if (this.opts.ja4h !== false) flow.set('http.request.ja4h', computeJa4h(req.method ?? 'GET', req.httpVersion, req.rawHeaders).ja4h);

    const decision = await pipeline.decide(flow, 'http-request');
    if (res.destroyed) return;
    if (this.blocked(decision)) {
      flow.set('http.response.status_code', 403);
      sendText(res, 403, blockMessage(decision.status === 'final' ? decision.ruleId : null));
      return;
    }
    const ip = flow.get('destination.ip');
    if (ip === undefined) {
      flow.set('http.response.status_code', 502);
      sendText(res, 502, `Bad gateway: ${flow.errorMessage ?? 'destination could not be resolved'}`);
      return;
    }

    scrubRequestHeaders(req.headers, this.deps.identityHeaders);
    // Forward origin-form (RFC 9112 §3.2.1); keep the client's Host, or supply it for HTTP/1.0 clients.
    req.url = target.query === null ? target.path : `${target.path}?${target.query}`;
    req.headers.host ??= target.port === 80 ? target.host : `${target.host}:${target.port}`;
    sampleBody(flow, req);
    const result = await this.deps.forwarder.forward(req, res, { ip, port: target.port });
    flow.destinationBytes = result.destinationBytes;
    if (result.error !== null) {
      flow.fail(result.error.code, result.error.message);
      if (!result.midResponse && !res.headersSent && !res.destroyed) {
        const status = result.error.code === 'UPSTREAM_TIMEOUT' ? 504 : 502;
        flow.set('http.response.status_code', status);
        sendText(res, status, `${status === 504 ? 'Gateway timeout' : 'Bad gateway'}: ${result.error.message}`);
      }
    }
  }

  private endHttpFlow(flow: Flow, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (flow.ended) return;
    const socket = req.socket;
    const before = this.consumed.get(socket) ?? 0;
    flow.sourceBytes = socket.bytesRead - before;
    this.consumed.set(socket, socket.bytesRead);
    if (flow.get('http.response.status_code') === undefined && res.headersSent) flow.set('http.response.status_code', res.statusCode);
    if (!res.writableFinished && flow.outcome === 'success') flow.fail('CLIENT_ABORTED', 'client closed the connection before the response ended');
    this.deps.pipeline.end(flow);
  }

  // ---- CONNECT ---------------------------------------------------------------------------------------

  private async handleConnect(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    this.tunnels.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.tunnels.delete(socket));
    const flow = this.deps.pipeline.open('connect', clientIp(socket), clientPort(socket));
    this.fillRequestFacts(flow, req);
    try {
      await this.serveConnect(flow, req, socket, head);
    } catch (err) {
      flow.fail('INTERNAL', err instanceof Error ? err.message : String(err));
      socket.destroy();
      throw err;
    } finally {
      this.deps.pipeline.end(flow); // once only: serveConnect may have ended it already
    }
  }

  private async serveConnect(flow: Flow, req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    const { pipeline } = this.deps;
    const finish = (): void => pipeline.end(flow);

    if (!this.admit(flow, (status, text) => sendRawText(socket, status, text))) return finish();
    if (!(await this.authenticate(flow, req, (status, text, headers) => sendRawText(socket, status, text, headers)))) return finish();

    let target: Target;
    try {
      target = parseConnectAuthority(req.url ?? '');
    } catch (err) {
      const message = isEgressError(err) ? err.message : 'malformed CONNECT authority';
      this.refuse(flow, 'BAD_TARGET', message, 400);
      sendRawText(socket, 400, `Bad request: ${message}`);
      return finish();
    }
    this.fillDestination(flow, target);

    let decision = await pipeline.decide(flow, 'connect');
    if (socket.destroyed) {
      flow.fail('CLIENT_ABORTED', 'client closed the connection before the decision');
      return finish();
    }
    if (this.blocked(decision)) {
      flow.set('http.response.status_code', 403);
      sendRawText(socket, 403, blockMessage(decision.status === 'final' ? decision.ruleId : null));
      return finish();
    }
    const ip = flow.get('destination.ip');
    if (decision.status === 'final') {
      // Decided on the CONNECT alone: dial first so a dead destination still gets a proper 502/504.
      if (ip === undefined) return this.failConnect(flow, socket, 502, flow.errorMessage ?? 'destination could not be resolved');
      const upstream = await this.dial(flow, ip, target.port);
      if (upstream === null) return this.failConnect(flow, socket, flow.errorCode === 'UPSTREAM_TIMEOUT' ? 504 : 502, flow.errorMessage ?? '');
      if (socket.destroyed) {
        upstream.destroy();
        flow.fail('CLIENT_ABORTED', 'client closed the connection before the tunnel opened');
        return finish();
      }
      this.tunnels.add(upstream);
      flow.set('http.response.status_code', 200);
      socket.write(CONNECTION_ESTABLISHED);
      if (this.opts.observeClientHello !== false) {
        tapClientHello(socket, head, (result) => {
          this.applyHello(flow, result, target);
          void pipeline.decide(flow, 'client-hello');
        });
      }
      const spliced = await splice(socket, upstream, this.opts.timeouts.idleMs, head);
      this.tunnels.delete(upstream);
      this.recordSplice(flow, spliced);
      return finish();
    }

    // A rule pends on ClientHello facts: answer, read the hello, decide — and only then touch the destination.
    flow.set('http.response.status_code', 200);
    socket.write(CONNECTION_ESTABLISHED);
    const peeked = await peekClientHello(socket, head, { timeoutMs: this.opts.timeouts.clientHelloMs });
    if (peeked.result.kind === 'closed') {
      flow.sourceBytes = peeked.bytes.length;
      flow.fail('CLIENT_ABORTED', 'client closed the tunnel before sending a ClientHello');
      return finish();
    }
    this.applyHello(flow, peeked.result, target);
    decision = await pipeline.decide(flow, 'client-hello');
    flow.sourceBytes = peeked.bytes.length;
    if (this.blocked(decision) || socket.destroyed) {
      // SPEC: blocked after the ClientHello → closed before any byte reaches the destination.
      socket.destroy();
      if (!this.blocked(decision)) flow.fail('CLIENT_ABORTED', 'client closed the tunnel during the decision');
      return finish();
    }
    if (ip === undefined) {
      flow.fail('RESOLVE_FAILED', flow.errorMessage ?? 'destination could not be resolved');
      socket.destroy();
      return finish();
    }
    const upstream = await this.dial(flow, ip, target.port);
    if (upstream === null) {
      socket.destroy();
      return finish();
    }
    this.tunnels.add(upstream);
    const spliced = await splice(socket, upstream, this.opts.timeouts.idleMs, peeked.bytes);
    this.tunnels.delete(upstream);
    this.recordSplice(flow, spliced);
    finish();
  }

  /** Dial the tunnel's destination; on failure the flow records why and null is returned. */
  private async dial(flow: Flow, ip: string, port: number): Promise<net.Socket | null> {
    try {
      return await dialUpstream(ip, port, this.opts.timeouts.connectMs);
    } catch (err) {
      const e = err instanceof EgressError ? err : new EgressError('UPSTREAM_CONNECT_FAILED', String(err));
      flow.fail(e.code, e.message);
      return null;
    }
  }

  private applyHello(flow: Flow, result: ReadResult | { kind: 'timeout' }, target: Target): void {
    if (result.kind === 'complete') {
      const facts = tlsFactsOf(result.hello, target.host);
      for (const [name, value] of Object.entries(facts)) flow.set(name as keyof typeof facts, value as never);
      flow.set('network.protocol', 'tls');
    } else if (result.kind === 'invalid') {
      // A TLS record that does not hold a valid ClientHello (duplicate extensions, bad lengths): browsers and
      // common TLS libraries never send one, hand-rolled implants sometimes do. A fact for policy and score.
      flow.set('network.protocol', 'tls');
      flow.set('tls.client.malformed', result.error.message);
    } else {
      // Not TLS on a tunnel (or no hello in time): a fact for the policy, not an error of the flow.
      flow.set('network.protocol', 'unknown');
    }
  }

  private recordSplice(flow: Flow, spliced: { sourceBytes: number; destinationBytes: number; error: EgressError | null }): void {
    flow.sourceBytes = spliced.sourceBytes;
    flow.destinationBytes = spliced.destinationBytes;
    if (spliced.error !== null && spliced.error.code !== 'CLIENT_TIMEOUT') flow.fail(spliced.error.code, spliced.error.message);
  }

  private failConnect(flow: Flow, socket: net.Socket, status: number, message: string): void {
    flow.set('http.response.status_code', status);
    sendRawText(socket, status, `${status === 504 ? 'Gateway timeout' : 'Bad gateway'}: ${message}`);
    this.deps.pipeline.end(flow);
  }

  // ---- shared ----------------------------------------------------------------------------------------

  private fillRequestFacts(flow: Flow, req: http.IncomingMessage): void {
    flow.set('http.request.method', req.method);
    flow.set('http.version', req.httpVersion);
    flow.set('url.original', req.url);
    const ua = req.headers['user-agent'];
    if (ua !== undefined) flow.set('user_agent.original', ua);
    if (req.method !== 'CONNECT') flow.set('network.protocol', 'http');
  }

  private fillDestination(flow: Flow, target: Target): void {
    flow.set('destination.port', target.port);
    flow.set('destination.ip_literal', target.ip !== null);
    if (target.ip !== null) flow.set('destination.ip', target.ip);
    else flow.set('destination.domain', target.host);
  }

  /** Client ACL and the concurrent-flow cap, before any work is spent on the request. */
  private admit(flow: Flow, reply: (status: number, text: string) => void): boolean {
    const ip = flow.get('source.ip') ?? '';
    if (ip === '' || !this.opts.isAllowedClient(ip)) {
      this.refuse(flow, 'CLIENT_DENIED', `client ${ip} is not in proxy.clients`, 403, BUILTIN_RULES.clientDenied);
      reply(403, 'Forbidden: this client may not use the proxy');
      return false;
    }
    if (this.deps.pipeline.activeCount > this.opts.maxFlows) {
      this.refuse(flow, 'TOO_MANY_FLOWS', `more than ${this.opts.maxFlows} concurrent flows`, 503, BUILTIN_RULES.capacity);
      reply(503, 'Service unavailable: too many concurrent flows');
      return false;
    }
    return true;
  }

  /** Identity facts, or 407 (RFC 9110 §15.5.8) with a challenge when credentials are required or wrong. */
  private async authenticate(
    flow: Flow,
    req: http.IncomingMessage,
    reply: (status: number, text: string, headers: Record<string, string>) => void,
  ): Promise<boolean> {
    if (this.deps.identify === undefined) return true;
    const outcome = await this.deps.identify(flow, req.headers);
    if (outcome.ok) return true;
    this.refuse(flow, 'AUTH_REQUIRED', outcome.reason, 407, BUILTIN_RULES.authRequired);
    reply(407, 'Proxy authentication required', { 'proxy-authenticate': this.challenge });
    return false;
  }

  private refuse(flow: Flow, code: ErrorCode, message: string, status: number, ruleId: string = BUILTIN_RULES.badRequest): void {
    flow.fail(code, message);
    flow.decision = builtinDecision('block', ruleId, message);
    flow.set('http.response.status_code', status);
    if (flow.get('network.protocol') === undefined) flow.set('network.protocol', 'unknown');
  }

  private blocked(decision: Decision): boolean {
    return decision.status === 'final' && decision.verdict === 'block';
  }

  private handleClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, error } = statusForParseError(err.code);
    const text = PARSE_ERROR_TEXT[err.code ?? ''] ?? 'malformed request';
    const flow = this.deps.pipeline.open('http', clientIp(socket), clientPort(socket));
    flow.sourceBytes = (socket as net.Socket).bytesRead ?? 0;
    this.refuse(flow, error, text, status);
    sendRawText(socket, status, `${STATUS_TEXT[status] ?? 'Bad request'}: ${text}`);
    this.deps.pipeline.end(flow);
  }

  private internalError(err: unknown, res: http.ServerResponse): void {
    this.deps.logger.error({ err }, 'request handler failed');
    if (!res.headersSent) sendText(res, 500, 'Internal proxy error');
    else res.destroy();
  }
}

/**
 * Keep the first bytes of the request body for its entropy (egress.features.body_*), as they stream past on
 * their way to the destination. Registered in the same tick as the forwarder's pipe, so both see every chunk;
 * the listener detaches once the sample is full. Only requests that announce a body pay for the buffer.
 */
function sampleBody(flow: Flow, req: http.IncomingMessage): void {
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return;
  const sample = Buffer.allocUnsafe(BODY_SAMPLE_BYTES);
  flow.bodySample = sample;
  const onData = (chunk: Buffer): void => {
    const n = chunk.copy(sample, flow.bodySampleLength, 0, Math.min(chunk.length, BODY_SAMPLE_BYTES - flow.bodySampleLength));
    flow.bodySampleLength += n;
    if (flow.bodySampleLength >= BODY_SAMPLE_BYTES) req.removeListener('data', onData);
  };
  req.on('data', onData);
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad request',
  408: 'Request timeout',
  431: 'Request header fields too large',
};
