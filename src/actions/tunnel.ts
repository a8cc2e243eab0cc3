/**
 * CONNECT tunnels: dial the destination, peek or tap the client's ClientHello, and relay bytes both ways.
 *
 * Why the relay is not `pipe()`: a piped socket reads at most 64 KiB per syscall into a freshly allocated
 * buffer and sends every chunk through the Readable/Writable machinery ('data' event, pipe bookkeeping,
 * push/unpipe checks). Bulk tunnels are bound by exactly that per-chunk cost (issue 9 item 3). The relay
 * here reads each socket into a reused buffer through Node's `onread` option (`net.connect`, "onread",
 * https://nodejs.org/api/net.html#socketconnectoptions-connectlistener) and writes a view of it to the
 * other side, so a bulk chunk costs one read syscall of up to 1 MiB, one write syscall and no allocation.
 *
 * The one hazard of a reused buffer: a write that the kernel did not take at once keeps pointing into
 * the buffer, and the next read would overwrite bytes still waiting to be sent. The relay therefore
 * stops reading whenever the other side has bytes pending (`writableLength > 0` right after the write)
 * and starts again from the write callback once all is flushed. That is ordinary TCP backpressure, at
 * the granularity of one chunk.
 *
 * Memory: an idle tunnel must not hold a megabyte per direction. Every relayed socket starts on one
 * small read buffer shared by the whole process (safe because each read is copied out before the next
 * read of any socket can run); a socket whose read fills that buffer borrows a bulk buffer from a bounded
 * pool and gives it back as soon as a read comes in small. Past the pool's bound, sockets keep copying.
 */
import net from 'node:net';
import tls from 'node:tls';
import { EgressError } from '../errors.js';
import { readClientHello, type ReadResult } from '../parsers/client-hello.js';

/** Read size of a socket in bulk: large reads are what makes the relay cheap per byte (bench/tunnel.bench.ts). */
const BULK_READ_BYTES = 1024 * 1024;
/** By default at most this many bulk buffers exist at once (64 MiB); past the bound a tunnel relays by copying. */
const DEFAULT_MAX_BULK_BUFFERS = 64;
/** Free bulk buffers kept for the next bulk socket; the rest are left to the garbage collector. */
const MAX_FREE_BULK_BUFFERS = 8;
/** The shared read buffer; a read that fills it means more is waiting, so the socket switches to bulk. */
const SHARED_READ_BYTES = 64 * 1024;
/** A bulk socket whose read brings less than this goes back to the shared buffer (not bulk anymore). */
const BULK_EXIT_BELOW = 16 * 1024;
/** The idle timeout is checked this many times per period: it fires after between 1 and 1.25 periods. */
const IDLE_CHECKS_PER_PERIOD = 4;

/**
 * One buffer that every relayed socket reads into while its traffic is small. Node delivers each read
 * synchronously to its callback and no other socket can read before the callback returns, and the
 * callback copies the bytes out before writing them, so sharing is safe.
 */
const sharedReadBuffer = Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
const freeBulkBuffers: Buffer[] = [];
let bulkBuffersLent = 0;
let maxBulkBuffers = DEFAULT_MAX_BULK_BUFFERS;

/**
 * Bound the memory of bulk relaying: at most `count` buffers of 1 MiB lent at once (0: every tunnel copies
 * through the small shared buffer). Buffers already lent stay until their tunnel returns them. Returns the
 * previous bound.
 */
export function limitRelayBuffers(count: number): number {
  const previous = maxBulkBuffers;
  maxBulkBuffers = Math.max(0, Math.floor(count));
  freeBulkBuffers.length = Math.min(freeBulkBuffers.length, maxBulkBuffers);
  return previous;
}

/** A bulk buffer from the pool, or null when the bound is reached. */
function lendBulkBuffer(): Buffer | null {
  if (bulkBuffersLent >= maxBulkBuffers) return null;
  const free = freeBulkBuffers.pop();
  if (free !== undefined) {
    bulkBuffersLent++;
    return free;
  }
  bulkBuffersLent++;
  // Uninitialised memory is fine: only bytes[0, nread) that the kernel just wrote are ever looked at.
  return Buffer.allocUnsafeSlow(BULK_READ_BYTES);
}

/** Only for a buffer that no pending write and no socket's next read refers to any more. */
function returnBulkBuffer(buffer: Buffer): void {
  bulkBuffersLent--;
  if (freeBulkBuffers.length < Math.min(MAX_FREE_BULK_BUFFERS, maxBulkBuffers)) freeBulkBuffers.push(buffer);
}

/** Bulk buffers currently lent to sockets and kept free (for tests and the benchmark: no leak). */
export function relayBufferStats(): { readonly lent: number; readonly free: number } {
  return { lent: bulkBuffersLent, free: freeBulkBuffers.length };
}

/**
 * Sees the client's bytes as they are relayed, in order. The chunk may be a view of a reused buffer: it
 * is valid only during the call, so copy what you keep. Return true once you have seen enough.
 */
export type ChunkObserver = (chunk: Buffer) => boolean;

/**
 * One direction of a tunnel: reads `from`, writes `to`. Created when `from` is dialled (its `onread`
 * callbacks must exist before the connection does) or when splice() starts; `to` is set by splice().
 */
class Relay {
  /** Set right after net.connect() returns for a dialled socket: no callback runs before that. */
  from!: net.Socket;
  to: net.Socket | null = null;
  tunnel: Tunnel | null = null;
  /** Where the next read lands: the shared buffer, or a lent bulk buffer when `lent`. */
  buffer: Buffer = sharedReadBuffer;
  lent = false;
  lastRead = 0;
  /** Reading is stopped until `to` has flushed what it was given. */
  waiting = false;
  /** `to` is closed: keep reading `from` (discarding) so its FIN is still seen. */
  peerGone = false;
  /** Reads go through `onread` (own buffer); false: ordinary 'data' events. */
  ownsReads = false;
  observe: ChunkObserver | null = null;

  constructor(from: net.Socket | null) {
    if (from !== null) this.from = from;
  }

  /** Node's onread callback: `buffer[0, nread)` holds new bytes; returning false stops reading. */
  readonly onRead = (nread: number, buffer: Buffer): boolean => {
    this.lastRead = nread;
    const to = this.to;
    if (to === null || this.peerGone) return true;
    const view = nread === buffer.length ? buffer : buffer.subarray(0, nread);
    if (this.observe !== null && this.observe(view)) this.observe = null;
    if (this.lent) {
      to.write(view, this.onFlushed);
      // All bytes went to the kernel synchronously: nothing refers to the buffer, read on into it.
      if (to.writableLength === 0) return true;
    } else if (to.write(Buffer.copyBytesFrom(view), this.onFlushed)) {
      return true;
    }
    this.waiting = true;
    return false;
  };

  /** Node's onread buffer generator: called after every read (and once at connect) for the next one. */
  readonly nextBuffer = (): Buffer => {
    if (this.lent) {
      // Give the bulk buffer back only when no pending write points into it.
      if (!this.waiting && this.lastRead < BULK_EXIT_BELOW) {
        returnBulkBuffer(this.buffer);
        this.buffer = sharedReadBuffer;
        this.lent = false;
      }
    } else if (this.lastRead === SHARED_READ_BYTES) {
      const bulk = lendBulkBuffer();
      if (bulk !== null) {
        this.buffer = bulk;
        this.lent = true;
      }
    }
    return this.buffer;
  };

  /** A socket without `onread`: chunks are Node's own fresh buffers, written as they are. */
  readonly onData = (chunk: Buffer): void => {
    const to = this.to;
    if (to === null || this.peerGone) return;
    if (this.observe !== null && this.observe(chunk)) this.observe = null;
    if (!to.write(chunk, this.onFlushed)) {
      this.waiting = true;
      this.from.pause();
    }
  };

  /** Write callback of every relayed chunk: read again once `to` has nothing pending. */
  readonly onFlushed = (): void => {
    if (this.waiting && this.to !== null && this.to.writableLength === 0) {
      this.waiting = false;
      this.from.resume();
    }
  };

  /** FIN from `from`: pass the half-close on once everything before it is written (Writable.end queues). */
  readonly onEnd = (): void => {
    if (this.to !== null && !this.to.destroyed) this.to.end();
  };

  readonly onError = (err: NodeJS.ErrnoException): void => {
    const tunnel = this.tunnel;
    if (tunnel === null) return;
    const fromClient = this.from === tunnel.client;
    tunnel.fail(
      new EgressError(fromClient ? 'CLIENT_ABORTED' : 'UPSTREAM_ABORTED', `${fromClient ? 'client' : 'upstream'} error: ${err.code ?? err.message}`),
    );
  };

  readonly onClose = (): void => {
    this.tunnel?.sideClosed(this);
  };

  /** `to` is gone: nothing can be relayed any more, but `from` must still be read until its FIN. */
  peerClosed(): void {
    this.peerGone = true;
    if (this.from.destroyed) return;
    this.from.end();
    this.waiting = false;
    this.from.resume();
  }

  /** After both sockets closed: no read or write can refer to the bulk buffer any more. */
  release(): void {
    if (!this.lent) return;
    returnBulkBuffer(this.buffer);
    this.buffer = sharedReadBuffer;
    this.lent = false;
  }
}

/** Relays of sockets dialled by dialUpstream({ relay: true }), for splice() to find. */
const dialledRelays = new WeakMap<net.Socket, Relay>();

export interface DialOptions {
  /**
   * Dial for splice(): the socket reads into a reused buffer (Node `onread`), starts paused, and is
   * half-open capable (`allowHalfOpen`) so a destination's FIN passes to the client without closing
   * the client's direction. Such a socket emits no 'data' events: hand it to splice() and nothing else.
   */
  readonly relay?: boolean;
}

/** Dial the resolved address (never a name) with a connect timeout. */
export function dialUpstream(ip: string, port: number, timeoutMs: number, opts: DialOptions = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    if (opts.relay === true) {
      const relay = new Relay(null);
      socket = net.connect({
        host: ip,
        port,
        noDelay: true,
        allowHalfOpen: true,
        onread: { buffer: relay.nextBuffer, callback: relay.onRead },
      });
      relay.from = socket;
      // Paused before the connection exists, so no byte is read (and discarded) before splice() starts.
      socket.pause();
      dialledRelays.set(socket, relay);
    } else {
      socket = net.connect({ host: ip, port, noDelay: true });
    }
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

// ---- reading an accepted socket into our own buffer ------------------------------------------------------

/** The symbols under which net.Socket keeps its `onread` state (lib/net.js: kBuffer, kBufferCb, kBufferGen). */
interface OnreadKeys {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

/**
 * SECURITY/ROBUSTNESS EXCEPTION: Node offers `onread` only to sockets it creates for `net.connect`; an
 * accepted socket (http.Server CONNECT hand-off, net.Server) always reads through the stream machinery.
 * To give the client side the same reads, we set the very state that `new net.Socket({ onread })`
 * sets: the three symbol-keyed properties (found here by identity on a probe socket, never by name)
 * and the handle's `useUserBuffer()` (what lib/net.js initSocketHandle() calls). If any piece is not
 * there (another Node version), `onreadKeys` is null and accepted sockets keep ordinary reads.
 */
const onreadKeys: OnreadKeys | null = (() => {
  try {
    const fixed = Buffer.alloc(1);
    const generator = (): Buffer => fixed;
    const callback = (): boolean => true;
    // Sockets without a handle: nothing is opened, nothing is read. (@types/node 20 lacks `onread` on the
    // constructor's options, which Node has accepted since v12: lib/net.js `new Socket(options)`.)
    const withBuffer = new net.Socket({ onread: { buffer: fixed, callback } } as net.SocketConstructorOpts);
    const withGenerator = new net.Socket({ onread: { buffer: generator, callback } } as net.SocketConstructorOpts);
    const keyOf = (socket: net.Socket, value: unknown): symbol | undefined =>
      Object.getOwnPropertySymbols(socket).find((key) => (socket as unknown as Record<symbol, unknown>)[key] === value);
    const buffer = keyOf(withBuffer, fixed);
    const cb = keyOf(withBuffer, callback);
    const gen = keyOf(withGenerator, generator);
    withBuffer.destroy();
    withGenerator.destroy();
    return buffer !== undefined && cb !== undefined && gen !== undefined ? { buffer, callback: cb, generator: gen } : null;
  } catch {
    return null;
  }
})();

interface StreamHandle {
  useUserBuffer?: unknown;
}

/**
 * Switch an open socket to reading into `relay`'s buffers. Returns the bytes the socket had already
 * buffered (to be relayed first, in order), or null when the socket cannot be switched (then nothing
 * was changed). Synchronous: no read can happen between draining the buffer and installing ours.
 */
function adoptReads(socket: net.Socket, relay: Relay): Buffer[] | null {
  if (onreadKeys === null || socket instanceof tls.TLSSocket || socket.destroyed) return null;
  const own = socket as unknown as Record<symbol, unknown> & { _handle?: StreamHandle | null };
  const handle = own._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return null;
  if (own[onreadKeys.buffer] !== undefined && own[onreadKeys.buffer] !== null) return null;
  // Someone else reads this socket's 'data' (e.g. tapClientHello): they would see nothing after the switch.
  if (socket.listenerCount('data') > 0 || socket.listenerCount('readable') > 0) return null;
  const buffered: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) buffered.push(chunk);
  own[onreadKeys.callback] = relay.onRead;
  own[onreadKeys.generator] = relay.nextBuffer;
  own[onreadKeys.buffer] = relay.buffer;
  (handle.useUserBuffer as (this: StreamHandle, buffer: Buffer) => void).call(handle, relay.buffer);
  return buffered;
}

// ---- splice ----------------------------------------------------------------------------------------------

export interface SpliceResult {
  /** Bytes the client sent through the tunnel (including any bytes replayed from the peek). */
  readonly sourceBytes: number;
  /** Bytes the destination sent back. */
  readonly destinationBytes: number;
  readonly error: EgressError | null;
}

export interface SpliceOptions {
  /** Sees the client's bytes after `replay` (see ChunkObserver), e.g. clientHelloObserver(). */
  readonly observe?: ChunkObserver | null;
  /** Sees the destination's first bytes (see ChunkObserver), e.g. the server's TLS flight for JA3S/JA4S. */
  readonly observeDown?: ChunkObserver | null;
  /**
   * Read sockets that were not dialled with `{ relay: true }` (the client; an upstream dialled without
   * it) into the relay's own buffers too, through Node internals (default true; see adoptReads). false
   * keeps Node's stream reads for them: the switch if a Node version ever misbehaves.
   */
  readonly adoptReads?: boolean;
}

class Tunnel {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly up: Relay;
  readonly down: Relay;
  private readonly idleMs: number;
  private readonly baseWritten: number;
  private readonly resolve: (result: SpliceResult) => void;
  private error: EgressError | null = null;
  private closed = 0;
  private idleChecks = 0;
  private lastSeen = -1;
  private readonly timer: NodeJS.Timeout;

  constructor(client: net.Socket, upstream: net.Socket, up: Relay, down: Relay, idleMs: number, resolve: (result: SpliceResult) => void) {
    this.client = client;
    this.upstream = upstream;
    this.up = up;
    this.down = down;
    this.idleMs = idleMs;
    this.baseWritten = upstream.bytesWritten;
    this.resolve = resolve;
    // One coarse timer per tunnel instead of a socket timeout that every read and write re-arms.
    this.timer = setInterval(this.checkIdle, Math.max(1, Math.floor(idleMs / IDLE_CHECKS_PER_PERIOD)));
    this.timer.unref();
  }

  /** Activity = a byte read on either side (the sockets' own counters: nothing is counted per chunk). */
  private readonly checkIdle = (): void => {
    const seen = this.client.bytesRead + this.upstream.bytesRead;
    if (seen !== this.lastSeen) {
      this.lastSeen = seen;
      this.idleChecks = 0;
    } else if (++this.idleChecks >= IDLE_CHECKS_PER_PERIOD) {
      this.fail(new EgressError('CLIENT_TIMEOUT', `tunnel idle for ${this.idleMs} ms`));
    }
  };

  fail(err: EgressError): void {
    this.error ??= err;
    this.client.destroy();
    this.upstream.destroy();
  }

  /** `relay.from` closed: the other direction's destination is gone. */
  sideClosed(relay: Relay): void {
    (relay === this.up ? this.down : this.up).peerClosed();
    if (++this.closed < 2) return;
    clearInterval(this.timer);
    this.up.release();
    this.down.release();
    this.resolve({
      sourceBytes: this.upstream.bytesWritten - this.baseWritten,
      destinationBytes: this.upstream.bytesRead,
      error: this.error,
    });
  }
}

/** Hook `relay` to its sockets and start reading `from`. */
function startRelay(relay: Relay, to: net.Socket, tunnel: Tunnel, first: readonly Buffer[]): void {
  relay.to = to;
  relay.tunnel = tunnel;
  const from = relay.from;
  from.on('error', relay.onError);
  // A socket that ended or closed before the splice began (client gone during the dial) still counts.
  if (from.readableEnded) process.nextTick(relay.onEnd);
  else from.once('end', relay.onEnd);
  if (from.closed) process.nextTick(relay.onClose);
  else from.once('close', relay.onClose);
  for (const chunk of first) {
    if (relay.observe !== null && relay.observe(chunk)) relay.observe = null;
    to.write(chunk);
  }
  if (!relay.ownsReads) from.on('data', relay.onData);
  // A 'data' listener alone does not restart a socket that was paused explicitly (as peekClientHello does).
  from.resume();
}

/**
 * Relay bytes both ways until both sides are done. Half-closes pass through (a FIN from one side ends
 * the other's write side); an error or the idle timeout tears both down; when one side is gone the other
 * is still read (and discarded) so its FIN is seen. Byte counts come from the sockets' own counters, so
 * the relay adds no per-chunk work beyond the write.
 */
export function splice(client: net.Socket, upstream: net.Socket, idleMs: number, replay: Buffer | null, opts: SpliceOptions = {}): Promise<SpliceResult> {
  return new Promise((resolve) => {
    // The destination side: dialled with onread (nothing buffered: it was paused), else adopted if possible.
    const dialled = dialledRelays.get(upstream);
    dialledRelays.delete(upstream);
    const adopt = opts.adoptReads !== false;
    const down = dialled ?? new Relay(upstream);
    const downFirst = dialled !== undefined ? [] : adopt ? adoptReads(upstream, down) : null;
    down.ownsReads = downFirst !== null;
    const up = new Relay(client);
    up.observe = opts.observe ?? null;
    down.observe = opts.observeDown ?? null;
    const upFirst = adopt ? adoptReads(client, up) : null;
    up.ownsReads = upFirst !== null;
    // The http server's socket timeout (and any other) would be re-armed by every read and write.
    client.setTimeout(0);
    upstream.setTimeout(0);
    const tunnel = new Tunnel(client, upstream, up, down, idleMs, resolve);
    if (replay !== null && replay.length > 0) upstream.write(replay);
    startRelay(up, upstream, tunnel, upFirst ?? []);
    startRelay(down, client, tunnel, downFirst ?? []);
  });
}

// ---- ClientHello -----------------------------------------------------------------------------------------

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
 * Observe the ClientHello of a tunnel that is already relaying (the decision did not need it), as a
 * splice() observer: it sees the first chunks as they pass, so observation adds no delay to the relay.
 * `head` (bytes that came with the CONNECT) is looked at first; null means it already held the answer
 * (`onResult` has been called). Gives up after `maxChunks` chunks or once the hello is complete or
 * proven not TLS. Chunks are copied, since the relay's may be views of a reused buffer.
 */
export function clientHelloObserver(head: Buffer, onResult: (result: ReadResult) => void, maxChunks = 16): ChunkObserver | null {
  let bytes = head;
  let chunks = 0;
  const evaluate = (): boolean => {
    if (bytes.length === 0) return false;
    const result = readClientHello(bytes);
    if (result.kind === 'incomplete') return false;
    onResult(result);
    return true;
  };
  if (evaluate()) return null;
  return (chunk: Buffer): boolean => {
    bytes = Buffer.concat([bytes, chunk]);
    return evaluate() || ++chunks >= maxChunks;
  };
}

/**
 * The same observation with a second 'data' listener beside the relay. Kept for callers that do not
 * pass clientHelloObserver() to splice(); a socket with a 'data' listener keeps Node's stream reads
 * (slower for bulk uploads), since the relay's own reads would hide the bytes from the listener.
 */
export function tapClientHello(socket: net.Socket, head: Buffer, onResult: (result: ReadResult) => void, maxChunks = 16): void {
  const observe = clientHelloObserver(head, onResult, maxChunks);
  if (observe === null) return;
  const onData = (chunk: Buffer): void => {
    if (observe(chunk)) socket.off('data', onData);
  };
  socket.on('data', onData);
}
