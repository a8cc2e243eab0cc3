import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createHttpForwarder, type ForwardResult, type HttpForwarder } from '../../src/actions/forward-http.js';
import { RequestScrubber } from '../../src/actions/headers.js';
import { Http1Server } from '../../src/listeners/http1-server.js';
import { rawExchange, startOrigin, startTcpServer } from '../helpers/servers.js';

/**
 * The forwarder on its own, behind our HTTP/1.1 front end, as the proxy listener uses them (without policy).
 * Every request goes to `target()`; the last forward's result is kept for assertions.
 */
async function startFront(forwarder: HttpForwarder, target: () => { ip: string; port: number }) {
  const scrubber = new RequestScrubber();
  const results: ForwardResult[] = [];
  const front = new Http1Server(
    { maxHeaderBytes: 16_384, headersTimeoutMs: 2000, idleMs: 5000, keepAliveMs: 5000 },
    {
      request: (exchange) => {
        const path = new URL(exchange.head.target, 'http://x').pathname;
        void forwarder.forward(exchange, scrubber.requestHead(exchange.head, path, 'origin.test'), target()).then((r) => {
          results.push(r);
          if (r.error !== null && !exchange.headersSent) exchange.respondText(r.error.code === 'UPSTREAM_TIMEOUT' ? 504 : 502, r.error.message);
        });
      },
      connect: (_head, socket) => socket.destroy(),
      clientError: (socket) => socket.destroy(),
    },
  );
  await new Promise<void>((r) => front.server.listen(0, '127.0.0.1', () => r()));
  return { front, port: (front.server.address() as AddressInfo).port, results };
}

describe('HTTP forwarder: the upstream pool is bounded in time', () => {
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let forwarder: HttpForwarder;
  let front: Awaited<ReturnType<typeof startFront>>;
  let originClosed = 0;

  beforeAll(async () => {
    origin = await startOrigin((_req, res) => res.end('ok'));
    origin.server.on('connection', (s: Socket) => s.on('close', () => originClosed++));
    forwarder = createHttpForwarder({ connectTimeoutMs: 1000, responseTimeoutMs: 2000, idleSocketMs: 200 });
    front = await startFront(forwarder, () => ({ ip: '127.0.0.1', port: origin.port }));
  });
  afterAll(async () => {
    forwarder.close();
    front.front.closeAll();
    await new Promise((r) => front.front.close(() => r(undefined)));
    await origin.close();
  });

  it('reuses a pooled upstream connection, then closes it once idle', async () => {
    const get = (): Promise<string> =>
      new Promise((resolve, reject) => {
        http.get({ port: front.port, host: '127.0.0.1', path: 'http://origin.test/', agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    expect(await get()).toBe('ok');
    expect(await get()).toBe('ok');
    expect(origin.connections()).toBe(1); // keep-alive to the destination
    expect(forwarder.idleSockets).toBe(1);
    const started = Date.now();
    await expect.poll(() => originClosed, { timeout: 3000, interval: 20 }).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(forwarder.idleSockets).toBe(0);
  });
});

describe('HTTP forwarder: framing and aborts', () => {
  let forwarder: HttpForwarder;
  const servers: Array<{ close(): Promise<void> }> = [];
  beforeAll(() => {
    forwarder = createHttpForwarder({ connectTimeoutMs: 1000, responseTimeoutMs: 800, idleSocketMs: 1000 });
  });
  afterAll(async () => {
    forwarder.close();
    for (const s of servers) await s.close();
  });

  /** A destination that answers every request with `answer` (raw bytes), then does `after`. */
  async function rawOrigin(answer: string, after: 'keep' | 'close' = 'keep') {
    const received: string[] = [];
    const server = await startTcpServer((s) => {
      s.on('data', (d: Buffer) => {
        received.push(d.toString('latin1'));
        if (!d.includes('\r\n\r\n')) return;
        s.write(answer);
        if (after === 'close') s.end();
      });
    });
    servers.push(server);
    return { port: server.port, received };
  }

  async function via(originPort: number, request: string): Promise<{ reply: string; result: ForwardResult | undefined }> {
    const f = await startFront(forwarder, () => ({ ip: '127.0.0.1', port: originPort }));
    try {
      const reply = await rawExchange(f.port, request, 2500);
      await expect.poll(() => f.results.length, { timeout: 2000 }).toBeGreaterThan(0);
      return { reply, result: f.results[0] };
    } finally {
      f.front.closeAll();
      f.front.close(() => undefined);
    }
  }

  it('relays a chunked answer verbatim to an HTTP/1.1 client and counts its payload', async () => {
    const o = await rawOrigin('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    const { reply, result } = await via(o.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n');
    expect(reply).toContain('Transfer-Encoding: chunked\r\n');
    expect(reply.endsWith('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')).toBe(true);
    expect(result?.error).toBeNull();
    expect(result?.destinationBytes).toBe(11);
  });

  it('de-chunks for an HTTP/1.0 client and ends the answer by closing', async () => {
    const o = await rawOrigin('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    const { reply } = await via(o.port, 'GET http://origin.test/ HTTP/1.0\r\n\r\n');
    expect(reply).not.toContain('Transfer-Encoding');
    expect(reply).toContain('connection: close\r\n');
    expect(reply.endsWith('\r\n\r\nhello')).toBe(true);
  });

  it('an answer without length ends with the destination closing, and the client connection closes too', async () => {
    const o = await rawOrigin('HTTP/1.1 200 OK\r\n\r\nuntil-close', 'close');
    const { reply, result } = await via(o.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n');
    expect(reply).toContain('connection: close\r\n');
    expect(reply.endsWith('until-close')).toBe(true);
    expect(result?.error).toBeNull();
  });

  it('refuses an answer with ambiguous framing (two different Content-Lengths) with 502, nothing relayed', async () => {
    const o = await rawOrigin('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
    const { reply, result } = await via(o.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 502 /);
    expect(reply).not.toContain('hello');
    expect(result?.error?.message).toMatch(/malformed response/);
  });

  it('a destination that stalls before answering gets 504 after the response timeout', async () => {
    const server = await startTcpServer(() => undefined);
    servers.push(server);
    const started = Date.now();
    const { reply, result } = await via(server.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 504 /);
    expect(result?.error?.code).toBe('UPSTREAM_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
  });

  it('relays 100 Continue to an HTTP/1.1 client, then the final answer', async () => {
    const o = await rawOrigin('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
    const { reply } = await via(o.port, 'POST http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    expect(reply.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n')).toBe(true);
    expect(reply.endsWith('ok')).toBe(true);
    expect(o.received.join('')).toMatch(/\r\n\r\nabc$/);
  });

  it('20 clients that give up before the answer leave no destination socket open (the http-proxy leak)', async () => {
    const originSockets: net.Socket[] = [];
    const server = await startTcpServer((s) => {
      originSockets.push(s);
      s.resume(); // reads (so it sees our FIN), never answers
    });
    servers.push(server);
    const f = await startFront(forwarder, () => ({ ip: '127.0.0.1', port: server.port }));
    for (let i = 0; i < 20; i++) {
      const client = net.connect(f.port, '127.0.0.1');
      client.write('GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n');
      await expect.poll(() => originSockets.length, { timeout: 2000 }).toBe(i + 1);
      client.destroy();
    }
    await expect.poll(() => originSockets.filter((s) => !s.destroyed).length, { timeout: 2000 }).toBe(0);
    expect(f.results.every((r) => r.error?.code === 'CLIENT_ABORTED')).toBe(true);
    expect(forwarder.idleSockets).toBe(0);
    f.front.close(() => undefined);
  });

  it('a client that leaves mid-answer releases the destination socket', async () => {
    let originSocket: net.Socket | null = null;
    const server = await startTcpServer((s) => {
      originSocket = s;
      s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial'));
    });
    servers.push(server);
    const f = await startFront(forwarder, () => ({ ip: '127.0.0.1', port: server.port }));
    const client = net.connect(f.port, '127.0.0.1');
    client.write('GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n');
    await new Promise((r) => client.once('data', r));
    client.destroy();
    await expect.poll(() => f.results[0]?.error?.code, { timeout: 2000 }).toBe('CLIENT_ABORTED');
    await expect.poll(() => (originSocket as net.Socket | null)?.destroyed ?? false, { timeout: 2000 }).toBe(true);
    f.front.close(() => undefined);
  });
});

describe('HTTP forwarder: one set of listeners and one timeout per upstream socket', () => {
  it('a pooled socket idle for longer than the response timeout still times out its next exchange', async () => {
    // responseTimeoutMs < idleSocketMs: the socket's inactivity timer fires while it waits in the pool (ignored
    // there), and must be live again for the next request on it.
    const forwarder = createHttpForwarder({ connectTimeoutMs: 1000, responseTimeoutMs: 300, idleSocketMs: 5000 });
    let requests = 0;
    let connections = 0;
    const server = await startTcpServer((s) => {
      connections++;
      s.on('data', (d: Buffer) => {
        if (!d.includes('\r\n\r\n')) return;
        requests++;
        if (requests === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'); // then never again
      });
    });
    const f = await startFront(forwarder, () => ({ ip: '127.0.0.1', port: server.port }));
    try {
      const first = await rawExchange(f.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n', 2000);
      expect(first).toMatch(/^HTTP\/1\.1 200 [\s\S]*ok$/);
      expect(forwarder.idleSockets).toBe(1);
      await new Promise((r) => setTimeout(r, 700)); // over twice the response timeout, idle
      expect(forwarder.idleSockets).toBe(1); // the idle limit, not the response timeout, ages pooled sockets
      const started = Date.now();
      const second = await rawExchange(f.port, 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n', 3000);
      expect(second).toMatch(/^HTTP\/1\.1 504 /);
      // It went over the pooled socket first and timed out there (a dead timer would hang it past the 3 s
      // exchange), then once more on a fresh socket (a request without body, no answer byte: retried once).
      expect(Date.now() - started).toBeGreaterThanOrEqual(550);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(requests).toBe(3);
      expect(connections).toBe(2);
      expect(f.results[1]?.error?.code).toBe('UPSTREAM_TIMEOUT');
    } finally {
      forwarder.close();
      f.front.closeAll();
      f.front.close(() => undefined);
      await server.close();
    }
  });

  it('a pooled socket that receives bytes is closed and leaves the pool; the next request dials anew', async () => {
    const forwarder = createHttpForwarder({ connectTimeoutMs: 1000, responseTimeoutMs: 2000, idleSocketMs: 5000 });
    const sockets: net.Socket[] = [];
    const server = await startTcpServer((s) => {
      sockets.push(s);
      s.on('data', (d: Buffer) => {
        if (d.includes('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const f = await startFront(forwarder, () => ({ ip: '127.0.0.1', port: server.port }));
    try {
      const request = 'GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n';
      expect(await rawExchange(f.port, request, 2000)).toMatch(/ok$/);
      expect(forwarder.idleSockets).toBe(1);
      sockets[0]?.write('HTTP/1.1 200 OK\r\n\r\n'); // unasked bytes: framing broken
      await expect.poll(() => forwarder.idleSockets, { timeout: 2000 }).toBe(0);
      await expect.poll(() => sockets[0]?.destroyed === true || sockets[0]?.readableEnded === true, { timeout: 2000 }).toBe(true);
      expect(await rawExchange(f.port, request, 2000)).toMatch(/ok$/);
      expect(sockets).toHaveLength(2);
    } finally {
      forwarder.close();
      f.front.closeAll();
      f.front.close(() => undefined);
      await server.close();
    }
  });
});
