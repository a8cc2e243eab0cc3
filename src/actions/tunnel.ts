import net from 'node:net';
import { EgressError } from '../errors.js';
import { readClientHello, type ReadResult } from '../parsers/client-hello.js';

/** Dial the resolved address (never a name) with a connect timeout. */
export function dialUpstream(ip: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: ip, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new EgressError('UPSTREAM_TIMEOUT', `connect to ${ip}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const refused = err.code === 'ECONNREFUSED';
      reject(
        new EgressError(
          err.code === 'ETIMEDOUT' ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_CONNECT_FAILED',
          refused ? `${ip}:${port} refused the connection` : `connect to ${ip}:${port} failed: ${err.code ?? err.message}`,
          { cause: err },
        ),
      );
    });
  });
}

export interface SpliceResult {
  /** Bytes the client sent through the tunnel (including any bytes replayed from the peek). */
  readonly sourceBytes: number;
  /** Bytes the destination sent back. */
  readonly destinationBytes: number;
  readonly error: EgressError | null;
}

/**
 * Relay bytes both ways until either side is done. Half-closes pass through (a FIN from one side ends
 * the other's write side); an error or the idle timeout tears both down. Byte counts come from the
 * sockets' own counters, so the relay itself adds no per-chunk work.
 */
export function splice(client: net.Socket, upstream: net.Socket, idleMs: number, replay: Buffer | null): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: EgressError | null = null;
    let closed = 0;
    const baseWritten = upstream.bytesWritten;
    const onClose = (): void => {
      if (++closed < 2) return;
      resolve({
        sourceBytes: upstream.bytesWritten - baseWritten,
        destinationBytes: upstream.bytesRead,
        error,
      });
    };
    const fail = (err: EgressError): void => {
      error ??= err;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', (err: NodeJS.ErrnoException) => fail(new EgressError('CLIENT_ABORTED', `client error: ${err.code ?? err.message}`)));
    upstream.on('error', (err: NodeJS.ErrnoException) => fail(new EgressError('UPSTREAM_ABORTED', `upstream error: ${err.code ?? err.message}`)));
    client.setTimeout(idleMs, () => fail(new EgressError('CLIENT_TIMEOUT', `tunnel idle for ${idleMs} ms`)));
    upstream.setTimeout(idleMs, () => fail(new EgressError('CLIENT_TIMEOUT', `tunnel idle for ${idleMs} ms`)));
    // When one side is gone, pipe() unpipes and pauses the other, which would then never read its peer's
    // FIN and stay half-open until the idle timeout. Keep reading it (nothing more can be relayed) so its
    // end is seen, and finish our side of it.
    const drainOther = (other: net.Socket): void => {
      if (other.destroyed) return;
      other.end();
      other.resume();
    };
    client.once('close', () => {
      drainOther(upstream);
      onClose();
    });
    upstream.once('close', () => {
      drainOther(client);
      onClose();
    });
    if (replay !== null && replay.length > 0) upstream.write(replay);
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

export type PeekResult =
  | ReadResult
  | { readonly kind: 'timeout' }
  | { readonly kind: 'closed' };

export interface PeekOptions {
  readonly timeoutMs: number;
}

/**
 * Collect the client's first bytes until they hold a complete ClientHello (which may span several TLS
 * records and TCP segments), prove not to be TLS, or the time cap passes. The bytes are returned so they
 * can be replayed verbatim to the destination; nothing is forwarded meanwhile. The parser is pure: this
 * function only buffers (STYLE principle 5). The size cap lives in readClientHello.
 */
export function peekClientHello(socket: net.Socket, head: Buffer, opts: PeekOptions): Promise<{ bytes: Buffer; result: PeekResult }> {
  return new Promise((resolve) => {
    let bytes = head;
    let done = false;
    const finish = (result: PeekResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      resolve({ bytes, result });
    };
    const check = (): void => {
      if (bytes.length === 0) return;
      const result = readClientHello(bytes);
      if (result.kind !== 'incomplete') finish(result);
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      check();
    };
    const onEnd = (): void => finish({ kind: 'closed' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), opts.timeoutMs);
    check();
    if (done) return;
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onEnd);
    socket.resume();
  });
}

/**
 * Observe the ClientHello of a tunnel that is already relaying (the decision did not need it): a second
 * 'data' listener beside the pipe sees the first chunks, so observation adds no delay to the relay.
 * Gives up after `maxChunks` chunks or once the hello is complete or proven not TLS.
 */
export function tapClientHello(socket: net.Socket, head: Buffer, onResult: (result: ReadResult) => void, maxChunks = 16): void {
  let bytes = head;
  let chunks = 0;
  const evaluate = (): boolean => {
    if (bytes.length === 0) return false;
    const result = readClientHello(bytes);
    if (result.kind === 'incomplete') return false;
    onResult(result);
    return true;
  };
  if (evaluate()) return;
  const onData = (chunk: Buffer): void => {
    bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
    if (evaluate() || ++chunks >= maxChunks) socket.off('data', onData);
  };
  socket.on('data', onData);
}
