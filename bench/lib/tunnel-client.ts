/**
 * CONNECT load generators: bulk throughput over one tunnel, and new tunnels per second. `via: null`
 * connects straight to the destination, so the direct baseline runs the very same code.
 */
import type { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Endpoint } from './proc.js';

/** Wait for one event with a deadline; an 'error' (or 'close' first) rejects. */
export function waitFor<T extends unknown[]>(emitter: EventEmitter, event: string, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      emitter.off('error', onError);
      emitter.off('close', onClose);
    };
    const onEvent = (...args: unknown[]): void => {
      cleanup();
      resolve(args as T);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`connection closed while waiting for ${what}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    emitter.on(event, onEvent);
    emitter.once('error', onError);
    if (event !== 'close') emitter.once('close', onClose);
  });
}

/**
 * A TCP connection to `target`, through `via` with CONNECT when given. Resolves once bytes can flow to
 * the destination (after the proxy's 200).
 */
export async function openTunnel(via: Endpoint | null, target: Endpoint, timeoutMs: number): Promise<net.Socket> {
  const first = via ?? target;
  const socket = net.connect({ host: first.host, port: first.port, noDelay: true });
  // Errors also end in 'close', which every wait below watches; without a listener one would crash the bench.
  socket.on('error', () => undefined);
  try {
    await waitFor(socket, 'connect', timeoutMs, 'TCP connect');
    if (via === null) return socket;
    const authority = `${target.host}:${target.port}`;
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    let head: Buffer = Buffer.alloc(0);
    for (let reads = 0; reads < 16; reads++) {
      const [chunk] = await waitFor<[Buffer]>(socket, 'data', timeoutMs, 'the CONNECT response');
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) continue;
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'));
      if (status?.[1] !== '200') throw new Error(`CONNECT refused: ${head.subarray(0, end).toString('latin1').split('\r\n')[0] ?? ''}`);
      // Neither proxy sends tunnel bytes before the client speaks; anything here would be a bug.
      if (end + 4 !== head.length) throw new Error('unexpected bytes after the CONNECT response');
      socket.pause();
      return socket;
    }
    throw new Error('CONNECT response head too long');
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/**
 * A real ClientHello (Node's OpenSSL, with SNI and ALPN) captured without any network: node:tls writes
 * its first flight into a Duplex that just records it.
 */
export async function captureClientHello(servername: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const wire = new Duplex({
    read() {
      // never answers: only the first flight is wanted
    },
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  const client = tls.connect({ socket: wire, servername, ALPNProtocols: ['h2', 'http/1.1'] });
  client.on('error', () => undefined);
  for (let i = 0; i < 50 && chunks.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  client.destroy();
  wire.destroy();
  const hello = Buffer.concat(chunks);
  if (hello.length < 6 || hello[0] !== 0x16 || hello[5] !== 0x01) throw new Error('could not capture a ClientHello from node:tls');
  return hello;
}

export interface BulkOptions {
  readonly via: Endpoint | null;
  /** The sink: discards, acknowledges each frame with one byte (see origin-server.ts). */
  readonly sink: Endpoint;
  /** Sent first (a ClientHello), so the proxy's observation sees what a TLS tunnel would show it. */
  readonly preamble: Buffer | null;
  readonly maxBytes: number;
  readonly maxMs: number;
  readonly chunkBytes?: number;
  /** Frame size: the time limit is checked between frames. */
  readonly frameBytes?: number;
}

export interface BulkResult {
  readonly bytes: number;
  readonly seconds: number;
  /** 10^6 bytes per second. */
  readonly mbPerSec: number;
}

/**
 * One tunnel, one direction: frames of `frameBytes` until maxBytes or maxMs, then wait until the sink has
 * acknowledged every frame.
 */
export async function bulkTransfer(opts: BulkOptions): Promise<BulkResult> {
  const socket = await openTunnel(opts.via, opts.sink, 5000);
  try {
    // Random bytes: nothing on the path may profit from compressible data.
    const chunk = randomBytes(opts.chunkBytes ?? 64 * 1024);
    const chunksPerFrame = Math.max(1, Math.round((opts.frameBytes ?? 16 * 1024 * 1024) / chunk.length));
    const frameHeader = Buffer.alloc(4);
    frameHeader.writeUInt32BE(chunksPerFrame * chunk.length);
    let frames = 0;
    let acked = 0;
    let allAcked: (() => void) | null = null;
    socket.on('data', (acks: Buffer) => {
      acked += acks.length;
      if (acked >= frames && allAcked !== null) allAcked();
    });
    socket.resume();

    const started = process.hrtime.bigint();
    const deadline = Date.now() + opts.maxMs;
    let sent = 0;
    if (opts.preamble !== null) {
      socket.write(opts.preamble);
      sent += opts.preamble.length;
    }
    while (sent < opts.maxBytes && Date.now() < deadline) {
      frames++;
      socket.write(frameHeader);
      sent += frameHeader.length;
      for (let i = 0; i < chunksPerFrame; i++) {
        sent += chunk.length;
        if (!socket.write(chunk)) await waitFor(socket, 'drain', 10_000, 'drain');
      }
    }
    await new Promise<void>((resolve, reject) => {
      if (acked >= frames) return resolve();
      const finish = (err: Error | null): void => {
        clearTimeout(timer);
        allAcked = null;
        socket.off('close', onClose);
        if (err === null) resolve();
        else reject(err);
      };
      const onClose = (): void => finish(new Error(`the tunnel closed after ${acked} of ${frames} frames were acknowledged`));
      const timer = setTimeout(() => finish(new Error(`${acked} of ${frames} frames acknowledged after 30 s`)), 30_000);
      allAcked = () => finish(null);
      socket.once('close', onClose);
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { bytes: sent, seconds, mbPerSec: sent / 1e6 / seconds };
  } finally {
    socket.destroy();
  }
}

export interface RateOptions {
  readonly via: Endpoint | null;
  /** Answers the first bytes with one byte, then closes. */
  readonly echo: Endpoint;
  readonly hello: Buffer;
  readonly concurrency: number;
  readonly durationMs: number;
  /** Hard cap on tunnels, whatever the speed (bounds sockets in TIME_WAIT). */
  readonly maxTunnels: number;
}

export interface RateResult {
  readonly tunnels: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly seconds: number;
  readonly perSec: number;
  /** Per tunnel: TCP connect to the first byte back from the destination. */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * New tunnels per second: each of `concurrency` loops opens a tunnel, sends the ClientHello, waits for
 * the destination's byte, closes, and starts over — until the time or the count runs out.
 */
export async function tunnelRate(opts: RateOptions): Promise<RateResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let started = 0;
  const deadline = Date.now() + opts.durationMs;
  const t0 = process.hrtime.bigint();

  const once = async (): Promise<void> => {
    const begin = process.hrtime.bigint();
    const socket = await openTunnel(opts.via, opts.echo, 5000);
    try {
      const reply = waitFor<[Buffer]>(socket, 'data', 5000, "the destination's reply");
      socket.resume();
      socket.write(opts.hello);
      await reply;
      latencies.push(Number(process.hrtime.bigint() - begin) / 1e6);
    } finally {
      socket.destroy();
    }
  };
  const loop = async (): Promise<void> => {
    while (Date.now() < deadline && started < opts.maxTunnels) {
      started++;
      try {
        await once();
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
        // A failing target must not turn the loop into a busy spin.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { tunnels: latencies.length, errors, firstError, seconds, perSec: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

export interface BulkReceiveOptions {
  readonly via: Endpoint | null;
  /** The source: sends N bytes for every 4-byte big-endian N it receives (see origin-server.ts). */
  readonly source: Endpoint;
  /** Sent first (a ClientHello), so the proxy's observation sees what a TLS tunnel would show it. */
  readonly preamble: Buffer | null;
  readonly maxBytes: number;
  readonly maxMs: number;
  /** Bytes asked for at a time (default 16 MiB): the time limit is checked as each one arrives. */
  readonly frameBytes?: number;
  /** Frames asked for ahead (default 2), so the pipe never runs dry while the next request travels. */
  readonly framesAhead?: number;
}

/**
 * One tunnel, the other direction (destination → client): ask the source for frames, keeping
 * `framesAhead` outstanding, until maxBytes have been asked for or maxMs have passed; the clock stops at
 * the last byte of the last frame. The client only counts what arrives.
 */
export async function bulkReceive(opts: BulkReceiveOptions): Promise<BulkResult> {
  if (!(opts.maxBytes > 0 && opts.maxMs > 0)) throw new Error('bulkReceive: maxBytes and maxMs must be positive');
  const socket = await openTunnel(opts.via, opts.source, 5000);
  try {
    const frameBytes = opts.frameBytes ?? 16 * 1024 * 1024;
    const framesAhead = Math.max(1, opts.framesAhead ?? 2);
    const request = Buffer.alloc(4);
    request.writeUInt32BE(frameBytes);
    let asked = 0;
    let received = 0;
    const deadline = Date.now() + opts.maxMs;
    const askMore = (): void => {
      // Bounded: at most framesAhead frames are asked for per call.
      while (asked < received + framesAhead * frameBytes && asked < opts.maxBytes && Date.now() < deadline) {
        asked += frameBytes;
        socket.write(request);
      }
    };
    const started = process.hrtime.bigint();
    const done = new Promise<void>((resolve, reject) => {
      const finish = (err: Error | null): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (err === null) resolve();
        else reject(err);
      };
      const onData = (chunk: Buffer): void => {
        received += chunk.length;
        if (received > asked) return finish(new Error(`received ${received} bytes, more than the ${asked} asked for`));
        askMore();
        if (received === asked) finish(null);
      };
      const onClose = (): void => finish(new Error(`the tunnel closed after ${received} of ${asked} bytes`));
      const timer = setTimeout(() => finish(new Error(`${received} of ${asked} bytes received after ${opts.maxMs + 30_000} ms`)), opts.maxMs + 30_000);
      socket.on('data', onData);
      socket.once('close', onClose);
    });
    socket.resume();
    if (opts.preamble !== null) socket.write(opts.preamble);
    askMore();
    await done;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { bytes: received, seconds, mbPerSec: received / 1e6 / seconds };
  } finally {
    socket.destroy();
  }
}
