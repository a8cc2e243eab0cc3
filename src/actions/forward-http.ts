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

/** Pooled sockets of one destination; LIFO so the warmest socket is reused and the rest age out. */
type Pool = net.Socket[];

export function createHttpForwarder(opts: ForwardOptions): HttpForwarder {
  const maxIdle = opts.maxIdlePerHost ?? 64;
  const maxTotal = opts.maxTotalSockets ?? Infinity;
  const idleMs = opts.idleSocketMs ?? 30_000;
  const maxHead = opts.maxResponseHeaderBytes ?? 64 * 1024;
  const pools = new Map<string, Pool>();
  let idleCount = 0;
  let openCount = 0;
  let closed = false;

  const takeIdle = (key: string): net.Socket | null => {
    const pool = pools.get(key);
    while (pool !== undefined && pool.length > 0) {
      const socket = pool.pop() as net.Socket;
      idleCount--;
      socket.removeAllListeners('close');
      socket.removeAllListeners('timeout');
      socket.removeAllListeners('data');
      if (pool.length === 0) pools.delete(key);
      if (!socket.destroyed && socket.readyState === 'open') {
        socket.setTimeout(0);
        socket.once('close', () => openCount--);
        return socket;
      }
      socket.destroy();
      openCount--;
    }
    return null;
  };

  const release = (key: string, socket: net.Socket): void => {
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('error');
    socket.removeAllListeners('timeout');
    socket.removeAllListeners('close');
    let pool = pools.get(key);
    if (closed || socket.destroyed || (pool !== undefined && pool.length >= maxIdle)) {
      socket.destroy();
      openCount--;
      return;
    }
    if (pool === undefined) {
      pool = [];
      pools.set(key, pool);
    }
    pool.push(socket);
    idleCount++;
    const forget = (): void => {
      const p = pools.get(key);
      const i = p === undefined ? -1 : p.indexOf(socket);
      if (i !== -1 && p !== undefined) {
        p.splice(i, 1);
        idleCount--;
        if (p.length === 0) pools.delete(key);
      }
      openCount--;
      socket.destroy();
    };
    // A pooled socket the destination closes, or that stays unused, leaves the pool.
    socket.once('close', forget);
    socket.on('error', () => socket.destroy());
    socket.on('data', () => socket.destroy()); // bytes on an idle socket: the destination broke framing
    socket.setTimeout(idleMs, () => socket.destroy());
    socket.resume();
  };

  const dial = async (target: ForwardTarget): Promise<net.Socket> => {
    if (openCount >= maxTotal) throw new EgressError('UPSTREAM_CONNECT_FAILED', `upstream connection limit (${maxTotal}) reached`);
    openCount++;
    try {
      let socket = await dialUpstream(target.ip, target.port, opts.connectTimeoutMs);
      if (target.tls !== undefined) {
        if (opts.trust === undefined) {
          socket.destroy();
          throw new EgressError('INTERNAL', 'a TLS destination without upstream trust roots');
        }
        socket = await connectUpstreamTls(socket, target.tls, opts.trust, opts.connectTimeoutMs);
      }
      socket.once('close', () => openCount--);
      return socket;
    } catch (err) {
      openCount--;
      throw err;
    }
  };

  /** One attempt on one socket. `reused`: a pooled socket, which may have been closed by the destination meanwhile. */
  const exchangeOn = (socket: net.Socket, reused: boolean, key: string, exchange: Http1Exchange, requestHead: string): Promise<Omit<ForwardResult, 'upstreamTls'> & { retry: boolean }> =>
    new Promise((resolve) => {
      const client = exchange.socket;
      const method = exchange.head.method;
      const clientMinor = exchange.head.versionMinor;
      let buf: Buffer = EMPTY;
      let head: ResponseHead | null = null;
      let bodyBytes = 0;
      let remaining = 0;
      let framer: ChunkedFramer | null = null;
      /** HTTP/1.0 client and a chunked answer: relay the payload only, end by closing. */
      let dechunk = false;
      let received = false;
      let requestSent = exchange.head.framing.kind === 'none' || exchange.bodyComplete;
      let done = false;

      const cleanup = (): void => {
        socket.removeListener('data', onData);
        socket.removeListener('end', onEnd);
        socket.removeListener('error', onError);
        socket.removeListener('timeout', onTimeout);
        socket.removeListener('drain', onUpstreamDrain);
        client.removeListener('drain', onClientDrain);
        client.removeListener('close', onClientClose);
        socket.setTimeout(0);
      };
      const finish = (error: EgressError | null, reusable: boolean, retry = false): void => {
        if (done) return;
        done = true;
        cleanup();
        if (reusable && error === null && requestSent) release(key, socket);
        else socket.destroy();
        resolve({ error, midResponse: error !== null && exchange.headersSent, destinationBytes: bodyBytes, status: head?.status ?? 0, retry });
      };
      const fail = (error: EgressError): void => {
        if (exchange.headersSent) {
          // The client has part of the answer: it must see the cut, not a short "complete" response.
          exchange.destroy();
          finish(new EgressError('UPSTREAM_ABORTED', error.message, { cause: error }), false);
        } else {
          finish(error, false, reused && !received && exchange.head.framing.kind === 'none');
        }
      };

      /** Relay the answer's body bytes in buf[start…]. */
      const relayBody = (data: Buffer, start: number): void => {
        if (head === null) return;
        let end = -1;
        if (framer !== null) {
          try {
            end = framer.push(data, start);
          } catch (err) {
            fail(new EgressError('UPSTREAM_ABORTED', `upstream sent a malformed chunked body: ${(err as Error).message}`));
            return;
          }
        } else if (head.framing.kind === 'length') {
          const n = Math.min(remaining, data.length - start);
          remaining -= n;
          end = remaining === 0 ? start + n : -1;
        }
        const slice = end === -1 ? (start === 0 ? data : data.subarray(start)) : data.subarray(start, end);
        if (framer === null) bodyBytes += slice.length;
        if (end !== -1) {
          // Bytes after the end of the answer: the destination broke framing; never reuse that socket. Nor one
          // whose trailers said the connection ends (`Connection: close` trailer).
          const clean = end === data.length && (framer === null || !framer.closeConnection);
          if (framer !== null) bodyBytes = framer.payloadBytes;
          exchange.end(dechunk || slice.length === 0 ? undefined : slice);
          finish(null, clean && head.keepAlive);
          return;
        }
        if (!dechunk && slice.length > 0 && !exchange.write(slice)) socket.pause();
      };

      const onHead = (h: ResponseHead, rest: Buffer): void => {
        head = h;
        const framing = h.framing;
        const close = exchange.closeAfter || framing.kind === 'close' || (framing.kind === 'chunked' && clientMinor === 0);
        exchange.statusCode = h.status;
        // Head and the body bytes that came with it leave in one write (writev) instead of two syscalls.
        client.cork();
        try {
          relayHead(h, framing, close, rest);
        } finally {
          client.uncork();
        }
      };
      const relayHead = (h: ResponseHead, framing: ResponseHead['framing'], close: boolean, rest: Buffer): void => {
        exchange.write(responseHead(h, close, framing.kind === 'chunked' && clientMinor === 0));
        if (close) exchange.markClose();
        switch (framing.kind) {
          case 'none':
            exchange.end();
            finish(null, h.keepAlive && rest.length === 0);
            return;
          case 'length':
            remaining = framing.length;
            if (remaining === 0) {
              exchange.end();
              finish(null, h.keepAlive && rest.length === 0);
              return;
            }
            break;
          case 'chunked':
            dechunk = clientMinor === 0;
            framer = new ChunkedFramer(
              dechunk
                ? {
                    message: 'response',
                    onData: (b, s, e) => {
                      if (!exchange.write(b.subarray(s, e))) socket.pause();
                    },
                  }
                : { message: 'response' },
            );
            break;
          case 'close':
            break;
        }
        if (rest.length > 0) relayBody(rest, 0);
      };

      const onData = (chunk: Buffer): void => {
        received = true;
        if (head !== null) {
          relayBody(chunk, 0);
          return;
        }
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        // 1xx answers come before the final one (RFC 9110 §15.2); relay them to HTTP/1.1 clients.
        for (;;) {
          const r = parseResponseHead(buf, 0, maxHead, method);
          if (r.kind === 'incomplete') return;
          if (r.kind === 'invalid') {
            fail(new EgressError('UPSTREAM_CONNECT_FAILED', `upstream sent a malformed response (${r.error.code}: ${r.error.message})`));
            return;
          }
          const h = r.head;
          const rest = buf.subarray(h.headBytes);
          if (h.status >= 100 && h.status < 200) {
            if (h.status === 101) {
              fail(new EgressError('UPSTREAM_CONNECT_FAILED', 'upstream switched protocols without being asked'));
              return;
            }
            if (clientMinor === 1) exchange.socket.write(buf.subarray(0, h.headBytes));
            buf = rest;
            if (buf.length === 0) return;
            continue;
          }
          buf = EMPTY;
          onHead(h, rest);
          return;
        }
      };
      const onEnd = (): void => {
        if (head !== null && head.framing.kind === 'close') {
          exchange.end();
          finish(null, false);
          return;
        }
        fail(new EgressError(head === null ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_ABORTED', head === null ? 'upstream closed the connection without answering' : 'the destination closed the connection mid-response'));
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        fail(new EgressError(head === null ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_ABORTED', `upstream error: ${err.code ?? err.message}`, { cause: err }));
      };
      const onTimeout = (): void => {
        fail(new EgressError('UPSTREAM_TIMEOUT', head === null ? `no response within ${opts.responseTimeoutMs} ms` : `the destination stalled for ${opts.responseTimeoutMs} ms mid-response`));
      };
      const onUpstreamDrain = (): void => exchange.resumeBody();
      const onClientDrain = (): void => {
        socket.resume();
      };
      const onClientClose = (): void => {
        if (done) return;
        if (exchange.finished) return;
        done = true;
        cleanup();
        socket.destroy();
        resolve({ error: new EgressError('CLIENT_ABORTED', 'client closed the connection'), midResponse: exchange.headersSent, destinationBytes: bodyBytes, status: head?.status ?? 0, retry: false });
      };

      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onError);
      socket.on('drain', onUpstreamDrain);
      socket.setTimeout(opts.responseTimeoutMs, onTimeout);
      client.on('drain', onClientDrain);
      client.on('close', onClientClose);
      socket.resume();
      socket.write(requestHead);
      if (exchange.head.framing.kind !== 'none' && !exchange.bodyComplete) {
        exchange.startBody(
          // After the answer (e.g. an early 413) the socket is gone: the rest of the body is dropped.
          (chunk) => done || socket.write(chunk),
          () => {
            requestSent = true;
          },
          (err) => fail(new EgressError('BAD_REQUEST', `malformed request body: ${err.message}`)),
        );
      } else if (exchange.head.framing.kind !== 'none') {
        exchange.startBody((chunk) => done || socket.write(chunk), () => undefined, () => undefined);
        requestSent = true;
      }
    });

  return {
    async forward(exchange, requestHead, target) {
      const key = target.tls === undefined ? `${target.ip}|${target.port}` : `${target.ip}|${target.port}|tls|${target.tls.servername ?? ''}|${target.tls.checkName}`;
      for (let attempt = 0; ; attempt++) {
        let socket = attempt === 0 ? takeIdle(key) : null;
        const reused = socket !== null;
        if (socket === null) {
          try {
            socket = await dial(target);
          } catch (err) {
            return { error: err as EgressError, midResponse: false, destinationBytes: 0, status: 0, upstreamTls: err instanceof UpstreamTlsError ? err.info : null };
          }
          if (exchange.socket.destroyed) {
            socket.destroy();
            return { error: new EgressError('CLIENT_ABORTED', 'client closed the connection'), midResponse: false, destinationBytes: 0, status: 0, upstreamTls: null };
          }
        }
        const result = await exchangeOn(socket, reused, key, exchange, requestHead);
        // A pooled socket the destination had just closed: retry once on a fresh one (RFC 9112 §9.3.1, only
        // for requests without a body, before any byte of an answer).
        if (result.retry && attempt === 0) continue;
        return { error: result.error, midResponse: result.midResponse, destinationBytes: result.destinationBytes, status: result.status, upstreamTls: target.tls === undefined ? null : (upstreamTlsInfo(socket) ?? null) };
      }
    },
    get idleSockets() {
      return idleCount;
    },
    close() {
      closed = true;
      for (const pool of pools.values()) for (const socket of pool) socket.destroy();
      pools.clear();
      idleCount = 0;
    },
  };
}
