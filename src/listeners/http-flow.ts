/**
 * One HTTP request as a flow, shared by the two places requests come from: plain HTTP to the proxy
 * (src/listeners/proxy.ts) and the inner requests of a bumped tunnel (src/listeners/bumped.ts). The facts of
 * the request line, the body sample, forwarding with the answer to a failure, and the record's byte counts
 * are the same for both; only where the target comes from differs.
 */
import type net from 'node:net';
import type { ErrorCode } from '../errors.js';
import type { Flow } from '../flow/flow.js';
import type { Pipeline } from '../flow/pipeline.js';
import type { ForwardTarget, HttpForwarder } from '../actions/forward-http.js';
import type { UpstreamTlsInfo } from '../actions/upstream-tls.js';
import type { TlsServerFacts } from '../fingerprint/tls-server-facts.js';
import { httpVersionOf, type RequestHead } from '../parsers/http1.js';
import { BODY_SAMPLE_BYTES } from '../scoring/extractors.js';
import type { Http1Exchange } from './http1-server.js';

/** Facts of the request line and the User-Agent. */
export function fillRequestFacts(flow: Flow, req: RequestHead): void {
  flow.set('http.request.method', req.method);
  flow.set('http.version', httpVersionOf(req));
  flow.set('url.original', req.target);
  const ua = req.headers['user-agent'];
  if (ua !== undefined) flow.set('user_agent.original', ua);
  if (req.method !== 'CONNECT') flow.set('network.protocol', 'http');
}

/**
 * Keep the first bytes of the request body's payload (decoded from chunks) for its entropy
 * (egress.features.body_*), as they arrive — before the decision, so no byte is missed — and count the payload
 * for http.request.body.bytes. Only requests that announce a body pay for the buffer; once the sample is full
 * the hook only counts.
 */
export function sampleBody(flow: Flow, exchange: Http1Exchange): void {
  const sample = Buffer.allocUnsafe(BODY_SAMPLE_BYTES);
  flow.bodySample = sample;
  let bodyBytes = 0;
  flow.set('http.request.body.bytes', 0);
  const count = (_buf: Buffer, start: number, end: number): void => {
    bodyBytes += end - start;
    flow.set('http.request.body.bytes', bodyBytes);
  };
  exchange.onPayload = (buf, start, end) => {
    count(buf, start, end);
    const n = buf.copy(sample, flow.bodySampleLength, start, Math.min(end, start + BODY_SAMPLE_BYTES - flow.bodySampleLength));
    flow.bodySampleLength += n;
    if (flow.bodySampleLength >= BODY_SAMPLE_BYTES) exchange.onPayload = count;
  };
}

/** The destination's TLS as the records show it (bumped tunnels). */
export function setUpstreamTlsFacts(flow: Flow, info: UpstreamTlsInfo): void {
  flow.set('egress.tls.verification', info.verification);
  if (info.error !== null) flow.set('egress.tls.verification_error', info.error);
  if (info.protocol !== null) flow.set('egress.tls.upstream_protocol', info.protocol);
  if (info.cipher !== null) flow.set('egress.tls.upstream_cipher', info.cipher);
  setServerFacts(flow, info.serverFacts);
}

/** JA3S/JA4S, JA4X and the certificate's facts onto the record. */
export function setServerFacts(flow: Flow, facts: TlsServerFacts): void {
  for (const name of Object.keys(facts) as (keyof TlsServerFacts)[]) flow.set(name, facts[name] as never);
}

/** Refuse a request the proxy will not forward: error, built-in decision, status (ProxyListener.refuse). */
export type Refuse = (flow: Flow, code: ErrorCode, message: string, status: number) => void;

/**
 * Forward an allowed request and answer the client when forwarding fails before the answer began: 400 for a
 * body that broke its own framing, 504 for a silent destination, 502 for everything else (a destination whose
 * TLS certificate did not verify included: the page says why).
 */
export async function forwardAndAnswer(
  flow: Flow,
  exchange: Http1Exchange,
  forwarder: HttpForwarder,
  requestHead: string,
  target: ForwardTarget,
  refuse: Refuse,
): Promise<UpstreamTlsInfo | null> {
  const result = await forwarder.forward(exchange, requestHead, target);
  flow.destinationBytes = result.destinationBytes;
  // The destination's body as relayed (payload, chunk framing removed); absent when it never answered.
  if (result.status !== 0) flow.set('http.response.body.bytes', result.destinationBytes);
  if (result.upstreamTls !== null) setUpstreamTlsFacts(flow, result.upstreamTls);
  if (result.error === null) return result.upstreamTls;
  const answerable = !result.midResponse && !exchange.headersSent && !exchange.socket.destroyed;
  if (result.error.code === 'BAD_REQUEST') {
    // The client's body broke its own framing (a bad chunk): refused like a malformed head, whatever the policy said.
    refuse(flow, 'BAD_REQUEST', result.error.message, 400);
    if (answerable) exchange.respondText(400, `Bad request: ${result.error.message}`);
    else exchange.destroy();
    return result.upstreamTls;
  }
  flow.fail(result.error.code, result.error.message);
  if (answerable) {
    const status = result.error.code === 'UPSTREAM_TIMEOUT' ? 504 : 502;
    flow.set('http.response.status_code', status);
    exchange.markClose();
    exchange.respondText(status, `${status === 504 ? 'Gateway timeout' : 'Bad gateway'}: ${result.error.message}`);
  }
  return result.upstreamTls;
}

/** Bytes per request on keep-alive connections: what each connection had already read before this request. */
export class RequestBytes {
  private readonly consumed = new WeakMap<net.Socket, number>();

  /** Bytes the connection has read since the last request ended (this request's share). */
  sinceLast(socket: net.Socket): number {
    return socket.bytesRead - (this.consumed.get(socket) ?? 0);
  }

  /** Close the current request's share: the next one counts from here. */
  mark(socket: net.Socket): void {
    this.consumed.set(socket, socket.bytesRead);
  }
}

/** End the flow of an exchange once the client has its whole answer (or is gone), with every count final. */
export function endHttpFlow(pipeline: Pipeline, bytes: RequestBytes, flow: Flow, exchange: Http1Exchange): void {
  if (flow.ended) return;
  const socket = exchange.socket;
  flow.sourceBytes = bytes.sinceLast(socket);
  bytes.mark(socket);
  if (flow.get('http.response.status_code') === undefined && exchange.statusCode !== 0) flow.set('http.response.status_code', exchange.statusCode);
  // A request without body framing has an empty body (RFC 9112 §6.3 rule 7); one with a body counts in sampleBody.
  if (exchange.head.framing.kind === 'none' && flow.get('http.request.method') !== 'CONNECT') flow.set('http.request.body.bytes', 0);
  if (!exchange.finished && flow.outcome === 'success') flow.fail('CLIENT_ABORTED', 'client closed the connection before the response ended');
  pipeline.end(flow);
}
