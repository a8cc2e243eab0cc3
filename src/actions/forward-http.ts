/**
 * Plain-HTTP forwarding to the destination: a bounded pool of keep-alive sockets per resolved address, the
 * request head written once, bodies relayed with their own framing (verified by our parsers, never
 * re-framed), and the response head parsed strictly (src/parsers/http1.ts) before anything reaches the client.
 *
 * This replaces http-proxy-3 + `http.request`, which cost more per request than all of our inspection
 * (docs/performance.md), and carries the same guarantees: hop-by-hop and proxy-only response fields removed
 * (RFC 9110 §7.6.1), ambiguous response framing refused (RFC 9112 §6.3), an upstream that dies mid-answer cuts
 * the client off instead of ending a short "complete" response, an idle upstream times out (504 before the
 * head), a client that goes away releases the upstream.
 */
import net from 'node:net';
import { EgressError } from '../errors.js';
import { parseResponseHead, type ResponseHead } from '../parsers/http1.js';
import { ChunkedFramer } from '../parsers/http1-chunked.js';
import type { Http1Exchange } from '../listeners/http1-server.js';
import { responseHead } from './headers.js';
import { dialUpstream } from './tunnel.js';
import { connectUpstreamTls, upstreamTlsInfo, UpstreamTlsError, type UpstreamTlsInfo, type UpstreamTlsTarget, type UpstreamTrust } from './upstream-tls.js';

export interface ForwardOptions {
  connectTimeoutMs: number;
  /** Longest silence from the destination, before and during its answer. */
  responseTimeoutMs: number;
  /** Upper bound on idle pooled sockets per destination address (default 64). */
  maxIdlePerHost?: number;
  /** Upper bound on upstream sockets (pooled + active) across all destinations. */
  maxTotalSockets?: number;
  /** A pooled keep-alive socket unused this long is closed (default 30 s). */
  idleSocketMs?: number;
  /** Largest response head accepted from a destination (default 64 KiB). */
  maxResponseHeaderBytes?: number;
  /** Roots for TLS destinations (bumped tunnels); a target with `tls` fails without them. */
  trust?: UpstreamTrust;
}

export interface ForwardTarget {
  /** The resolved address to dial (never a name: no second lookup). */
  readonly ip: string;
  readonly port: number;
  /** Speak TLS to the destination, verified (the inner requests of a bumped tunnel). */
  readonly tls?: UpstreamTlsTarget;
}

export interface ForwardResult {
  /** null on success; otherwise why the upstream exchange failed. */
  readonly error: EgressError | null;
  /** true when an error happened after the response head had been sent (the client was cut off). */
  readonly midResponse: boolean;
  /** Response body bytes received from the destination. */
  readonly destinationBytes: number;
  /** Status the destination answered (0 when it did not). */
  readonly status: number;
  /** For a TLS target: what the handshake with the destination showed (also when it failed); else null. */
  readonly upstreamTls: UpstreamTlsInfo | null;
}

export interface HttpForwarder {
  /**
   * Send `requestHead` (complete, scrubbed, origin-form) and the exchange's body to the target; relay the answer
   * to the client. Resolves when the exchange is over or failed; on failure before any answer byte, the caller
   * answers (502/504).
   */
  forward(exchange: Http1Exchange, requestHead: string, target: ForwardTarget): Promise<ForwardResult>;
  /** Idle pooled sockets now (for tests and metrics). */
  readonly idleSockets: number;
  close(): void;
}

const EMPTY = Buffer.alloc(0);

type AttemptResult = Omit<ForwardResult, 'upstreamTls'> & { retry: boolean };

/**
 * One upstream socket for its whole life. Its listeners are attached once, when it is dialled, and hand each
 * event to the exchange in progress (`attempt`) or, while the socket waits in the pool, act on it themselves:
 * no listener added or removed, no timer re-armed per request (issue 9: that churn — ~15 listeners and four
 * socket timeouts a request — was ~3 % of the proxy's CPU in a keep-alive profile). The socket's inactivity timeout is the response timeout throughout; idle sockets are aged out
 * by the pool's sweep (`idleSince`).
 */
class Upstream {
  attempt: Attempt | null = null;
  /** Date.now() when it went into the pool; 0 while in use. */
  idleSince = 0;
  pooled = false;

  constructor(
    readonly socket: net.Socket,
    readonly key: string,
    onClose: (upstream: Upstream) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.attempt !== null) this.attempt.onData(chunk);
      else socket.destroy(); // bytes on an idle socket: the destination broke framing
    });
    socket.on('end', () => {
      if (this.attempt !== null) this.attempt.onEnd();
      else socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.attempt !== null) this.attempt.onError(err);
      else socket.destroy();
    });
    socket.on('timeout', () => {
      // While pooled, the sweep decides (its own age limit); a timeout only matters to an exchange.
      if (this.attempt !== null) this.attempt.onTimeout();
    });
    socket.on('drain', () => this.attempt?.exchange.resumeBody());
    socket.once('close', () => {
      this.attempt?.onClosed();
      onClose(this);
    });
  }
}

/** Pooled sockets of one destination; LIFO so the warmest socket is reused and the rest age out (oldest first). */
type Pool = Upstream[];

/**
 * One request on one upstream socket: writes the request head and body, parses the answer's head, relays the
 * answer with its own framing, and settles once (`finish`).
 */
class Attempt {
  private buf: Buffer = EMPTY;
  private head: ResponseHead | null = null;
  private bodyBytes = 0;
  private remaining = 0;
  private framer: ChunkedFramer | null = null;
  /** HTTP/1.0 client and a chunked answer: relay the payload only, end by closing. */
  private dechunk = false;
  private received = false;
  private requestSent: boolean;
  private done = false;
  private readonly onClientDrain = (): void => {
    this.upstream.socket.resume();
  };
  private readonly onClientClose = (): void => {
    if (this.done || this.exchange.finished) return;
    this.settle(false);
    this.upstream.socket.destroy();
    this.resolve({ error: new EgressError('CLIENT_ABORTED', 'client closed the connection'), midResponse: this.exchange.headersSent, destinationBytes: this.bodyBytes, status: this.head?.status ?? 0, retry: false });
  };

  constructor(
    private readonly upstream: Upstream,
    private readonly reused: boolean,
    readonly exchange: Http1Exchange,
    private readonly ctx: { readonly maxHead: number; readonly responseTimeoutMs: number; readonly release: (upstream: Upstream) => void },
    private readonly resolve: (result: AttemptResult) => void,
  ) {
    this.requestSent = exchange.head.framing.kind === 'none' || exchange.bodyComplete;
  }

  start(requestHead: string): void {
    const { exchange } = this;
    const socket = this.upstream.socket;
    this.upstream.attempt = this;
    exchange.socket.on('drain', this.onClientDrain);
    exchange.socket.on('close', this.onClientClose);
    socket.resume();
    socket.write(requestHead);
    if (exchange.head.framing.kind !== 'none' && !exchange.bodyComplete) {
      exchange.startBody(
        // After the answer (e.g. an early 413) the socket is gone: the rest of the body is dropped.
        (chunk) => this.done || socket.write(chunk),
        () => {
          this.requestSent = true;
        },
        (err) => this.fail(new EgressError('BAD_REQUEST', `malformed request body: ${err.message}`)),
      );
    } else if (exchange.head.framing.kind !== 'none') {
      exchange.startBody((chunk) => this.done || socket.write(chunk), () => undefined, () => undefined);
      this.requestSent = true;
    }
  }

  /** Detach from the upstream socket and the client (once). */
  private settle(reusable: boolean): void {
    this.done = true;
    this.upstream.attempt = null;
    this.exchange.socket.removeListener('drain', this.onClientDrain);
    this.exchange.socket.removeListener('close', this.onClientClose);
    if (reusable) this.ctx.release(this.upstream);
    else this.upstream.socket.destroy();
  }

  private finish(error: EgressError | null, reusable: boolean, retry = false): void {
    if (this.done) return;
    this.settle(reusable && error === null && this.requestSent);
    this.resolve({ error, midResponse: error !== null && this.exchange.headersSent, destinationBytes: this.bodyBytes, status: this.head?.status ?? 0, retry });
  }

  private fail(error: EgressError): void {
    if (this.exchange.headersSent) {
      // The client has part of the answer: it must see the cut, not a short "complete" response.
      this.exchange.destroy();
      this.finish(new EgressError('UPSTREAM_ABORTED', error.message, { cause: error }), false);
    } else {
      this.finish(error, false, this.reused && !this.received && this.exchange.head.framing.kind === 'none');
    }
  }

  /** Relay the answer's body bytes in data[start…]. */
  private relayBody(data: Buffer, start: number): void {
    const head = this.head;
    if (head === null || this.done) return;
    let end = -1;
    const framer = this.framer;
    if (framer !== null) {
      try {
        end = framer.push(data, start);
      } catch (err) {
        this.fail(new EgressError('UPSTREAM_ABORTED', `upstream sent a malformed chunked body: ${(err as Error).message}`));
        return;
      }
    } else if (head.framing.kind === 'length') {
      const n = Math.min(this.remaining, data.length - start);
      this.remaining -= n;
      end = this.remaining === 0 ? start + n : -1;
    }
    const slice = end === -1 ? (start === 0 ? data : data.subarray(start)) : data.subarray(start, end);
    if (framer === null) this.bodyBytes += slice.length;
    if (end !== -1) {
      // Bytes after the end of the answer: the destination broke framing; never reuse that socket. Nor one
      // whose trailers said the connection ends (`Connection: close` trailer).
      const clean = end === data.length && (framer === null || !framer.closeConnection);
      if (framer !== null) this.bodyBytes = framer.payloadBytes;
      this.exchange.end(this.dechunk || slice.length === 0 ? undefined : slice);
      this.finish(null, clean && head.keepAlive);
      return;
    }
    if (!this.dechunk && slice.length > 0 && !this.exchange.write(slice)) this.upstream.socket.pause();
  }

  private onHead(h: ResponseHead, rest: Buffer): void {
    this.head = h;
    const framing = h.framing;
    const clientMinor = this.exchange.head.versionMinor;
    const close = this.exchange.closeAfter || framing.kind === 'close' || (framing.kind === 'chunked' && clientMinor === 0);
    this.exchange.statusCode = h.status;
    // Head and the body bytes that came with it leave in one write (writev) instead of two syscalls.
    const client = this.exchange.socket;
    client.cork();
    try {
      this.relayHead(h, close, clientMinor, rest);
    } finally {
      client.uncork();
    }
  }

  private relayHead(h: ResponseHead, close: boolean, clientMinor: number, rest: Buffer): void {
    const { exchange } = this;
    const framing = h.framing;
    exchange.write(responseHead(h, close, framing.kind === 'chunked' && clientMinor === 0));
    if (close) exchange.markClose();
    switch (framing.kind) {
      case 'none':
        exchange.end();
        this.finish(null, h.keepAlive && rest.length === 0);
        return;
      case 'length':
        this.remaining = framing.length;
        if (this.remaining === 0) {
          exchange.end();
          this.finish(null, h.keepAlive && rest.length === 0);
          return;
        }
        break;
      case 'chunked':
        this.dechunk = clientMinor === 0;
        this.framer = new ChunkedFramer(
          this.dechunk
            ? {
                message: 'response',
                onData: (b, s, e) => {
                  if (!exchange.write(b.subarray(s, e))) this.upstream.socket.pause();
                },
              }
            : { message: 'response' },
        );
        break;
      case 'close':
        break;
    }
    if (rest.length > 0) this.relayBody(rest, 0);
  }

  onData(chunk: Buffer): void {
    this.received = true;
    if (this.head !== null) {
      this.relayBody(chunk, 0);
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    // 1xx answers come before the final one (RFC 9110 §15.2); relay them to HTTP/1.1 clients.
    for (;;) {
      const r = parseResponseHead(this.buf, 0, this.ctx.maxHead, this.exchange.head.method);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'invalid') {
        this.fail(new EgressError('UPSTREAM_CONNECT_FAILED', `upstream sent a malformed response (${r.error.code}: ${r.error.message})`));
        return;
      }
      const h = r.head;
      const rest = this.buf.subarray(h.headBytes);
      if (h.status >= 100 && h.status < 200) {
        if (h.status === 101) {
          this.fail(new EgressError('UPSTREAM_CONNECT_FAILED', 'upstream switched protocols without being asked'));
          return;
        }
        if (this.exchange.head.versionMinor === 1) this.exchange.socket.write(this.buf.subarray(0, h.headBytes));
        this.buf = rest;
        if (this.buf.length === 0) return;
        continue;
      }
      this.buf = EMPTY;
      this.onHead(h, rest);
      return;
    }
  }

  /** The destination closed its side (or the socket closed). */
  onEnd(): void {
    if (this.done) return;
    const head = this.head;
    if (head !== null && head.framing.kind === 'close') {
      this.exchange.end();
      this.finish(null, false);
      return;
    }
    this.fail(new EgressError(head === null ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_ABORTED', head === null ? 'upstream closed the connection without answering' : 'the destination closed the connection mid-response'));
  }

  /** The socket closed without an end or an error first (destroyed from elsewhere): the answer is incomplete. */
  onClosed(): void {
    if (this.done) return;
    this.fail(new EgressError(this.head === null ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_ABORTED', 'the upstream connection closed'));
  }

  onError(err: NodeJS.ErrnoException): void {
    this.fail(new EgressError(this.head === null ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_ABORTED', `upstream error: ${err.code ?? err.message}`, { cause: err }));
  }

  onTimeout(): void {
    const ms = this.ctx.responseTimeoutMs;
    this.fail(new EgressError('UPSTREAM_TIMEOUT', this.head === null ? `no response within ${ms} ms` : `the destination stalled for ${ms} ms mid-response`));
  }
}

export function createHttpForwarder(opts: ForwardOptions): HttpForwarder {
  const maxIdle = opts.maxIdlePerHost ?? 64;
  const maxTotal = opts.maxTotalSockets ?? Infinity;
  const idleMs = opts.idleSocketMs ?? 30_000;
  const maxHead = opts.maxResponseHeaderBytes ?? 64 * 1024;
  const pools = new Map<string, Pool>();
  let idleCount = 0;
  let openCount = 0;
  let closed = false;
  /** Ages out pooled sockets: armed for the oldest one's time while any is pooled, not per request. */
  let sweeper: NodeJS.Timeout | null = null;

  const unpool = (upstream: Upstream): void => {
    if (!upstream.pooled) return;
    upstream.pooled = false;
    idleCount--;
    const pool = pools.get(upstream.key);
    const i = pool === undefined ? -1 : pool.indexOf(upstream);
    if (pool !== undefined && i !== -1) {
      pool.splice(i, 1);
      if (pool.length === 0) pools.delete(upstream.key);
    }
  };

  /** Close the sockets pooled for idleMs or longer; then wait for the next one to come of age (or stop). */
  const sweep = (): void => {
    sweeper = null;
    const now = Date.now();
    let next = Infinity;
    for (const pool of [...pools.values()]) {
      // Oldest first (pushed in order, reused from the end): stop at the first socket used recently enough.
      while (pool.length > 0 && (pool[0] as Upstream).idleSince <= now - idleMs) {
        const upstream = pool[0] as Upstream;
        unpool(upstream);
        upstream.socket.destroy();
      }
      if (pool.length > 0) next = Math.min(next, (pool[0] as Upstream).idleSince + idleMs);
    }
    if (next !== Infinity) armSweep(next - now);
  };
  const armSweep = (ms: number): void => {
    sweeper = setTimeout(sweep, Math.max(1, ms));
    sweeper.unref();
  };

  const onClose = (upstream: Upstream): void => {
    unpool(upstream);
    openCount--;
  };

  const takeIdle = (key: string): Upstream | null => {
    const pool = pools.get(key);
    while (pool !== undefined && pool.length > 0) {
      const upstream = pool.pop() as Upstream;
      upstream.pooled = false;
      idleCount--;
      if (pool.length === 0) pools.delete(key);
      if (!upstream.socket.destroyed && upstream.socket.readyState === 'open') {
        upstream.idleSince = 0;
        return upstream;
      }
      upstream.socket.destroy();
    }
    return null;
  };

  const release = (upstream: Upstream): void => {
    const socket = upstream.socket;
    let pool = pools.get(upstream.key);
    if (closed || socket.destroyed || (pool !== undefined && pool.length >= maxIdle)) {
      socket.destroy();
      return;
    }
    if (pool === undefined) {
      pool = [];
      pools.set(upstream.key, pool);
    }
    pool.push(upstream);
    upstream.pooled = true;
    upstream.idleSince = Date.now();
    idleCount++;
    // A pooled socket the destination closes, or sends bytes on, leaves the pool (Upstream's listeners).
    socket.resume();
    if (sweeper === null) armSweep(idleMs);
  };

  const ctx = { maxHead, responseTimeoutMs: opts.responseTimeoutMs, release };

  const dial = async (target: ForwardTarget, key: string): Promise<Upstream> => {
    if (openCount >= maxTotal) throw new EgressError('UPSTREAM_CONNECT_FAILED', `upstream connection limit (${maxTotal}) reached`);
    openCount++;
    let socket: net.Socket;
    try {
      socket = await dialUpstream(target.ip, target.port, opts.connectTimeoutMs);
      if (target.tls !== undefined) {
        if (opts.trust === undefined) {
          socket.destroy();
          throw new EgressError('INTERNAL', 'a TLS destination without upstream trust roots');
        }
        socket = await connectUpstreamTls(socket, target.tls, opts.trust, opts.connectTimeoutMs);
      }
    } catch (err) {
      openCount--;
      throw err;
    }
    socket.setTimeout(opts.responseTimeoutMs);
    return new Upstream(socket, key, onClose);
  };

  /** One attempt on one socket. `reused`: a pooled socket, which may have been closed by the destination meanwhile. */
  const exchangeOn = (upstream: Upstream, reused: boolean, exchange: Http1Exchange, requestHead: string): Promise<AttemptResult> =>
    new Promise((resolve) => new Attempt(upstream, reused, exchange, ctx, resolve).start(requestHead));

  return {
    async forward(exchange, requestHead, target) {
      const key = target.tls === undefined ? `${target.ip}|${target.port}` : `${target.ip}|${target.port}|tls|${target.tls.servername ?? ''}|${target.tls.checkName}`;
      for (let attempt = 0; ; attempt++) {
        let upstream = attempt === 0 ? takeIdle(key) : null;
        const reused = upstream !== null;
        if (upstream === null) {
          try {
            upstream = await dial(target, key);
          } catch (err) {
            return { error: err as EgressError, midResponse: false, destinationBytes: 0, status: 0, upstreamTls: err instanceof UpstreamTlsError ? err.info : null };
          }
          if (exchange.socket.destroyed) {
            upstream.socket.destroy();
            return { error: new EgressError('CLIENT_ABORTED', 'client closed the connection'), midResponse: false, destinationBytes: 0, status: 0, upstreamTls: null };
          }
        }
        const result = await exchangeOn(upstream, reused, exchange, requestHead);
        // A pooled socket the destination had just closed: retry once on a fresh one (RFC 9112 §9.3.1, only
        // for requests without a body, before any byte of an answer).
        if (result.retry && attempt === 0) continue;
        return { error: result.error, midResponse: result.midResponse, destinationBytes: result.destinationBytes, status: result.status, upstreamTls: target.tls === undefined ? null : (upstreamTlsInfo(upstream.socket) ?? null) };
      }
    },
    get idleSockets() {
      return idleCount;
    },
    close() {
      closed = true;
      if (sweeper !== null) clearTimeout(sweeper);
      sweeper = null;
      for (const pool of [...pools.values()]) {
        for (const upstream of [...pool]) {
          upstream.pooled = false;
          upstream.socket.destroy();
        }
      }
      pools.clear();
      idleCount = 0;
    },
  };
}
