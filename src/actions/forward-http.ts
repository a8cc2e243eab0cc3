import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { EgressError, type ErrorCode } from '../errors.js';
import { scrubResponseHeaders } from './headers.js';

export interface ForwardOptions {
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** Upper bound on pooled + active sockets per destination address. */
  maxSocketsPerHost?: number;
  /** Upper bound on upstream sockets across all destinations (default: no bound beyond the flow cap). */
  maxTotalSockets?: number;
  /** A pooled keep-alive socket unused this long is closed (default 30 s). */
  idleSocketMs?: number;
}

export interface ForwardTarget {
  /** The resolved address to dial (never a name: no second lookup). */
  readonly ip: string;
  readonly port: number;
}

export interface ForwardResult {
  /** null on success; otherwise why the upstream exchange failed. */
  readonly error: EgressError | null;
  /** true when an error happened after the response headers had been sent (the client was cut off). */
  readonly midResponse: boolean;
  /** Response body bytes received from the destination. */
  readonly destinationBytes: number;
}

export interface HttpForwarder {
  /** Forward a scrubbed request to the target; resolves when the exchange is over (or failed). */
  forward(req: http.IncomingMessage, res: http.ServerResponse, target: ForwardTarget): Promise<ForwardResult>;
  close(): void;
}

/** A keep-alive agent whose dials time out (http.Agent has no connect timeout of its own). */
class DialingAgent extends http.Agent {
  private readonly connectTimeoutMs: number;

  constructor(connectTimeoutMs: number, maxSockets: number, maxTotalSockets: number, idleSocketMs: number) {
    // Bounded pool: idle keep-alive sockets are closed after idleSocketMs (the agent applies `timeout` to free
    // sockets and destroys them when it fires), at most 64 stay pooled per destination, and maxTotalSockets
    // caps the whole pool so many destinations cannot exhaust file descriptors.
    super({ keepAlive: true, maxSockets, maxFreeSockets: 64, maxTotalSockets, timeout: idleSocketMs, scheduling: 'lifo' });
    this.connectTimeoutMs = connectTimeoutMs;
  }

  override createConnection(options: net.NetConnectOpts): Duplex {
    const socket = net.connect(options);
    const timer = setTimeout(() => {
      socket.destroy(new EgressError('UPSTREAM_TIMEOUT', `connect timed out after ${this.connectTimeoutMs} ms`));
    }, this.connectTimeoutMs);
    timer.unref();
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }
}

/** Map a socket/client error to our catalogue. */
function classifyUpstreamError(err: NodeJS.ErrnoException, elapsedMs: number, responseTimeoutMs: number): EgressError {
  if (err instanceof EgressError) return err;
  let code: ErrorCode = 'UPSTREAM_CONNECT_FAILED';
  let message = `upstream error: ${err.code ?? err.message}`;
  if (err.code === 'ECONNRESET' && err.message === 'socket hang up' && elapsedMs >= responseTimeoutMs - 10) {
    // http-proxy's proxyTimeout destroys the request, which surfaces as a hang-up after the timeout.
    code = 'UPSTREAM_TIMEOUT';
    message = `no response within ${responseTimeoutMs} ms`;
  } else if (err.code === 'ETIMEDOUT') {
    code = 'UPSTREAM_TIMEOUT';
    message = 'upstream timed out';
  } else if (err.code === 'ECONNREFUSED') {
    message = 'upstream refused the connection';
  } else if (typeof err.code === 'string' && err.code.startsWith('HPE_')) {
    message = `upstream sent a malformed response (${err.code})`;
  }
  return new EgressError(code, message, { cause: err });
}

/**
 * Plain-HTTP forwarding with http-proxy-3 (streaming both ways, keep-alive to upstreams). Headers are
 * scrubbed by the caller before this runs; responses are scrubbed here (proxyRes runs before headers
 * are copied).
 */
export function createHttpForwarder(opts: ForwardOptions): HttpForwarder {
  const agent = new DialingAgent(opts.connectTimeoutMs, opts.maxSocketsPerHost ?? 512, opts.maxTotalSockets ?? Infinity, opts.idleSocketMs ?? 30_000);
  const proxy = createProxyServer({
    agent,
    xfwd: false,
    changeOrigin: false,
    proxyTimeout: opts.responseTimeoutMs,
  });
  /** Per forwarded request: the destination's byte count and whether it died mid-body. */
  const exchanges = new WeakMap<http.IncomingMessage, { bytes: number; aborted: boolean }>();
  proxy.on('proxyRes', (proxyRes, req, res) => {
    const exchange = exchanges.get(req);
    if (exchange !== undefined) {
      proxyRes.on('data', (chunk: Buffer) => (exchange.bytes += chunk.length));
      proxyRes.once('close', () => {
        if (proxyRes.complete) return;
        // The destination died mid-body: pipe() would leave the client waiting forever; cut it off.
        exchange.aborted = true;
        res.destroy();
      });
    }
    scrubResponseHeaders(proxyRes.headers);
    // The upstream's Connection header is hop-by-hop; ours follows the client's wish (Node tracks it).
    if (req.httpVersion === '1.1') proxyRes.headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
  });
  // Without an error listener a refused upstream would crash the process (DEPENDENCIES.md).
  proxy.on('error', () => undefined);

  return {
    forward(req, res, target) {
      return new Promise<ForwardResult>((resolve) => {
        const started = Date.now();
        const exchange = { bytes: 0, aborted: false };
        exchanges.set(req, exchange);
        let settled = false;
        const settle = (error: EgressError | null, midResponse: boolean): void => {
          if (settled) return;
          settled = true;
          resolve({ error, midResponse, destinationBytes: exchange.bytes });
        };
        res.once('close', () => {
          if (res.writableFinished) return settle(null, false);
          if (exchange.aborted) return settle(new EgressError('UPSTREAM_ABORTED', 'the destination closed the connection mid-response'), true);
          // Give a pending upstream error callback the chance to name the cause first.
          setImmediate(() => settle(new EgressError('CLIENT_ABORTED', 'client closed the connection'), res.headersSent));
        });
        proxy.web(
          req,
          res,
          { target: { protocol: 'http:', host: target.ip, port: target.port } },
          (err) => {
            const error = classifyUpstreamError(err as NodeJS.ErrnoException, Date.now() - started, opts.responseTimeoutMs);
            if (res.headersSent) {
              // The upstream died mid-body: the client must see the cut, not a short "complete" response.
              res.destroy();
              settle(new EgressError('UPSTREAM_ABORTED', error.message, { cause: err }), true);
              return;
            }
            settle(error, false);
          },
        );
      });
    },
    close() {
      agent.destroy();
      proxy.close();
    },
  };
}
