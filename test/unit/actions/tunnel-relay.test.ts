/**
 * The CONNECT relay (src/actions/tunnel.ts splice): bytes arrive intact and in order even when the relay's
 * reused read buffers meet backpressure, half-closes pass through both ways, errors and idleness tear both
 * sides down, and the byte counts are exact. Every case runs on loopback through each read path the relay
 * can take (onread-dialled upstream, adopted sockets, plain stream reads, no bulk buffers), behind a real
 * http.Server CONNECT hand-off and behind a plain net.Server (allowHalfOpen, like the own front end).
 * The integrity cases fail if a pending write's bytes are overwritten by the next read (checked by
 * breaking the pause-on-pending and copy-from-shared rules on purpose).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  clientHelloObserver,
  dialUpstream,
  limitRelayBuffers,
  relayBufferStats,
  splice,
  tapClientHello,
  type SpliceResult,
} from '../../../src/actions/tunnel.js';
import type { ReadResult } from '../../../src/parsers/client-hello.js';

const MiB = 1024 * 1024;
const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

interface RelayMode {
  readonly name: string;
  /** Dial the destination with onread (dialUpstream relay option). */
  readonly dialRelay: boolean;
  /** Let splice() read sockets not dialled with onread (the client; a plain-dialled upstream) into its own buffers. */
  readonly adopt: boolean;
  /** Front end: http.Server CONNECT hand-off, or a plain net.Server that reads the CONNECT head itself. */
  readonly front: 'http' | 'net';
  /** limitRelayBuffers() for the test: 0 forces every read through the shared buffer and a copy. */
  readonly bulkBuffers?: number;
}

const FAST: RelayMode = { name: 'onread both ways (http front end)', dialRelay: true, adopt: true, front: 'http' };
const MODES: readonly RelayMode[] = [
  FAST,
  { name: 'onread both ways (net.Server front end)', dialRelay: true, adopt: true, front: 'net' },
  { name: 'onread down, stream reads up', dialRelay: true, adopt: false, front: 'http' },
  { name: 'plain dial, both sides adopted', dialRelay: false, adopt: true, front: 'http' },
  { name: 'plain dial, stream reads both ways', dialRelay: false, adopt: false, front: 'http' },
  { name: 'onread both ways, no bulk buffers (shared buffer + copies)', dialRelay: true, adopt: true, front: 'http', bulkBuffers: 0 },
];

interface SpliceHooks {
  /** Runs on the accepted client socket before splice (after the 200). */
  beforeSplice?: (client: net.Socket) => Promise<void> | void;
  observe?: (head: Buffer) => ReturnType<typeof clientHelloObserver>;
  tap?: (client: net.Socket, head: Buffer) => void;
}

interface RelayProxy {
  readonly port: number;
  /** One promise per CONNECT, in arrival order. */
  readonly results: Promise<SpliceResult>[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function trackSockets(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

async function closeAll(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
}

/** A CONNECT relay that does what src/listeners/proxy.ts does around splice(), and nothing else. */
async function startRelayProxy(mode: RelayMode, idleMs: number, hooks: SpliceHooks = {}): Promise<RelayProxy> {
  if (mode.bulkBuffers !== undefined) {
    const previous = limitRelayBuffers(mode.bulkBuffers);
    cleanups.push(() => void limitRelayBuffers(previous));
  }
  const results: Promise<SpliceResult>[] = [];
  const tunnel = async (client: net.Socket, authority: string, head: Buffer): Promise<SpliceResult> => {
    client.on('error', () => client.destroy());
    const port = Number(authority.split(':')[1]);
    const upstream = await dialUpstream('127.0.0.1', port, 2000, { relay: mode.dialRelay });
    client.write(ESTABLISHED);
    await hooks.beforeSplice?.(client);
    hooks.tap?.(client, head);
    return splice(client, upstream, idleMs, head, { adoptReads: mode.adopt, observe: hooks.observe?.(head) ?? null });
  };
  let server: net.Server;
  if (mode.front === 'http') {
    const h = http.createServer();
    h.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      results.push(tunnel(socket, req.url ?? '', head));
    });
    server = h;
  } else {
    // The next front end: a plain net.Server (allowHalfOpen, as http.Server has) that reads the head itself.
    server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      let got = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        got = Buffer.concat([got, chunk]);
        const end = got.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        socket.pause();
        const authority = got.subarray(0, end).toString('latin1').split(' ')[1] ?? '';
        results.push(tunnel(socket, authority, got.subarray(end + 4)));
      };
      socket.on('data', onData);
    });
  }
  const sockets = trackSockets(server);
  const port = await listen(server);
  return { port, results, close: () => closeAll(server, sockets) };
}

interface Destination {
  readonly port: number;
  /** Accepted sockets, in order. */
  readonly accepted: Promise<net.Socket>[];
  close(): Promise<void>;
}

async function startDestination(onSocket: (s: net.Socket) => void = () => undefined): Promise<Destination> {
  const accepted: Promise<net.Socket>[] = [];
  let next: ((s: net.Socket) => void) | null = null;
  const queue = (): void => {
    accepted.push(new Promise((r) => (next = r)));
  };
  queue();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => s.destroy());
    onSocket(s);
    next?.(s);
    queue();
  });
  const sockets = trackSockets(server);
  const port = await listen(server);
  return { port, accepted, close: () => closeAll(server, sockets) };
}

/** A client socket through the relay, after the 200. `early` is sent together with the CONNECT head. */
async function connectThrough(proxyPort: number, destPort: number, early: Buffer = Buffer.alloc(0)): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port: proxyPort, noDelay: true, allowHalfOpen: true });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${destPort} HTTP/1.1\r\nHost: 127.0.0.1:${destPort}\r\n\r\n`), early]));
  let got = Buffer.alloc(0);
  while (!got.includes('\r\n\r\n')) {
    const chunk = await new Promise<Buffer>((resolve, reject) => {
      socket.once('data', resolve);
      socket.once('close', () => reject(new Error('closed before the 200')));
    });
    got = Buffer.concat([got, chunk]);
  }
  socket.pause();
  const end = got.indexOf('\r\n\r\n') + 4;
  expect(got.subarray(0, end).toString('latin1')).toBe(ESTABLISHED);
  // The destination may speak first: its bytes can come in the same read as the 200.
  if (end < got.length) socket.unshift(got.subarray(end));
  return socket;
}

/** Everything a socket reads until its FIN (or close), as one buffer. */
function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
    socket.resume();
  });
}

/**
 * Hash what a socket reads until its FIN, reading slowly: after every ~`burst` bytes it stops for a few
 * milliseconds, so the relay's writes towards it go pending and its reads must stop.
 */
function slowHash(socket: net.Socket, burst: number, pauseMs: number): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let sinceStop = 0;
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      sinceStop += c.length;
      if (sinceStop >= burst) {
        sinceStop = 0;
        socket.pause();
        setTimeout(() => socket.resume(), pauseMs);
      }
    });
    socket.once('end', () => resolve({ bytes, sha: hash.digest('hex') }));
    socket.resume();
  });
}

/** Send `payload` in `chunk`-sized writes honouring backpressure, then FIN unless told not to. */
async function sendAll(socket: net.Socket, payload: Buffer, chunk: number, fin = true): Promise<void> {
  for (let at = 0; at < payload.length; at += chunk) {
    if (!socket.write(payload.subarray(at, at + chunk))) await new Promise((r) => socket.once('drain', r));
  }
  if (fin) socket.end();
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The relay hung up on `socket` (FIN or close; test sockets are half-open capable) within `ms`. */
function hungUpWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.closed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    socket.once('end', done);
    socket.once('close', done);
    socket.resume();
  });
}

describe('splice integrity under backpressure', () => {
  // 64 MiB each way at once, both receivers slow, through every combination of read paths.
  it.each(MODES)('$name: 64 MiB each way arrive byte for byte', async (mode) => {
    const up = randomBytes(64 * MiB);
    const down = randomBytes(64 * MiB);
    let destResult: Promise<{ bytes: number; sha: string }> | null = null;
    const dest = await startDestination((s) => {
      destResult = slowHash(s, 3 * MiB, 4);
      // FIN only once everything is in: a destination's half-close is its own case below.
      void Promise.all([destResult, sendAll(s, down, 1 * MiB, false)]).then(() => s.end());
    });
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000);
    cleanups.push(() => proxy.close());

    const replay = Buffer.from('replayed-first');
    const client = await connectThrough(proxy.port, dest.port, replay);
    const clientResult = slowHash(client, 2 * MiB, 5);
    let lentDuringTransfer = 0;
    const sampler = setInterval(() => (lentDuringTransfer = Math.max(lentDuringTransfer, relayBufferStats().lent)), 5);
    await sendAll(client, up, 256 * 1024);
    const [got, spliced] = await Promise.all([clientResult, proxy.results[0] as Promise<SpliceResult>]);
    clearInterval(sampler);
    const atDest = await (destResult as unknown as Promise<{ bytes: number; sha: string }>);

    expect(got).toEqual({ bytes: down.length, sha: sha(down) });
    expect(atDest).toEqual({ bytes: replay.length + up.length, sha: sha(Buffer.concat([replay, up])) });
    expect(spliced).toEqual({ sourceBytes: replay.length + up.length, destinationBytes: down.length, error: null });
    // The bulk path (reused buffers, no copies) carried the traffic whenever this mode has onread reads ...
    if (mode.bulkBuffers === 0 || (!mode.dialRelay && !mode.adopt)) expect(lentDuringTransfer).toBe(0);
    else expect(lentDuringTransfer).toBeGreaterThan(0);
    // ... and every lent buffer went back once the tunnel closed.
    expect(relayBufferStats().lent).toBe(0);
  }, 60_000);
});

describe('splice buffers', () => {
  it('never lends more bulk buffers than the bound, and tunnels past it still relay intact (by copying)', async () => {
    const previous = limitRelayBuffers(1);
    cleanups.push(() => void limitRelayBuffers(previous));
    const payloads = [randomBytes(24 * MiB), randomBytes(24 * MiB)];
    let accepted = 0;
    const dest = await startDestination((s) => {
      const payload = payloads[accepted++ % 2] as Buffer;
      void sendAll(s, payload, 1 * MiB);
    });
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(FAST, 30_000);
    cleanups.push(() => proxy.close());
    let maxLent = 0;
    const sampler = setInterval(() => (maxLent = Math.max(maxLent, relayBufferStats().lent)), 2);
    const clients = [await connectThrough(proxy.port, dest.port), await connectThrough(proxy.port, dest.port)];
    const got = await Promise.all(clients.map((c) => slowHash(c, 4 * MiB, 3)));
    clients.forEach((c) => c.end());
    await Promise.all(proxy.results);
    clearInterval(sampler);
    expect(got).toEqual(payloads.map((p) => ({ bytes: p.length, sha: sha(p) })));
    expect(maxLent).toBe(1);
    expect(relayBufferStats().lent).toBe(0);
  }, 30_000);
});

describe('splice semantics', () => {
  it.each(MODES)('$name: bytes the destination sends before the splice starts arrive once, in order', async (mode) => {
    const dest = await startDestination((s) => {
      s.write('banner;');
      setTimeout(() => s.write('later'), 120);
    });
    cleanups.push(() => dest.close());
    // The banner reaches the relay while it still decides: 50 ms between the 200 and splice().
    const proxy = await startRelayProxy(mode, 30_000, { beforeSplice: () => new Promise((r) => setTimeout(r, 50)) });
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    const got = readAll(client);
    await new Promise((r) => setTimeout(r, 200));
    ((await dest.accepted[0]) as net.Socket).end();
    expect((await got).toString()).toBe('banner;later');
    client.end();
    expect(await proxy.results[0]).toEqual({ sourceBytes: 0, destinationBytes: 12, error: null });
  });

  it.each(MODES)('$name: half-close from the client passes through; the destination can still answer', async (mode) => {
    const dest = await startDestination((s) => {
      void readAll(s).then((got) => s.end(Buffer.concat([Buffer.from('got:'), got])));
    });
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000);
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    const reply = readAll(client);
    client.end('question');
    expect((await reply).toString()).toBe('got:question');
    expect(await proxy.results[0]).toEqual({ sourceBytes: 8, destinationBytes: 12, error: null });
  });

  it.each(MODES.filter((m) => m.dialRelay))('$name: half-close from the destination passes through; the client can still send', async (mode) => {
    const dest = await startDestination((s) => {
      s.end('banner');
    });
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000);
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    expect((await readAll(client)).toString()).toBe('banner');
    const destSocket = await dest.accepted[0];
    const atDest = readAll(destSocket as net.Socket);
    client.end('after the banner');
    expect((await atDest).toString()).toBe('after the banner');
    expect(await proxy.results[0]).toEqual({ sourceBytes: 16, destinationBytes: 6, error: null });
  });

  it.each(MODES)('$name: a destination reset tears both sides down with UPSTREAM_ABORTED', async (mode) => {
    const dest = await startDestination((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000);
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    client.resume();
    client.write('trigger');
    expect(await hungUpWithin(client, 2000)).toBe(true);
    const result = await proxy.results[0];
    expect(result?.error?.code).toBe('UPSTREAM_ABORTED');
    expect(result?.sourceBytes).toBe(7);
  });

  it.each(MODES)('$name: a client reset tears both sides down with CLIENT_ABORTED', async (mode) => {
    const dest = await startDestination();
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000);
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    const destSocket = (await dest.accepted[0]) as net.Socket;
    destSocket.resume();
    client.write('x');
    await new Promise((r) => setTimeout(r, 20));
    client.resetAndDestroy();
    expect(await hungUpWithin(destSocket, 2000)).toBe(true);
    expect((await proxy.results[0])?.error?.code).toBe('CLIENT_ABORTED');
  });

  it.each(MODES)('$name: idleness closes both sides after the idle period, and traffic keeps the tunnel open', async (mode) => {
    const dest = await startDestination((s) => s.pipe(s)); // echo
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 200);
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    client.resume();
    // A byte every 80 ms for 600 ms: three idle periods pass, but never 200 ms without traffic.
    let lastWrite = 0;
    for (let i = 0; i < 8; i++) {
      client.write('.');
      lastWrite = Date.now();
      await new Promise((r) => setTimeout(r, 80));
      expect(client.closed || client.readableEnded).toBe(false);
    }
    expect(await hungUpWithin(client, 2000)).toBe(true);
    const idle = Date.now() - lastWrite;
    // Fires after 1 to 1.25 idle periods (checked every period / 4); never early. The upper bound leaves
    // room for timer delays on a loaded machine.
    expect(idle).toBeGreaterThanOrEqual(195);
    expect(idle).toBeLessThan(1500);
    const result = await proxy.results[0];
    expect(result).toEqual({ sourceBytes: 8, destinationBytes: 8, error: expect.objectContaining({ code: 'CLIENT_TIMEOUT' }) });
  });

  it.each(MODES)('$name: a destination that closes fully still lets the client FIN end the tunnel at once', async (mode) => {
    const dest = await startDestination((s) => {
      s.write('bye');
      s.destroySoon();
    });
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000);
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port);
    const got = readAll(client);
    expect((await got).toString()).toBe('bye');
    const started = Date.now();
    client.end();
    await proxy.results[0];
    // Far below the 30 s idle timeout that a relay which stopped reading the client would wait for.
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it.each(MODES)('$name: a client socket closed before the splice begins ends the tunnel at once (no hang until idle)', async (mode) => {
    // The destination answers a FIN with its own, as servers do; the relay must pass the FIN on at once.
    const dest = await startDestination((s) => {
      s.once('end', () => s.end());
      s.resume();
    });
    cleanups.push(() => dest.close());
    // As when the client errors out while the destination is dialled: splice() gets an already closed socket.
    const proxy = await startRelayProxy(mode, 30_000, {
      beforeSplice: (c) => {
        c.destroy();
        return new Promise((r) => c.once('close', r));
      },
    });
    cleanups.push(() => proxy.close());
    await connectThrough(proxy.port, dest.port);
    const started = Date.now();
    const result = await proxy.results[0];
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result?.sourceBytes).toBe(0);
  });

  it.each(MODES)('$name: replayed bytes go first, then bytes the client sent before the splice, then the rest', async (mode) => {
    const dest = await startDestination();
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000, {
      // The client's next bytes arrive (and sit in the socket's buffer) before splice() starts.
      beforeSplice: () => new Promise((r) => setTimeout(r, 50)),
    });
    cleanups.push(() => proxy.close());
    const client = await connectThrough(proxy.port, dest.port, Buffer.from('[head]'));
    client.write('[early]');
    const destSocket = (await dest.accepted[0]) as net.Socket;
    const atDest = readAll(destSocket);
    await new Promise((r) => setTimeout(r, 100));
    client.end('[late]');
    expect((await atDest).toString()).toBe('[head][early][late]');
    destSocket.end();
    expect(await proxy.results[0]).toEqual({ sourceBytes: 19, destinationBytes: 0, error: null });
  });
});

describe('observing the ClientHello of a relayed tunnel', () => {
  const hello = Buffer.from(
    (JSON.parse(
      readFileSync(fileURLToPath(new URL('../../fixtures/vectors/ja4-foxio/derived/clienthellos.jsonl', import.meta.url)), 'utf8').split('\n')[0] ?? '{}',
    ) as { record_hex: string }).record_hex,
    'hex',
  );

  async function observeThrough(mode: RelayMode, hooks: SpliceHooks, seen: ReadResult[]): Promise<void> {
    const dest = await startDestination();
    cleanups.push(() => dest.close());
    const proxy = await startRelayProxy(mode, 30_000, hooks);
    cleanups.push(() => proxy.close());
    // The first 3 bytes come with the CONNECT (head), the rest in two writes.
    const client = await connectThrough(proxy.port, dest.port, hello.subarray(0, 3));
    const destSocket = (await dest.accepted[0]) as net.Socket;
    const atDest = readAll(destSocket);
    client.write(hello.subarray(3, 40));
    await new Promise((r) => setTimeout(r, 30));
    client.end(hello.subarray(40));
    expect(sha(await atDest)).toBe(sha(hello));
    destSocket.end();
    await proxy.results[0];
    expect(seen.map((r) => r.kind)).toEqual(['complete']);
  }

  it.each(MODES)('$name: clientHelloObserver passed to splice sees the whole hello across chunks', async (mode) => {
    const seen: ReadResult[] = [];
    await observeThrough(mode, { observe: (head) => clientHelloObserver(head, (r) => seen.push(r)) }, seen);
  });

  it.each(MODES)('$name: tapClientHello (a data listener beside the relay) still works: that client side keeps stream reads', async (mode) => {
    const seen: ReadResult[] = [];
    await observeThrough(mode, { tap: (client, head) => tapClientHello(client, head, (r) => seen.push(r)) }, seen);
  });

  it('clientHelloObserver returns null when the head alone holds the hello', () => {
    const seen: ReadResult[] = [];
    expect(clientHelloObserver(hello, (r) => seen.push(r))).toBeNull();
    expect(seen.map((r) => r.kind)).toEqual(['complete']);
  });

  it('clientHelloObserver copies chunks: a reused buffer overwritten after the call does not change the result', () => {
    const seen: ReadResult[] = [];
    const observe = clientHelloObserver(Buffer.alloc(0), (r) => seen.push(r)) as (c: Buffer) => boolean;
    const reused = Buffer.alloc(hello.length);
    hello.copy(reused, 0, 0, 20);
    expect(observe(reused.subarray(0, 20))).toBe(false);
    reused.fill(0xee);
    hello.copy(reused, 0, 20);
    expect(observe(reused.subarray(0, hello.length - 20))).toBe(true);
    expect(seen.map((r) => r.kind)).toEqual(['complete']);
  });
});
