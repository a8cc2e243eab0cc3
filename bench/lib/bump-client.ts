/**
 * The load generator of the interception benchmark (bench/bump.bench.ts): HTTPS through a CONNECT proxy the way
 * a bumped client sees it — CONNECT, TLS with the proxy's minted certificate (trusting the proxy's CA), then
 * HTTP/1.1 GETs. Written against raw TLS sockets with a minimal response reader instead of node:https, so the
 * generator spends as little CPU per request as it can: it shares CPU 0 with the origin, and must not be what
 * limits the proxy on CPU 1 (the bench reports its CPU to show it is not).
 *
 * A response counts only when complete: status 200 and exactly Content-Length body bytes (RFC 9112 §6.3 item 6;
 * the origin never sends chunked bodies, so a response without Content-Length is an error here).
 * Every loop is bounded by a deadline and a count; every wait has a timeout.
 */
import tls from 'node:tls';
import type { Endpoint } from './proc.js';
import { openTunnel, waitFor } from './tunnel-client.js';

const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
/** Searched in the head from its first CRLF on, so only a header line can match (RFC 9110 §5.1: case-insensitive). */
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n/i;
/** A response head longer than this is broken, not slow. */
const MAX_HEAD = 16 * 1024;
/** After a failed request: a failing target must not turn a loop into a busy spin. */
const RETRY_PAUSE_MS = 20;

export interface HttpsTarget {
  /** The proxy; null talks to the origin directly (the bench's "direct" row). */
  readonly via: Endpoint | null;
  /** Where the tunnel goes: the CONNECT authority (an IP literal, see the bench's header comment). */
  readonly origin: Endpoint;
  /** Trust: the proxy's CA for bumped runs, the origin's CA for spliced and direct ones. Built once per run. */
  readonly trust: tls.SecureContext;
  readonly path: string;
}

export function trustOnly(caPem: string): tls.SecureContext {
  // `ca` replaces Node's bundled roots: only the given CA is trusted.
  return tls.createSecureContext({ ca: caPem });
}

export function requestBytes(servername: string, path: string, close: boolean): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${servername}\r\nUser-Agent: egress-bench/1\r\nAccept: */*\r\n${close ? 'Connection: close\r\n' : ''}\r\n`, 'latin1');
}

/** CONNECT (unless direct), then a TLS handshake for `servername`, ALPN http/1.1 only, verified against `trust`. */
export async function openHttps(target: HttpsTarget, servername: string, timeoutMs: number): Promise<tls.TLSSocket> {
  const raw = await openTunnel(target.via, target.origin, timeoutMs);
  const socket = tls.connect({ socket: raw, servername, secureContext: target.trust, ALPNProtocols: ['http/1.1'] });
  // Errors also end in 'close', which every wait watches; without a listener one would crash the bench.
  socket.on('error', () => undefined);
  try {
    await waitFor(socket, 'secureConnect', timeoutMs, 'the TLS handshake');
    return socket;
  } catch (err) {
    socket.destroy();
    raw.destroy();
    throw err;
  }
}

export interface Response {
  readonly status: number;
  /** process.hrtime.bigint() when the first byte of the response arrived. */
  readonly firstByteNs: bigint;
}

interface Pending {
  readonly resolve: (r: Response) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  firstByteNs: bigint | null;
}

/**
 * One request at a time on a TLS socket (no pipelining): `send` writes a request and resolves with the complete
 * response. Bytes that arrive while nothing is pending, or beyond the response, fail the connection.
 */
export class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private bodyEnd = -1;
  private status = 0;
  private pending: Pending | null = null;
  private dead: Error | null = null;

  constructor(private readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: Error) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the connection closed before the response was complete')));
  }

  send(request: Buffer, timeoutMs: number): Promise<Response> {
    if (this.dead !== null) return Promise.reject(this.dead);
    if (this.pending !== null) return Promise.reject(new Error('a request is already in flight'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs);
      this.pending = { resolve, reject, timer, firstByteNs: null };
      this.socket.write(request);
    });
  }

  private onData(chunk: Buffer): void {
    const p = this.pending;
    if (p === null) return this.fail(new Error('bytes arrived with no request in flight'));
    p.firstByteNs ??= process.hrtime.bigint();
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.bodyEnd < 0) {
      const headEnd = this.buf.indexOf(HEAD_END);
      if (headEnd < 0) {
        if (this.buf.length > MAX_HEAD) this.fail(new Error(`no end of the response head in ${MAX_HEAD} bytes`));
        return;
      }
      const head = this.buf.toString('latin1', 0, headEnd + 2);
      const status = STATUS_LINE.exec(head);
      const length = CONTENT_LENGTH.exec(head);
      if (status === null) return this.fail(new Error(`not an HTTP/1.x response: ${JSON.stringify(head.slice(0, 40))}`));
      if (length === null) return this.fail(new Error(`response without Content-Length: ${head.split('\r\n')[0] ?? ''}`));
      this.status = Number(status[1]);
      this.bodyEnd = headEnd + HEAD_END.length + Number(length[1]);
    }
    if (this.buf.length < this.bodyEnd) return;
    if (this.buf.length > this.bodyEnd) return this.fail(new Error('bytes beyond the response (Content-Length)'));
    const firstByteNs = p.firstByteNs;
    const status = this.status;
    this.buf = Buffer.alloc(0);
    this.bodyEnd = -1;
    this.pending = null;
    clearTimeout(p.timer);
    p.resolve({ status, firstByteNs });
  }

  private fail(err: Error): void {
    this.dead ??= err;
    const p = this.pending;
    this.pending = null;
    if (p !== null) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.socket.destroy();
  }
}

export interface LoadResult {
  /** Complete 200 responses. */
  readonly requests: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly seconds: number;
  readonly perSec: number;
  /** Per request (keep-alive: write → complete response; new tunnel: CONNECT → complete response). */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** The p-quantile of sorted values (nearest rank below); NaN for none. */
export function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

class Tally {
  readonly latencies: number[] = [];
  errors = 0;
  firstError: string | null = null;
  private readonly t0 = process.hrtime.bigint();

  error(err: unknown): void {
    this.errors++;
    this.firstError ??= err instanceof Error ? err.message : String(err);
  }

  result(): LoadResult {
    const seconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const requests = sorted.length;
    return { requests, errors: this.errors, firstError: this.firstError, seconds, perSec: requests / seconds, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) };
  }
}

const msSince = (start: bigint, end: bigint): number => Number(end - start) / 1e6;

export interface KeepAliveOptions {
  readonly target: HttpsTarget;
  readonly servername: string;
  readonly connections: number;
  readonly durationMs: number;
  /** Hard cap on requests over all connections, whatever the speed. */
  readonly maxRequests: number;
  readonly timeoutMs: number;
}

/**
 * `connections` keep-alive connections, each sending its next GET as soon as the last response is complete,
 * until the deadline or the cap. The connections are opened (and the handshakes done) before the clock starts:
 * this measures requests inside established bumped tunnels. A connection that fails is reopened (counted).
 */
export async function keepAliveRun(opts: KeepAliveOptions): Promise<LoadResult> {
  const request = requestBytes(opts.servername, opts.target.path, false);
  const open = async (): Promise<{ socket: tls.TLSSocket; reader: ResponseReader }> => {
    const socket = await openHttps(opts.target, opts.servername, opts.timeoutMs);
    return { socket, reader: new ResponseReader(socket) };
  };
  const conns = await Promise.all(Array.from({ length: opts.connections }, open));
  const tally = new Tally();
  const deadline = Date.now() + opts.durationMs;
  let started = 0;
  const loop = async (index: number): Promise<void> => {
    let conn = conns[index] ?? null;
    while (Date.now() < deadline && started < opts.maxRequests) {
      try {
        conn ??= await open();
        started++;
        const begin = process.hrtime.bigint();
        const res = await conn.reader.send(request, opts.timeoutMs);
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        tally.latencies.push(msSince(begin, process.hrtime.bigint()));
      } catch (err) {
        tally.error(err);
        conn?.socket.destroy();
        conn = null;
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
    conn?.socket.destroy();
  };
  await Promise.all(conns.map((_, i) => loop(i)));
  return tally.result();
}

export interface NewTunnelOptions {
  readonly target: HttpsTarget;
  readonly servername: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  readonly timeoutMs: number;
}

/** `concurrency` loops of CONNECT → full TLS handshake (no session resumption) → one GET (`Connection: close`) → close. */
export async function newTunnelRun(opts: NewTunnelOptions): Promise<LoadResult> {
  const request = requestBytes(opts.servername, opts.target.path, true);
  const tally = new Tally();
  const deadline = Date.now() + opts.durationMs;
  let started = 0;
  const loop = async (): Promise<void> => {
    while (Date.now() < deadline && started < opts.maxRequests) {
      started++;
      const begin = process.hrtime.bigint();
      let socket: tls.TLSSocket | null = null;
      try {
        socket = await openHttps(opts.target, opts.servername, opts.timeoutMs);
        const res = await new ResponseReader(socket).send(request, opts.timeoutMs);
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        tally.latencies.push(msSince(begin, process.hrtime.bigint()));
      } catch (err) {
        tally.error(err);
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      } finally {
        socket?.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  return tally.result();
}

export interface FirstByteOptions {
  readonly target: HttpsTarget;
  /** Each name is used exactly once, in order, by whichever loop is free. */
  readonly names: readonly string[];
  readonly concurrency: number;
  readonly timeoutMs: number;
}

export interface FirstByteResult {
  readonly names: number;
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly seconds: number;
  /** CONNECT start (TCP connect) → first byte of the HTTP response inside TLS. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** One tunnel per name (CONNECT, TLS for that SNI, one GET, close), `concurrency` at a time: first-byte latency. */
export async function firstByteRun(opts: FirstByteOptions): Promise<FirstByteResult> {
  const tally = new Tally();
  let next = 0;
  const loop = async (): Promise<void> => {
    // Bounded: each pass consumes one name.
    while (next < opts.names.length) {
      const name = opts.names[next++] as string;
      const begin = process.hrtime.bigint();
      let socket: tls.TLSSocket | null = null;
      try {
        socket = await openHttps(opts.target, name, opts.timeoutMs);
        const res = await new ResponseReader(socket).send(requestBytes(name, opts.target.path, true), opts.timeoutMs);
        if (res.status !== 200) throw new Error(`HTTP ${res.status} for ${name}`);
        tally.latencies.push(msSince(begin, res.firstByteNs));
      } catch (err) {
        tally.error(err);
      } finally {
        socket?.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  const r = tally.result();
  const sorted = [...tally.latencies].sort((a, b) => a - b);
  return { names: opts.names.length, ok: r.requests, errors: r.errors, firstError: r.firstError, seconds: r.seconds, p50Ms: r.p50Ms, p99Ms: r.p99Ms, maxMs: sorted[sorted.length - 1] ?? Number.NaN };
}
