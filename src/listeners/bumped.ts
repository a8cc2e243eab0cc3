/**
 * Bumped tunnels (issue 10): the proxy terminates the client's TLS with a certificate from its own CA
 * (src/actions/bump.ts), serves the decrypted HTTP/1.1 with the same engine as plain HTTP
 * (src/listeners/http1-server.ts), and turns every inner request into a flow of its own — its policy decision,
 * its score, its record, linked to the tunnel's record by `egress.tunnel_id` — before forwarding it over
 * verified TLS to the tunnel's destination (src/actions/upstream-tls.ts).
 *
 * What an inner request inherits from its tunnel: the destination (the address the tunnel was allowed to and
 * resolved to — the inner Host header never re-targets it), the ClientHello facts (SNI, JA3, JA4), the
 * client's identity. What it brings: method, path, Host, User-Agent, JA4H, body sample. The Host header is
 * compared with the SNI (`egress.features.host_mismatch`, domain fronting) exactly as plain HTTP compares it
 * with the absolute URI.
 */
import { isIP } from 'node:net';
import type net from 'node:net';
import type tls from 'node:tls';
import { EgressError } from '../errors.js';
import type { Flow } from '../flow/flow.js';
import type { FieldName, FieldValue } from '../flow/fields.js';
import type { Pipeline } from '../flow/pipeline.js';
import type { Target } from '../net/target.js';
import type { HttpForwarder } from '../actions/forward-http.js';
import type { RequestScrubber } from '../actions/headers.js';
import { blockMessage, sendRawText } from '../actions/respond.js';
import { terminateClientTls, type PinnedClients } from '../actions/bump.js';
import { computeJa4h } from '../fingerprint/ja4h.js';
import { httpVersionOf } from '../parsers/http1.js';
import type { Logger } from '../observe/logger.js';
import { Http1Server, type Http1Exchange } from './http1-server.js';
import { frontingPairs } from '../fingerprint/fronting.js';
import { endHttpFlow, fillRequestFacts, forwardAndAnswer, RequestBytes, sampleBody, setUpstreamTlsFacts, type Refuse } from './http-flow.js';

/** Where leaf certificates come from (src/net/leaf-certs.ts). */
export interface LeafSource {
  secureContext(name: string): Promise<tls.SecureContext>;
}

export interface BumpedTunnelsOptions {
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly idleMs: number;
  /** The client must finish its TLS handshake with us within this. */
  readonly handshakeTimeoutMs: number;
  /** Compute JA4H on inner requests (config scoring.ja4h). */
  readonly ja4h: boolean;
  /** proxy.max_flows: inner requests count like any flow; over it they get 503 inside TLS. */
  readonly maxFlows: number;
}

export interface BumpedTunnelsDeps {
  readonly pipeline: Pipeline;
  readonly forwarder: HttpForwarder;
  readonly scrubber: RequestScrubber;
  readonly leaves: LeafSource;
  readonly pinned: PinnedClients;
  readonly logger: Logger;
  readonly refuse: Refuse;
}

/** One bumped tunnel, as its inner requests see it. */
interface Tunnel {
  readonly flow: Flow;
  readonly target: Target;
  /** The address the tunnel was allowed to: every inner request goes there. */
  readonly ip: string;
  /** SNI the client sent, or null. */
  readonly servername: string | null;
  readonly sourceIp: string;
  readonly sourcePort: number;
}

/** Fields of the tunnel's record an inner request carries over (facts of the connection, not of the request). */
const INHERITED_PREFIXES = ['tls.client.', 'destination.', 'user.', 'egress.baseline.'];
const INHERITED_FIELDS: ReadonlySet<string> = new Set(['egress.tls.version_offered', 'egress.features.prevalence']);

function inherited(name: string): boolean {
  if (INHERITED_FIELDS.has(name)) return true;
  for (const prefix of INHERITED_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

export class BumpedTunnels {
  private readonly opts: BumpedTunnelsOptions;
  private readonly deps: BumpedTunnelsDeps;
  private readonly server: Http1Server;
  private readonly tunnels = new WeakMap<net.Socket, Tunnel>();
  private readonly open = new Set<tls.TLSSocket>();
  private readonly bytes = new RequestBytes();

  constructor(opts: BumpedTunnelsOptions, deps: BumpedTunnelsDeps) {
    this.opts = opts;
    this.deps = deps;
    this.server = new Http1Server(
      { maxHeaderBytes: opts.maxHeaderBytes, headersTimeoutMs: opts.headersTimeoutMs, idleMs: opts.idleMs, keepAliveMs: Math.min(opts.idleMs, 60_000) },
      {
        request: (exchange) => {
          this.handleRequest(exchange).catch((err: unknown) => this.deps.logger.error({ err }, 'recording an inner request failed'));
        },
        // A CONNECT inside a bumped tunnel: the tunnel already has its destination.
        connect: (_head, socket) => sendRawText(socket, 405, 'Method not allowed: CONNECT inside an intercepted tunnel'),
        clientError: (socket, err) => {
          if (socket.writable) sendRawText(socket, err.status, `Bad request: ${err.message}`);
          else socket.destroy();
        },
      },
    );
  }

  /** Has this client refused our certificate for this name recently? Then its tunnel is spliced (pinning). */
  isPinned(clientIp: string, name: string): boolean {
    return this.deps.pinned.has(clientIp, name);
  }

  /**
   * Terminate the tunnel's TLS and serve its inner requests until the client or the proxy closes it. The
   * tunnel's flow is complete (bytes, outcome) when this resolves with 'served'; the caller ends it. 'splice':
   * no certificate can carry this name (an underscore, a wildcard-like or non-ASCII SNI: src/net/leaf-certs.ts
   * checkLeafName) — nothing was touched, the caller splices, and `egress.tunnel_reason` says why.
   */
  async serve(flow: Flow, socket: net.Socket, replay: Buffer, target: Target, ip: string): Promise<'served' | 'splice'> {
    const servername = flow.get('tls.client.server_name') ?? null;
    const name = servername ?? target.host;
    const sourceIp = flow.get('source.ip') ?? '';
    let context: tls.SecureContext;
    try {
      context = await this.deps.leaves.secureContext(name);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof EgressError && err.code === 'BAD_TARGET') {
        flow.set('egress.tunnel_reason', `no certificate can name it, spliced (${message})`);
        return 'splice';
      }
      flow.set('egress.tunnel', 'bump');
      flow.fail('INTERNAL', `no interception certificate for ${name}: ${message}`);
      socket.destroy();
      return 'served';
    }
    flow.set('egress.tunnel', 'bump');
    const result = await terminateClientTls(socket, replay, context, this.opts.handshakeTimeoutMs);
    if (result.kind !== 'bumped') {
      flow.sourceBytes = socket.bytesRead;
      flow.destinationBytes = socket.bytesWritten;
      if (result.kind === 'rejected') {
        // Pinning, or a client that does not trust the gateway's CA: its next tunnel to this name is spliced.
        if (result.pinning) this.deps.pinned.remember(sourceIp, name);
        flow.fail(result.error.code, result.error.message);
      } else flow.fail('CLIENT_ABORTED', 'client closed the tunnel during the TLS handshake');
      return 'served';
    }
    const secure = result.socket;
    this.tunnels.set(secure, { flow, target, ip, servername, sourceIp, sourcePort: flow.get('source.port') ?? 0 });
    this.open.add(secure);
    const closed = new Promise<void>((resolve) => secure.once('close', () => resolve()));
    this.server.adopt(secure);
    await closed;
    this.open.delete(secure);
    // Bytes on the wire, TLS included, as for a spliced tunnel.
    flow.sourceBytes = socket.bytesRead;
    flow.destinationBytes = socket.bytesWritten;
    return 'served';
  }

  /** Cut every bumped tunnel (shutdown). */
  closeAll(): void {
    for (const socket of this.open) socket.destroy();
  }

  private async handleRequest(exchange: Http1Exchange): Promise<void> {
    const tunnel = this.tunnels.get(exchange.socket);
    if (tunnel === undefined) {
      exchange.destroy();
      return;
    }
    const { pipeline } = this.deps;
    const head = exchange.head;
    const flow = pipeline.open('http', tunnel.sourceIp, tunnel.sourcePort);
    flow.set('egress.tunnel_id', tunnel.flow.id);
    for (const [name, value] of tunnel.flow.fields()) if (inherited(name)) flow.set(name as FieldName, value as FieldValue as never);
    fillRequestFacts(flow, head);
    if (head.framing.kind !== 'none') sampleBody(flow, exchange);
    const done = new Promise<void>((resolve) => exchange.onDone(resolve));
    try {
      await this.serveRequest(flow, tunnel, exchange);
    } catch (err) {
      flow.fail('INTERNAL', err instanceof Error ? err.message : String(err));
      this.deps.logger.error({ err }, 'inner request handler failed');
      exchange.respondText(500, 'Internal proxy error');
    } finally {
      await done;
      endHttpFlow(pipeline, this.bytes, flow, exchange);
    }
  }

  private async serveRequest(flow: Flow, tunnel: Tunnel, exchange: Http1Exchange): Promise<void> {
    const head = exchange.head;
    if (this.deps.pipeline.activeCount > this.opts.maxFlows) {
      this.deps.refuse(flow, 'TOO_MANY_FLOWS', `more than ${this.opts.maxFlows} concurrent flows`, 503);
      exchange.respondText(503, 'Service unavailable: too many concurrent flows');
      return;
    }
    if (head.upgrade) {
      this.deps.refuse(flow, 'BAD_REQUEST', 'protocol upgrade inside an intercepted tunnel is not supported', 501);
      exchange.markClose();
      exchange.respondText(501, 'Protocol upgrade inside an intercepted tunnel is not supported');
      return;
    }
    // Origin-form (RFC 9112 §3.2.1) is what a client sends inside TLS; absolute-form is allowed and must name
    // this tunnel's scheme.
    let path = head.target;
    if (!path.startsWith('/')) {
      const m = ABSOLUTE_HTTPS.exec(path);
      if (m === null) {
        this.deps.refuse(flow, 'BAD_TARGET', `request target "${path.slice(0, 64)}" is not origin-form`, 400);
        exchange.markClose();
        exchange.respondText(400, 'Bad request: the request target must be a path');
        return;
      }
      path = m[1] ?? '/';
    }
    const q = path.indexOf('?');
    const domain = tunnel.servername ?? tunnel.target.host;
    flow.set('url.scheme', 'https');
    flow.set('url.domain', domain);
    flow.set('url.port', tunnel.target.port);
    flow.set('url.path', q === -1 ? path : path.slice(0, q));
    if (q !== -1) flow.set('url.query', path.slice(q + 1));
    flow.requestHost = head.headers.host ?? null;
    if (this.opts.ja4h) flow.set('http.request.ja4h', computeJa4h(head.method, httpVersionOf(head), head.rawHeaders).ja4h);

    const decision = await this.deps.pipeline.decide(flow, 'http-request');
    if (exchange.socket.destroyed) return;
    if (decision.status === 'final' && decision.verdict === 'block') {
      flow.set('http.response.status_code', 403);
      exchange.respondText(403, blockMessage(decision.ruleId));
      return;
    }
    // The Host the client sent goes to the destination as sent (it is what the server routes on); the
    // connection goes where the tunnel was allowed to, verified for the name the client asked for.
    const host = head.headers.host ?? (tunnel.target.port === 443 ? domain : `${domain}:${tunnel.target.port}`);
    const checkName = domain;
    const servername = tunnel.servername ?? (isIP(tunnel.target.host) === 0 ? tunnel.target.host : null);
    const info = await forwardAndAnswer(
      flow,
      exchange,
      this.deps.forwarder,
      this.deps.scrubber.requestHead(head, path, host),
      { ip: tunnel.ip, port: tunnel.target.port, tls: { servername, checkName } },
      this.deps.refuse,
    );
    const certificate = info?.serverFacts['tls.server.x509.alternative_names'] ?? null;
    const fronting = frontingPairs({ connect: tunnel.target.host, sni: tunnel.servername, host: head.headers.host ?? null, certificate });
    if (fronting.length > 0) flow.set('egress.tls.fronting', fronting.join(','));
    // The tunnel's record carries what its latest request learnt of the destination's TLS.
    if (info !== null) setUpstreamTlsFacts(tunnel.flow, info);
  }
}

const ABSOLUTE_HTTPS = /^https:\/\/[^/?#]*(\/[^#]*)?$/i;
