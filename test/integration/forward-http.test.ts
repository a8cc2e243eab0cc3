import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHttpForwarder, type HttpForwarder } from '../../src/actions/forward-http.js';
import { scrubRequestHeaders } from '../../src/actions/headers.js';
import { startOrigin } from '../helpers/servers.js';

/** The forwarder on its own: a front server hands every request to it, as the proxy listener does. */
describe('HTTP forwarder: the upstream pool is bounded in time', () => {
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let front: http.Server;
  let forwarder: HttpForwarder;
  let originClosed = 0;

  beforeAll(async () => {
    origin = await startOrigin((_req, res) => res.end('ok'));
    origin.server.on('connection', (s: Socket) => s.on('close', () => originClosed++));
    forwarder = createHttpForwarder({ connectTimeoutMs: 1000, responseTimeoutMs: 2000, idleSocketMs: 200 });
    front = http.createServer((req, res) => {
      scrubRequestHeaders(req.headers); // as the listener does: the client's Connection: close is hop-by-hop
      void forwarder.forward(req, res, { ip: '127.0.0.1', port: origin.port });
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    forwarder.close();
    await new Promise((r) => front.close(r));
    await origin.close();
  });

  it('reuses a pooled upstream connection, then closes it once idle', async () => {
    const port = (front.address() as AddressInfo).port;
    const get = (): Promise<string> =>
      new Promise((resolve, reject) => {
        http.get({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    expect(await get()).toBe('ok');
    expect(await get()).toBe('ok');
    expect(origin.connections()).toBe(1); // keep-alive to the destination
    const started = Date.now();
    await expect.poll(() => originClosed, { timeout: 3000, interval: 20 }).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });
});
