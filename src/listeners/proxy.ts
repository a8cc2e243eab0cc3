import type http from 'node:http';
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
import { RequestScrubber } from '../actions/headers.js';
import { blockMessage, sendRawText } from '../actions/respond.js';
import { Http1Server, type ClientError, type Http1Exchange } from './http1-server.js';
import { httpVersionOf, type RequestHead } from '../parsers/http1.js';
import { clientHelloObserver, dialUpstream, peekClientHello, splice, type ChunkObserver } from '../actions/tunnel.js';
import { serverFlightObserver } from '../parsers/server-hello.js';
import { tlsServerFactsOf } from '../fingerprint/tls-server-facts.js';
import { frontingPairs } from '../fingerprint/fronting.js';
import type { ReadResult } from '../parsers/client-hello.js';
import { tlsFactsOf } from '../fingerprint/tls-facts.js';
import { computeJa4h } from '../fingerprint/ja4h.js';
import { endHttpFlow, fillRequestFacts, forwardAndAnswer, RequestBytes, sampleBody, setServerFacts, type Refuse } from './http-flow.js';
import type { Logger } from '../observe/logger.js';
import type { IdentityOutcome } from '../enrich/identity.js';
import type { PinnedClients } from '../actions/bump.js';
import { BumpedTunnels, type LeafSource } from './bumped.js';

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
  /** TLS interception (`bump` rules): null or absent when no CA is loaded, and then no rule may bump. */
  interception?: { readonly leaves: LeafSource; readonly pinned: PinnedClients } | null;
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

/** Our parser's error codes (src/parsers/http1.ts) → the flow's error code. */
function errorCodeFor(err: ClientError): ErrorCode {
  if (err.code === 'HEADERS_TOO_LARGE') return 'HEADERS_TOO_LARGE';
  if (err.code === 'CLIENT_TIMEOUT') return 'CLIENT_TIMEOUT';
  return 'BAD_REQUEST';
}

/**
 * The forward proxy listener: absolute-URI HTTP requests and CONNECT tunnels. It turns socket events
 * into flow stages for the pipeline and carries out the decision; it never evaluates policy itself.
 */
export class ProxyListener {
  readonly server: Http1Server;
  private readonly opts: ProxyListenerOptions;
  private readonly deps: ProxyListenerDeps;
  private readonly tunnels = new Set<Duplex>();
  /** The 407 challenge (RFC 7617 §2), built once; the realm cannot break out of its quotes. */
  private readonly challenge: string;
  /** Per client socket: bytesRead already attributed to earlier requests on that keep-alive connection. */
  private readonly bytes = new RequestBytes();
  private readonly refuseFn: Refuse = (flow, code, message, status) =>
    this.refuse(flow, code, message, status, code === 'TOO_MANY_FLOWS' ? BUILTIN_RULES.capacity : BUILTIN_RULES.badRequest);
  private readonly scrubber: RequestScrubber;
  /** Bumped tunnels and their inner requests; null without an interception CA. */
  private readonly bumps: BumpedTunnels | null;

  constructor(opts: ProxyListenerOptions, deps: ProxyListenerDeps) {
    this.opts = opts;
    this.deps = deps;
    this.challenge = `Basic realm="${(deps.authRealm ?? 'egress-inspector').replace(/["\\]/g, '')}", charset="UTF-8"`;
    this.scrubber = new RequestScrubber(deps.identityHeaders);
    const interception = deps.interception ?? null;
    this.bumps =
      interception === null
        ? null
        : new BumpedTunnels(
            {
              maxHeaderBytes: opts.maxHeaderBytes,
              headersTimeoutMs: opts.timeouts.headersMs,
              idleMs: opts.timeouts.idleMs,
              handshakeTimeoutMs: opts.timeouts.clientHelloMs,
              ja4h: opts.ja4h !== false,
              maxFlows: opts.maxFlows,
            },
            { pipeline: deps.pipeline, forwarder: deps.forwarder, scrubber: this.scrubber, leaves: interception.leaves, pinned: interception.pinned, logger: deps.logger, refuse: this.refuseFn },
          );
    this.server = new Http1Server(
      {
        maxHeaderBytes: opts.maxHeaderBytes,
        headersTimeoutMs: opts.timeouts.headersMs,
        idleMs: opts.timeouts.idleMs,
        keepAliveMs: Math.min(opts.timeouts.idleMs, 60_000),
      },
      {
        request: (exchange) => {
          this.handleRequest(exchange).catch((err: unknown) => this.deps.logger.error({ err }, 'recording a flow failed'));
        },
        connect: (head, socket, rest) => {
          this.handleConnect(head, socket, rest).catch((err: unknown) => {
            this.deps.logger.error({ err }, 'CONNECT handler failed');
            socket.destroy();
          });
        },
        clientError: (socket, err) => this.handleClientError(err, socket),
      },
    );
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server.server, this.opts.host, this.opts.port);
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight flows finish for up to `drainMs`, then cut what is
   * left. Every cut flow still writes its record (the pipeline ends it with SHUTDOWN).
   */
  async shutdown(drainMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdle();
    const deadline = Date.now() + drainMs;
    while (this.deps.pipeline.activeCount > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      this.server.closeIdle();
    }
    for (const flow of this.deps.pipeline.activeFlows()) flow.fail('SHUTDOWN', 'the proxy shut down before the flow ended');
    this.server.closeAll();
    this.bumps?.closeAll();
    for (const socket of this.tunnels) socket.destroy();
    // Give the close handlers a moment to write their records, then end whatever is still open.
    const grace = Date.now() + 500;
    while (this.deps.pipeline.activeCount > 0 && Date.now() < grace) await new Promise((r) => setTimeout(r, 10));
    for (const flow of this.deps.pipeline.activeFlows()) this.deps.pipeline.end(flow);
    await closed;
  }

  // ---- plain HTTP ------------------------------------------------------------------------------------

  private async handleRequest(exchange: Http1Exchange): Promise<void> {
    const head = exchange.head;
    const socket = exchange.socket;
    const flow = this.deps.pipeline.open('http', clientIp(socket), clientPort(socket));
    fillRequestFacts(flow, head);
    if (head.framing.kind !== 'none') sampleBody(flow, exchange);
    const done = new Promise<void>((resolve) => exchange.onDone(resolve));
    try {
      await this.serveRequest(flow, exchange);
    } catch (err) {
      // Answer (500) before waiting for the end: a request that got no answer would never end.
      flow.fail('INTERNAL', err instanceof Error ? err.message : String(err));
      this.deps.logger.error({ err }, 'request handler failed');
      exchange.respondText(500, 'Internal proxy error');
    } finally {
      // The record is written once the client has its whole answer (or is gone), with every count final.
      await done;
      endHttpFlow(this.deps.pipeline, this.bytes, flow, exchange);
    }
  }

  private async serveRequest(flow: Flow, exchange: Http1Exchange): Promise<void> {
    const { pipeline } = this.deps;
    const head = exchange.head;
    const reply = (status: number, text: string, headers?: Record<string, string>): void => exchange.respondText(status, text, headers);
    if (head.upgrade) {
      this.refuse(flow, 'BAD_REQUEST', 'protocol upgrade over plain HTTP is not supported; use CONNECT', 501);
      exchange.markClose();
      reply(501, 'Protocol upgrade over plain HTTP is not supported; use CONNECT');
      return;
    }
    if (!this.admit(flow, reply)) return;
    if (!(await this.authenticate(flow, head.headers, reply))) return;

    let target;
    try {
      target = parseAbsoluteTarget(head.target);
    } catch (err) {
      const message = isEgressError(err) ? err.message : 'malformed request target';
      this.refuse(flow, 'BAD_TARGET', message, 400);
      exchange.markClose();
      reply(400, `Bad request: ${message}`);
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
    flow.requestHost = head.headers.host ?? null;
    if (this.opts.ja4h !== false) flow.set('http.request.ja4h', computeJa4h(head.method, httpVersionOf(head), head.rawHeaders).ja4h);

    const decision = await pipeline.decide(flow, 'http-request');
    if (exchange.socket.destroyed) return;
    if (this.blocked(decision)) {
      flow.set('http.response.status_code', 403);
      reply(403, blockMessage(decision.status === 'final' ? decision.ruleId : null));
      return;
    }
    const ip = flow.get('destination.ip');
    if (ip === undefined) {
      flow.set('http.response.status_code', 502);
      reply(502, `Bad gateway: ${flow.errorMessage ?? 'destination could not be resolved'}`);
      return;
    }

    // Forward origin-form (RFC 9112 §3.2.1) with Host = the target's authority (§3.2.2): the origin must serve
    // the host the policy judged, not the one a client put in Host (the mismatch is on the record as fronting).
    const originForm = target.query === null ? target.path : `${target.path}?${target.query}`;
    const name = target.family === 6 ? `[${target.host}]` : target.host;
    const host = target.port === 80 ? name : `${name}:${target.port}`;
    await forwardAndAnswer(flow, exchange, this.deps.forwarder, this.scrubber.requestHead(head, originForm, host, 'replace'), { ip, port: target.port }, this.refuseFn);
  }

  // ---- CONNECT ---------------------------------------------------------------------------------------

  private async handleConnect(req: RequestHead, socket: net.Socket, head: Buffer): Promise<void> {
    this.tunnels.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.tunnels.delete(socket));
    const flow = this.deps.pipeline.open('connect', clientIp(socket), clientPort(socket));
    fillRequestFacts(flow, req);
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

  private async serveConnect(flow: Flow, req: RequestHead, socket: net.Socket, head: Buffer): Promise<void> {
    const { pipeline } = this.deps;
    const finish = (): void => pipeline.end(flow);

    if (!this.admit(flow, (status, text) => sendRawText(socket, status, text))) return finish();
    if (!(await this.authenticate(flow, req.headers, (status, text, headers) => sendRawText(socket, status, text, headers)))) return finish();

    let target: Target;
    try {
      target = parseConnectAuthority(req.target);
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
    if (decision.status === 'final' && !this.bumping(decision)) {
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
      // The hello is observed from the relay's own reads (no second listener, no delay to the relay).
      const observe =
        this.opts.observeClientHello === false
          ? null
          : clientHelloObserver(head, (result) => {
              this.applyHello(flow, result, target);
              void pipeline.decide(flow, 'client-hello');
            });
      const spliced = await splice(socket, upstream, this.opts.timeouts.idleMs, head, { observe, observeDown: this.serverObserver(flow, target) });
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
    if (this.bumps !== null && this.bumping(decision)) {
      const name = flow.get('tls.client.server_name') ?? target.host;
      if (peeked.result.kind !== 'complete') {
        // Nothing to terminate: the client does not speak TLS (or sent no hello in time).
        flow.set('egress.tunnel_reason', 'not TLS, spliced');
      } else if (this.bumps.isPinned(flow.get('source.ip') ?? '', name)) {
        flow.set('egress.tunnel_reason', 'pinned client, spliced');
      } else if ((await this.bumps.serve(flow, socket, peeked.bytes, target, ip)) === 'served') {
        return finish();
      }
    }
    const upstream = await this.dial(flow, ip, target.port);
    if (upstream === null) {
      socket.destroy();
      return finish();
    }
    this.tunnels.add(upstream);
    const spliced = await splice(socket, upstream, this.opts.timeouts.idleMs, peeked.bytes, { observeDown: this.serverObserver(flow, target) });
    this.tunnels.delete(upstream);
    this.recordSplice(flow, spliced);
    finish();
  }

  /** Dial the tunnel's destination; on failure the flow records why and null is returned. */
  private async dial(flow: Flow, ip: string, port: number): Promise<net.Socket | null> {
    try {
      return await dialUpstream(ip, port, this.opts.timeouts.connectMs, { relay: true });
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
      flow.set('egress.tls.malformed', result.error.message);
    } else {
      // Not TLS on a tunnel (or no hello in time): a fact for the policy, not an error of the flow.
      flow.set('network.protocol', 'unknown');
    }
  }

  /**
   * Watch what the destination of a spliced tunnel sends first: its ServerHello (JA3S, JA4S) and, up to TLS 1.2,
   * its certificate (JA4X, tls.server.x509.*), copied from the relay's own reads until the flight is decided.
   */
  private serverObserver(flow: Flow, target: Target): ChunkObserver | null {
    if (this.opts.observeClientHello === false) return null;
    const watcher = serverFlightObserver((result) => {
      if (result.kind !== 'complete') return;
      const facts = tlsServerFactsOf(result.hello, result.certificates?.[0] ?? null, Date.now());
      setServerFacts(flow, facts);
      const fronting = frontingPairs({ connect: target.host, sni: flow.get('tls.client.server_name') ?? null, host: null, certificate: facts['tls.server.x509.alternative_names'] ?? null });
      if (fronting.length > 0) flow.set('egress.tls.fronting', fronting.join(','));
    }, { throughRetry: true });
    return (chunk) => {
      watcher.push(chunk);
      return watcher.done;
    };
  }

  /** An allowed tunnel a rule wants bumped (and the proxy can bump: a CA is loaded). */
  private bumping(decision: Decision): boolean {
    return this.bumps !== null && decision.status === 'final' && decision.verdict === 'allow' && decision.tunnel === 'bump';
  }

  private recordSplice(flow: Flow, spliced: { sourceBytes: number; destinationBytes: number; error: EgressError | null }): void {
    flow.set('egress.tunnel', 'splice');
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

  private fillDestination(flow: Flow, target: Target): void {
    flow.set('destination.port', target.port);
    flow.set('egress.destination.ip_literal', target.ip !== null);
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
    headers: http.IncomingHttpHeaders,
    reply: (status: number, text: string, headers: Record<string, string>) => void,
  ): Promise<boolean> {
    if (this.deps.identify === undefined) return true;
    const outcome = await this.deps.identify(flow, headers);
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

  private handleClientError(err: ClientError, socket: net.Socket): void {
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    const flow = this.deps.pipeline.open('http', clientIp(socket), clientPort(socket));
    flow.sourceBytes = this.bytes.sinceLast(socket);
    this.refuse(flow, errorCodeFor(err), err.message, err.status);
    sendRawText(socket, err.status, `${STATUS_TEXT[err.status] ?? 'Bad request'}: ${err.message}`);
    this.deps.pipeline.end(flow);
  }
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad request',
  408: 'Request timeout',
  431: 'Request header fields too large',
  501: 'Not implemented',
  505: 'HTTP version not supported',
};
