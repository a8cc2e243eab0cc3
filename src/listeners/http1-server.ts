/**
 * The client side of HTTP/1.1 for the forward proxy: accepts connections, parses request heads with our own
 * strict parser (src/parsers/http1.ts), frames request bodies, and hands each request to the listener as an
 * `Http1Exchange`, or a CONNECT's socket as it is.
 *
 * Why not `http.Server`: Node's parser only knows a fixed list of methods, so extension methods an enterprise
 * fleet uses (`CCM_POST`, `BITS_POST`; RFC 9110 §9.1 makes methods an open set of tokens) were refused; and
 * the server/response objects were a large share of the per-request cost (docs/performance.md). This module
 * keeps the guarantees Node gave: one request at a time per connection (pipelined requests wait, RFC 9112
 * §9.3.2), a deadline for the whole head (slowloris), an idle timeout, a keep-alive timeout between requests,
 * and a connection that cannot continue cleanly (body not read, framing error, `Connection: close`) is closed.
 */
import net from 'node:net';
import { textResponse } from '../actions/respond.js';
import { parseRequestHead, type Http1Error, type RequestHead } from '../parsers/http1.js';
import { ChunkedFramer, Http1FramingError } from '../parsers/http1-chunked.js';

export interface Http1ServerOptions {
  readonly maxHeaderBytes: number;
  /** The whole head must arrive within this (from its first byte). */
  readonly headersTimeoutMs: number;
  /** A connection with a request in progress and no traffic this long is closed. */
  readonly idleMs: number;
  /** A connection waiting for its next request this long is closed. */
  readonly keepAliveMs: number;
}

/** A head that did not parse, or did not arrive in time (`CLIENT_TIMEOUT`, 408). */
export type ClientError = Http1Error | { readonly code: 'CLIENT_TIMEOUT'; readonly message: string; readonly status: 408 };

export interface Http1Handlers {
  /** A request other than CONNECT. The listener answers through the exchange. */
  request(exchange: Http1Exchange): void;
  /** A CONNECT: the socket is the listener's from now on (paused); `rest` holds bytes that followed the head. */
  connect(head: RequestHead, socket: net.Socket, rest: Buffer): void;
  /** A malformed head or a head timeout: the listener records it and answers with `respondAndClose`. */
  clientError(socket: net.Socket, error: ClientError): void;
}

/** Bytes buffered from the client while nobody reads them (body before the decision, pipelined requests). */
const MAX_BUFFERED = 64 * 1024;

const EMPTY = Buffer.alloc(0);

type State = 'head' | 'body' | 'wait' | 'gone';

/** One plain-HTTP request and its answer. The body streams to whoever calls `startBody`. */
export class Http1Exchange {
  readonly head: RequestHead;
  readonly socket: net.Socket;
  /** Status sent to the client (0 until a head was written). */
  statusCode = 0;
  headersSent = false;
  /** The whole answer was written and flushed to the socket. */
  finished = false;
  /** Payload bytes of the request body, as they arrive (decoded for chunked). For sampling; set synchronously. */
  onPayload: ((buf: Buffer, start: number, end: number) => void) | null = null;
  private readonly conn: Http1Connection;
  private sink: ((chunk: Buffer) => boolean) | null = null;
  private sinkEnd: (() => void) | null = null;
  private sinkError: ((err: Http1FramingError) => void) | null = null;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private bodyEnded: boolean;
  private bodyFailed: Http1FramingError | null = null;
  private doneCallbacks: Array<() => void> = [];
  private settled = false;
  private forceClose = false;

  constructor(conn: Http1Connection, head: RequestHead, socket: net.Socket) {
    this.conn = conn;
    this.head = head;
    this.socket = socket;
    this.bodyEnded = head.framing.kind === 'none';
  }

  /** The request body was read to its end. */
  get bodyComplete(): boolean {
    return this.bodyEnded;
  }

  /** The connection will close after this answer (so the answer must say `Connection: close`). */
  get closeAfter(): boolean {
    return this.forceClose || !this.head.keepAlive || !this.bodyEnded || this.conn.draining;
  }

  /** The answer ends by closing the connection (close-delimited, or a head that said so). */
  markClose(): void {
    this.forceClose = true;
  }

  /**
   * Stream the request body (framing bytes as received: the forwarder relays them verbatim) to `sink`;
   * `sink` returning false pauses the client until `resumeBody()`. Buffered bytes are delivered first.
   */
  startBody(sink: (chunk: Buffer) => boolean, onEnd: () => void, onError: (err: Http1FramingError) => void): void {
    this.sink = sink;
    this.sinkEnd = onEnd;
    this.sinkError = onError;
    const chunks = this.buffered;
    this.buffered = [];
    this.bufferedBytes = 0;
    let flowing = true;
    for (const chunk of chunks) flowing = sink(chunk) && flowing;
    if (this.bodyFailed !== null) onError(this.bodyFailed);
    else if (this.bodyEnded) onEnd();
    if (flowing) this.conn.resume();
    else this.conn.pause();
  }

  resumeBody(): void {
    this.conn.resume();
  }

  /** Called when the exchange is over: answered and flushed, or the client went away. Once. */
  onDone(cb: () => void): void {
    if (this.settled) cb();
    else this.doneCallbacks.push(cb);
  }

  /** Write raw bytes of the answer (head or body). */
  write(data: Buffer | string): boolean {
    this.headersSent = true;
    return this.socket.write(data);
  }

  /** The answer is complete: the connection goes on with the next request, or closes. */
  end(data?: Buffer | string): void {
    this.headersSent = true;
    const close = this.closeAfter;
    const flushed = (): void => {
      this.finished = true;
      this.settle();
    };
    if (data !== undefined && data.length > 0) this.socket.write(data, flushed);
    else this.socket.write(EMPTY, flushed);
    this.conn.exchangeEnded(this, close);
  }

  /** Cut the client off (an upstream died mid-answer, or the answer cannot be completed). */
  destroy(): void {
    this.socket.destroy();
  }

  /** A short answer of the proxy's own (block, error, 407), with a fixed body. */
  respondText(status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
    if (this.headersSent) {
      this.destroy();
      return;
    }
    this.statusCode = status;
    this.end(textResponse(status, body, headers, this.closeAfter));
  }

  // ---- called by the connection ----

  /** @internal Body bytes (as framed) arrived. Returns false when the client should pause. */
  deliver(chunk: Buffer): boolean {
    if (this.sink !== null) return this.sink(chunk);
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    return this.bufferedBytes < MAX_BUFFERED;
  }

  /** @internal */
  bodyEnd(): void {
    this.bodyEnded = true;
    this.sinkEnd?.();
  }

  /** @internal */
  bodyError(err: Http1FramingError): void {
    this.bodyFailed = err;
    this.sinkError?.(err);
  }

  /** @internal */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    const callbacks = this.doneCallbacks;
    this.doneCallbacks = [];
    for (const cb of callbacks) cb();
  }
}

/** @internal One client connection: reads heads, frames bodies, one exchange at a time. */
class Http1Connection {
  readonly socket: net.Socket;
  draining = false;
  /** When the first byte of the current head arrived (0: no partial head). */
  headStartedAt = 0;
  state: State = 'head';
  private readonly server: Http1Server;
  private pending: Buffer = EMPTY;
  private exchange: Http1Exchange | null = null;
  private remaining = 0;
  private framer: ChunkedFramer | null = null;
  private paused = false;

  constructor(server: Http1Server, socket: net.Socket) {
    this.server = server;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(server.opts.keepAliveMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
  }

  get idle(): boolean {
    return this.state === 'head' && this.pending.length === 0;
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    switch (this.state) {
      case 'body':
        this.feedBody(chunk, 0);
        return;
      case 'head':
        this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
        this.parseNext();
        return;
      case 'wait':
        // A pipelined request while the previous answer is still going out: keep it for later, bounded.
        this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
        if (this.pending.length > MAX_BUFFERED) this.pause();
        return;
      case 'gone':
        return;
    }
  }

  private parseNext(): void {
    const buf = this.pending;
    if (buf.length === 0) return;
    if (this.headStartedAt === 0) this.headStartedAt = this.server.now();
    const result = parseRequestHead(buf, 0, this.server.opts.maxHeaderBytes);
    if (result.kind === 'incomplete') return;
    this.headStartedAt = 0;
    if (result.kind === 'invalid') {
      this.fail(result.error);
      return;
    }
    const head = result.head;
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused, as Node's server did (requireHostHeader; it
    // never applied that to CONNECT, whose authority is the request target, and neither do we).
    if (head.versionMinor === 1 && head.headers.host === undefined && head.method !== 'CONNECT') {
      this.fail({ code: 'BAD_HEADER', message: 'HTTP/1.1 request without a Host header', status: 400 });
      return;
    }
    const rest = buf.subarray(head.headBytes);
    this.pending = EMPTY;
    if (head.method === 'CONNECT') {
      this.handOver(head, rest);
      return;
    }
    const exchange = new Http1Exchange(this, head, this.socket);
    this.exchange = exchange;
    this.socket.setTimeout(this.server.opts.idleMs);
    const framing = head.framing;
    if (framing.kind === 'length' && framing.length > 0) {
      this.state = 'body';
      this.remaining = framing.length;
    } else if (framing.kind === 'chunked') {
      this.state = 'body';
      this.framer = new ChunkedFramer({ onData: (b, s, e) => exchange.onPayload?.(b, s, e) });
    } else {
      this.state = 'wait';
      if (framing.kind === 'length') exchange.bodyEnd();
    }
    this.server.handlers.request(exchange);
    if (this.state === 'body' && rest.length > 0) this.feedBody(rest, 0);
    else if (rest.length > 0) this.pending = rest;
  }

  private feedBody(buf: Buffer, start: number): void {
    const exchange = this.exchange;
    if (exchange === null) return;
    let end: number;
    if (this.framer !== null) {
      try {
        end = this.framer.push(buf, start);
      } catch (err) {
        this.state = 'gone';
        exchange.bodyError(err instanceof Http1FramingError ? err : new Http1FramingError(String(err), 0));
        return;
      }
    } else {
      const n = Math.min(this.remaining, buf.length - start);
      this.remaining -= n;
      if (n > 0) exchange.onPayload?.(buf, start, start + n);
      end = this.remaining === 0 ? start + n : -1;
    }
    const body = end === -1 ? (start === 0 ? buf : buf.subarray(start)) : buf.subarray(start, end);
    const flowing = body.length === 0 || exchange.deliver(body);
    if (end !== -1) {
      // A `Connection: close` trailer ends the connection after this exchange, as in llhttp.
      if (this.framer?.closeConnection === true) exchange.markClose();
      this.framer = null;
      this.state = 'wait';
      if (end < buf.length) this.pending = buf.subarray(end);
      exchange.bodyEnd();
    }
    if (!flowing) this.pause();
  }

  /** The exchange wrote its last byte: go on with the next request, or close. */
  exchangeEnded(exchange: Http1Exchange, close: boolean): void {
    if (this.exchange !== exchange) return;
    this.exchange = null;
    if (close || this.state === 'gone' || this.state === 'body') {
      this.state = 'gone';
      this.socket.end();
      return;
    }
    this.state = 'head';
    this.framer = null;
    this.socket.setTimeout(this.server.opts.keepAliveMs);
    this.resume();
    if (this.pending.length > 0) this.parseNext();
  }

  private handOver(head: RequestHead, rest: Buffer): void {
    this.state = 'gone';
    const socket = this.socket;
    socket.removeAllListeners('data');
    socket.removeAllListeners('timeout');
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    socket.setTimeout(0);
    // As http.Server hands over a CONNECT socket: not reading, and not explicitly paused, so whoever attaches
    // a 'data' listener or pipes it next starts the flow.
    socket.pause();
    (socket as { readableFlowing: boolean | null }).readableFlowing = null; // typed read-only; Node has a setter
    this.server.forget(this);
    this.server.handlers.connect(head, socket, rest);
  }

  /** A head that cannot be served: the listener answers; nothing more is read from this connection. */
  fail(error: ClientError): void {
    this.state = 'gone';
    this.headStartedAt = 0;
    this.pending = EMPTY;
    this.server.handlers.clientError(this.socket, error);
  }

  /**
   * The client sent FIN: as http.Server does by default (`httpAllowHalfOpen: false`), a request in progress is
   * abandoned and the connection closes (the forwarder then releases the destination); a partial head is dropped.
   */
  private onEnd(): void {
    this.state = 'gone';
    this.headStartedAt = 0;
    // Already ended after a `Connection: close` answer (the usual order): a second end() only builds an
    // ERR_STREAM_ALREADY_FINISHED error with its stack for nothing (2.5 % of the CPU of a new-connection load).
    if (!this.socket.writableEnded) this.socket.end();
  }

  private onClose(): void {
    this.state = 'gone';
    this.server.forget(this);
    const exchange = this.exchange;
    this.exchange = null;
    exchange?.settle();
  }
}

/**
 * A `net.Server` speaking HTTP/1.1 to proxy clients. `closeIdle()`, `closeAll()` and `close()` mirror
 * `http.Server`'s shutdown calls.
 */
export class Http1Server {
  readonly server: net.Server;
  readonly opts: Http1ServerOptions;
  readonly handlers: Http1Handlers;
  private readonly connections = new Set<Http1Connection>();
  private readonly timer: NodeJS.Timeout;
  private clock = Date.now();

  constructor(opts: Http1ServerOptions, handlers: Http1Handlers) {
    this.opts = opts;
    this.handlers = handlers;
    // allowHalfOpen as http.Server: a client that half-closes after its request still gets the answer (and a
    // CONNECT tunnel passes half-closes through).
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      this.connections.add(new Http1Connection(this, socket));
    });
    // One coarse clock and head-deadline sweep for all connections instead of a timer per request.
    const every = Math.max(100, Math.min(1000, Math.floor(opts.headersTimeoutMs / 4)));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  /**
   * Serve HTTP/1.1 on a connection this server did not accept: the decrypted side of a bumped tunnel
   * (src/actions/bump.ts). It gets the same parsing, limits, timeouts and handlers as an accepted one.
   */
  adopt(socket: net.Socket): void {
    this.connections.add(new Http1Connection(this, socket));
  }

  /** @internal A coarse clock (refreshed by the sweep) for head deadlines. */
  now(): number {
    return this.clock;
  }

  /** @internal */
  forget(conn: Http1Connection): void {
    this.connections.delete(conn);
  }

  private sweep(): void {
    const now = Date.now();
    this.clock = now;
    const deadline = now - this.opts.headersTimeoutMs;
    for (const conn of this.connections) {
      if (conn.state === 'head' && conn.headStartedAt !== 0 && conn.headStartedAt <= deadline) {
        conn.fail({ code: 'CLIENT_TIMEOUT', message: 'request head not received in time', status: 408 });
      }
    }
  }

  /** Stop accepting; `cb` runs once every connection is gone. */
  close(cb: () => void): void {
    clearInterval(this.timer);
    this.server.close(() => cb());
  }

  /** Close connections waiting for a request; busy ones close after their current answer. */
  closeIdle(): void {
    for (const conn of this.connections) {
      conn.draining = true;
      if (conn.idle) conn.socket.destroy();
    }
  }

  closeAll(): void {
    for (const conn of this.connections) conn.socket.destroy();
  }
}
